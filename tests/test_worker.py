"""Training in a child process must end exactly as training in this one, whatever happens meanwhile."""

import contextlib
import math
import multiprocessing
import os
import signal
import sys
import types

import pytest
import torch
from conftest import ROOT

from ae_core import worker
from ae_core.progress import DIVERGED, FINISHED, STOPPED
from ae_core.training import BatchTrainer, Trainer
from ae_core.worker import TrainingFailed


def assert_same_state(a: BatchTrainer, b: BatchTrainer) -> None:
    assert a.epochs_done == b.epochs_done
    assert int(a.engine.steps_done) == int(b.engine.steps_done)
    for ours, theirs in zip(
        [a.losses, a.reconstructions(), *a.engine.state_tensors()],
        [b.losses, b.reconstructions(), *b.engine.state_tensors()],
    ):
        assert torch.allclose(ours, theirs, rtol=0, atol=0, equal_nan=True)  # equal; a diverged model has NaNs


def test_a_child_process_learns_exactly_what_this_process_learns_and_continues_alike(target):
    here, there = Trainer(target, device="cpu"), Trainer(target, device="cpu")
    reports = []
    assert here.train(200) == there.train(200, on_progress=reports.append, in_child_process=True) == FINISHED
    assert reports[-1].epoch == 200 and reports[-1].loss == there.loss_history[-1]
    assert_same_state(here, there)
    here.train(350), there.train(350, in_child_process=True)
    assert_same_state(here, there)
    assert not multiprocessing.active_children()  # the child is gone once train() returns


def test_stopping_a_child_keeps_every_epoch_it_finished(target):
    trainer = Trainer(target, device="cpu")
    reports = []
    status = trainer.train(
        100_000,
        on_progress=reports.append,
        report_every_s=0.05,
        in_child_process=True,
        should_stop=lambda: len(reports) >= 3,
    )
    assert status == STOPPED and 0 < trainer.epochs_done < 100_000
    reference = Trainer(target, device="cpu")
    reference.train(trainer.epochs_done)
    assert_same_state(trainer, reference)


class Interrupted(Exception):
    """Stands for Streamlit's StopException, raised out of a progress callback by a Stop click."""


def test_an_exception_in_the_callback_still_brings_back_what_the_child_learned(target):
    trainer = Trainer(target, device="cpu")

    def interrupt(progress):
        raise Interrupted

    with pytest.raises(Interrupted):
        trainer.train(100_000, on_progress=interrupt, report_every_s=0.05, in_child_process=True)
    assert 0 < trainer.epochs_done < 100_000
    reference = Trainer(target, device="cpu")
    reference.train(trainer.epochs_done)
    assert_same_state(trainer, reference)
    assert not multiprocessing.active_children()


def test_a_child_that_dies_leaves_the_state_from_before_the_call(target):
    trainer = Trainer(target, device="cpu")
    trainer.train(50, in_child_process=True)
    before = [tensor.clone() for tensor in trainer.engine.state_tensors()]

    def kill_the_child(progress):
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGKILL)

    with pytest.raises(TrainingFailed, match="ended unexpectedly"):
        trainer.train(100_000, on_progress=kill_the_child, report_every_s=0.05, in_child_process=True)
    assert trainer.epochs_done == 50
    assert all(torch.equal(now, then) for now, then in zip(trainer.engine.state_tensors(), before))
    assert trainer.train(80, in_child_process=True) == FINISHED and trainer.epochs_done == 80


def test_divergence_in_a_child_is_handled_as_here(target):
    targets = torch.stack([target, torch.full_like(target, math.nan), target.flip(2)])  # the middle one diverges
    here, there = BatchTrainer(targets, device="cpu"), BatchTrainer(targets, device="cpu")
    here.train(300), there.train(300, report_every_s=0.01, in_child_process=True)
    assert there.diverged == here.diverged == {1: 0} and there.message == here.message
    assert there.status == here.status == FINISHED
    assert_same_state(here, there)
    hopeless = BatchTrainer(targets[[0, 2]], lr=1e30, device="cpu")
    assert hopeless.train(100, in_child_process=True) == DIVERGED
    assert len(hopeless.diverged) == 2 and "too large" in hopeless.message
    assert torch.isfinite(hopeless.reconstructions()).all()


def test_a_child_started_while_another_session_installs_the_app_as_main_still_trains(target, monkeypatch):
    """Streamlit installs every script run as `__main__`, each session from its own thread, so one can put
    the app script back between the worker's swap and a child's start: the child then re-runs the app."""
    app = types.ModuleType("__main__")
    app.__file__ = str(ROOT / "streamlit_app.py")
    monkeypatch.setitem(sys.modules, "__main__", app)
    monkeypatch.setattr(worker, "_without_main_module", contextlib.nullcontext)
    here, there = Trainer(target, device="cpu"), Trainer(target, device="cpu")
    assert here.train(30) == there.train(30, in_child_process=True) == FINISHED
    assert_same_state(here, there)
