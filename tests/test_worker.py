"""Training in a child process must end exactly as training in this one, whatever happens meanwhile."""

import contextlib
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import types

import numpy as np
import pytest
import torch
from conftest import ROOT

from ae_core import probe, worker
from ae_core.progress import DIVERGED, FINISHED, STOPPED
from ae_core.training import BatchTrainer, Trainer
from ae_core.worker import RemoteTrainer, TrainingFailed


def remote(targets: torch.Tensor, **settings) -> RemoteTrainer:
    return RemoteTrainer(targets.numpy() if targets.dim() == 4 else targets[None].numpy(), **settings)


def assert_same_state(here: BatchTrainer, there: RemoteTrainer) -> None:
    """Everything learned equal, bit for bit (a diverged model's NaNs included); not the seconds it took
    nor how the call ended (a stopped run against one trained to where it stopped)."""
    ours, theirs = here.saved_state(), there.saved_state()
    assert ours.keys() == theirs.keys()
    for key in ours.keys() - {"train_seconds", "status"}:
        assert np.array_equal(ours[key], theirs[key], equal_nan=isinstance(ours[key], np.ndarray)), key
    assert np.array_equal(here.reconstructions().numpy(), there.reconstructions(), equal_nan=True)
    assert (here.epochs_done, here.message, here.diverged) == (there.epochs_done, there.message, there.diverged)
    assert np.array_equal(here.losses.numpy(), there.losses, equal_nan=True)
    assert here.timeline.epochs == there.timeline.epochs


def assert_children_end() -> None:
    """The children end by themselves once they have sent everything (train() does not wait for it)."""
    deadline = time.monotonic() + 5
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not multiprocessing.active_children()


def test_a_child_process_learns_exactly_what_this_process_learns_and_continues_alike(target):
    here, there = Trainer(target, device="cpu"), remote(target)
    reports = []
    assert here.train(200) == there.train(200, on_progress=reports.append) == FINISHED
    assert reports[-1].epoch == 200 and reports[-1].loss == there.loss_history[-1]
    assert_same_state(here, there)
    here.train(350), there.train(350)
    assert_same_state(here, there)
    assert_children_end()


def test_stopping_a_child_keeps_every_epoch_it_finished(target):
    trainer = remote(target)
    reports = []
    status = trainer.train(
        100_000, on_progress=reports.append, report_every_s=0.05, should_stop=lambda: len(reports) >= 3
    )
    assert status == STOPPED and 0 < trainer.epochs_done < 100_000
    reference = Trainer(target, device="cpu")
    reference.train(trainer.epochs_done)
    assert_same_state(reference, trainer)


class Interrupted(Exception):
    """Stands for Streamlit's StopException, raised out of a progress callback by a Stop click."""


def test_an_exception_in_the_callback_still_brings_back_what_the_child_learned(target):
    trainer = remote(target)

    def interrupt(progress):
        raise Interrupted

    with pytest.raises(Interrupted):
        trainer.train(100_000, on_progress=interrupt, report_every_s=0.05)
    assert 0 < trainer.epochs_done < 100_000
    reference = Trainer(target, device="cpu")
    reference.train(trainer.epochs_done)
    assert_same_state(reference, trainer)
    assert_children_end()


def test_a_child_that_dies_leaves_the_state_from_before_the_call(target):
    trainer = remote(target)
    trainer.train(50)
    before = trainer.saved_state()

    def kill_the_child(progress):
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(TrainingFailed, match="ended unexpectedly"):
        trainer.train(100_000, on_progress=kill_the_child, report_every_s=0.05)
    assert trainer.epochs_done == 50 and len(trainer.losses) == 50 and trainer.timeline.epochs[-1] == 50
    assert all(np.array_equal(now, before[key]) for key, now in trainer.saved_state().items())
    assert trainer.train(80) == FINISHED and trainer.epochs_done == 80


