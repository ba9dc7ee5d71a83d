"""What the training process server (worker.py) imports before it forks any child: the trainer, and one
step of a throwaway seed network, so that what loads on first use (the C kernel, torch's operator
lookups, the engine's first allocations) loads once here and every child inherits it.

In forked children, before this: building a trainer 10 ms, loading the C kernel 4.5 ms and the first
forward pass 4 ms, against 2, 0 and 1 ms in a process that had trained before (an ad-hoc script timing
each in three children). Every Train, step button and probe pays them, so once here is cheaper.

It runs on one thread: a parallel region here would start OpenMP's threads in the server, and
threads do not survive the fork into the children that would inherit their pool.
"""

import numpy as np

from .architecture import IMAGE_SHAPE
from .training import BatchTrainer, one_cpu_thread

with one_cpu_thread():
    BatchTrainer(np.zeros((1, *IMAGE_SHAPE), np.float32), device="cpu").train(1)
