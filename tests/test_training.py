import math
import threading

import pytest
import torch

from ae_core.progress import DIVERGED, FINISHED, STOPPED
from ae_core.training import MAX_STEPS_PER_CALL, Trainer


def test_same_seed_gives_the_same_loss_history(target):
    a, b = Trainer(target, seed=3, device="cpu"), Trainer(target, seed=3, device="cpu")
    a.train(100), b.train(100)
    assert a.loss_history == b.loss_history and len(a.loss_history) == 100
    c = Trainer(target, seed=4, device="cpu")
    c.train(100)
    assert c.loss_history != a.loss_history


def test_stop_keeps_what_was_learned_and_continuing_matches_an_uninterrupted_run(target):
    whole = Trainer(target, seed=0, device="cpu")
    assert whole.train(600) == FINISHED
    reports = []
    parted = Trainer(target, seed=0, device="cpu")
    # Stop is polled between the engine's calls, each at most MAX_STEPS_PER_CALL steps.
    assert (
        parted.train(600, on_progress=reports.append, report_every_s=0.0, should_stop=lambda: len(reports) >= 2)
        == STOPPED
    )
    assert 0 < parted.epochs_done <= 1 + MAX_STEPS_PER_CALL
    assert parted.loss_history == whole.loss_history[: parted.epochs_done]
    assert parted.train(600) == FINISHED
    assert parted.loss_history == whole.loss_history
    assert torch.equal(parted.reconstruction(), whole.reconstruction())


def test_progress_is_reported_at_a_bounded_rate_and_once_at_the_end(target):
    trainer = Trainer(target, device="cpu")
    reports = []
    trainer.train(1500, on_progress=reports.append, report_every_s=0.05)
    assert reports[-1].epoch == 1500 and reports[-1].target_epochs == 1500
    assert len(reports) <= trainer.train_seconds / 0.05 + 2
    assert all(later.epoch >= earlier.epoch for earlier, later in zip(reports, reports[1:]))
    assert reports[-1].loss == trainer.loss_history[-1] and reports[-1].epochs_per_second > 0


def test_an_exploding_loss_stops_training_and_keeps_finite_weights(target):
    trainer = Trainer(target, lr=1e30, device="cpu")
    assert trainer.train(200) == DIVERGED
    assert "too large" in trainer.message and "epoch" in trainer.message
    assert all(math.isfinite(loss) for loss in trainer.loss_history)
    assert torch.isfinite(trainer.reconstruction()).all()
    assert trainer.train(400) == DIVERGED  # nothing more is attempted on a diverged run


def test_a_checkpoint_keeps_only_weights_whose_outputs_are_finite(target):
    # Reports after every engine call flush the losses, and each flush may checkpoint. One step at lr
    # 1e30 leaves finite weights near 1e30 whose outputs are NaN: the run must go back to epoch 0.
    trainer = Trainer(target, lr=1e30, device="cpu")
    assert trainer.train(200, on_progress=lambda progress: None, report_every_s=0.0) == DIVERGED
    assert trainer.diverged == {0: 0} and trainer.epochs_done == 0
    assert torch.equal(trainer.reconstruction(), Trainer(target, device="cpu").reconstruction())


@pytest.mark.parametrize("epochs", [0, -3, 2.5, "10", True])
def test_bad_epoch_counts_are_refused(target, epochs):
    with pytest.raises(ValueError, match="epochs"):
        Trainer(target, device="cpu").train(epochs)


@pytest.mark.parametrize("lr", [0, -1e-3, float("nan"), float("inf")])
def test_bad_learning_rates_are_refused(target, lr):
    with pytest.raises(ValueError, match="learning rate"):
        Trainer(target, lr=lr, device="cpu")


def test_an_exception_from_the_progress_callback_keeps_every_finished_step(target):
    trainer = Trainer(target, device="cpu")
    threads_before = torch.get_num_threads()
    reports = []

    def interrupt(progress):  # what a Streamlit rerun does inside the callback
        reports.append(progress)
        if len(reports) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        trainer.train(10**6, on_progress=interrupt, report_every_s=0.02)
    assert trainer.epochs_done >= reports[-1].epoch > 0
    assert torch.get_num_threads() == threads_before  # restored, not left at one
    assert trainer.train(trainer.epochs_done + 10) == FINISHED


def test_reading_results_while_another_thread_trains_changes_nothing_learned(target):
    """A Streamlit rerun reads results while the interrupted run may still be finishing its step."""
    alone = Trainer(target, device="cpu")
    alone.train(400)
    busy = Trainer(target, device="cpu")
    worker = threading.Thread(target=busy.train, args=(400,))
    worker.start()
    while worker.is_alive():
        busy.reconstruction(), busy.state_dict()
    worker.join()
    assert busy.loss_history == alone.loss_history
    assert torch.equal(busy.reconstruction(), alone.reconstruction())
