"""What the training process server (worker.py) imports before it forks any child: the trainer, and one
step of a throwaway seed network, so that what loads on first use (the C kernel, torch's operator
lookups, the engine's first allocations) loads once here and every child inherits it.

In forked children, before this: building a trainer 10 ms, loading the C kernel 4.5 ms and the first
forward pass 4 ms, against 2, 0 and 1 ms in a process that had trained before (an ad-hoc script timing
each in three children). Every Train, step button and probe pays them, so once here is cheaper.

It runs on one thread: a parallel region here would start OpenMP's threads in the server, and
threads do not survive the fork into the children that would inherit their pool.

It also leaves the web server's session for one of its own, which every training inherits. Where
Linux groups processes by session for its scheduler (autogroup, on by default), the trainings then
share the CPU with the web server and the browser as one group against another, not thread by thread
against the server's threads; the seed's 10,000 epochs on Mix & Train, live view drawn in Chromium on
the same two cores, took 1.37 times `Experiment.train` alone against 1.51 in the server's session
(docs/performance.md). It leaves no process behind: the fork server ends with the web server, and
a child stops at its next step once its pipe closes.
"""

import contextlib
import os

import numpy as np

from .architecture import IMAGE_SHAPE
from .training import BatchTrainer, one_cpu_thread

with contextlib.suppress(OSError):  # already a session's leader: nothing to leave
    os.setsid()

with one_cpu_thread():
    BatchTrainer(np.zeros((1, *IMAGE_SHAPE), np.float32), device="cpu").train(1)