def test_divergence_in_a_child_is_handled_as_here(target):
    targets = torch.stack([target, torch.full_like(target, math.nan), target.flip(2)])  # the middle one diverges
    here, there = BatchTrainer(targets, device="cpu"), remote(targets)
    here.train(300), there.train(300, report_every_s=0.01)
    assert there.diverged == here.diverged == {1: 0} and there.message == here.message
    assert there.status == here.status == FINISHED
    assert_same_state(here, there)
    hopeless = remote(targets[[0, 2]], lr=1e30)
    assert hopeless.train(100) == DIVERGED
    assert len(hopeless.diverged) == 2 and "too large" in hopeless.message
    assert np.isfinite(hopeless.reconstructions()).all()


def test_a_child_started_while_another_session_installs_the_app_as_main_still_trains(target, monkeypatch):
    """Streamlit installs every script run as `__main__`, each session from its own thread, so one can put
    the app script back between the worker's swap and a child's start: the child then re-runs the app."""
    app = types.ModuleType("__main__")
    app.__file__ = str(ROOT / "streamlit_app.py")
    monkeypatch.setitem(sys.modules, "__main__", app)
    monkeypatch.setattr(worker, "_without_main_module", contextlib.nullcontext)
    here, there = Trainer(target, device="cpu"), remote(target)
    assert here.train(30) == there.train(30) == FINISHED
    assert_same_state(here, there)


def test_a_remote_trainers_calls_run_in_a_child_on_its_weights(target):
    here, there = Trainer(target, device="cpu"), remote(target)
    here.train(40), there.train(40)
    inputs = np.stack([target.numpy(), target.flip(1).numpy()])
    assert np.array_equal(there.call(probe.network_outputs, inputs), probe.network_outputs(here, inputs))
    with pytest.raises(TrainingFailed, match="training process failed .RuntimeError"):  # a fault there, in words
        there.call(probe.network_outputs, inputs, 5)
    assert there.epochs_done == 40


def test_the_server_side_of_training_in_a_child_imports_no_torch(tmp_path):
    """What the app's server runs: a RemoteTrainer trained, continued, its results read. Only the
    training process server and its children hold torch."""
    script = (
        "import sys\n"
        "from ae_core import data\n"
        "from ae_core.experiment import Experiment\n"
        "experiment = Experiment(*data.load_pair('sample', 3, 0), in_child_process=True)\n"
        "assert experiment.train(20) == 'finished' and experiment.train(30) == 'finished'\n"
        "assert experiment.result().quality['mixed'].psnr > 0\n"
        "print('torch' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "False", done.stderr


def test_a_lone_child_trains_at_the_callers_priority_and_every_child_at_nice_19_once_two_run(target):
    def priorities() -> list[int]:
        return sorted(os.getpriority(os.PRIO_PROCESS, pid) for pid in list(worker._running))

    first, second = remote(target), remote(target)
    alone, together = [], []

    def run_second():
        second.train(
            100_000, on_progress=lambda _: together.append(priorities()), should_stop=lambda: len(together) >= 3
        )

    joining = threading.Thread(target=run_second)

    def first_reports(_):
        if not alone:
            alone.append(priorities())
            joining.start()

    first.train(100_000, on_progress=first_reports, should_stop=lambda: bool(together) and not joining.is_alive())
    joining.join()
    assert alone == [[os.getpriority(os.PRIO_PROCESS, 0)]]
    assert together and all(seen == [worker.CROWDED_NICE] * 2 for seen in together)
    assert first.epochs_done and second.epochs_done


def test_trainings_run_in_a_session_of_their_own_and_so_a_scheduling_group_apart_from_the_server(target):
    seen = []

    def look(_):
        (child,) = worker._running
        autogroup = f"/proc/{child}/autogroup"
        seen.append((os.getsid(child), open(autogroup).read() if os.path.exists(autogroup) else None))

    remote(target).train(100_000, on_progress=look, should_stop=lambda: bool(seen))
    (session, group), ours = seen[0], "/proc/self/autogroup"
    assert session != os.getsid(0)
    if group is not None:  # Linux with autogroup: the scheduler shares the CPU between the two groups
        assert group != open(ours).read()
