"""A run's timeline: frames at log-spaced epochs, bounded in number, each the network's real output."""

import math

import numpy as np
import pytest
import torch

from ae_core.progress import DIVERGED
from ae_core.timeline import MAX_FRAMES, WATCHED, Frame, Timeline, next_frame_epoch
from ae_core.training import BatchTrainer, Trainer
from ae_core.worker import RemoteTrainer


def test_the_schedule_is_log_spaced_from_every_epoch():
    epochs = [0]
    while epochs[-1] < 10_000:
        epochs.append(next_frame_epoch(epochs[-1]))
    assert epochs[:10] == [0, 1, 2, 3, 4, 5, 6, 8, 10, 12]
    # Each 1.2 times the one before, rounded up to a whole epoch.
    assert all(1.2 <= later / earlier < 1.2 + 1 / earlier for earlier, later in zip(epochs[6:], epochs[7:]))


def frames_of(epochs: list[int]) -> Timeline:
    timeline = Timeline()
    for epoch in epochs:
        timeline.add(Frame(epoch, torch.full((1, 3, 32, 32), float(epoch))))
    return timeline


def test_a_timeline_keeps_at_most_max_frames_log_spaced_with_its_first_and_newest():
    epochs = [0]
    while epochs[-1] < 1_000_000:
        epochs.append(next_frame_epoch(epochs[-1]))
    epochs.append(epochs[-1] + 7)  # a Stop's epoch, just after a scheduled one
    timeline = frames_of(epochs)
    kept = timeline.epochs
    assert len(epochs) > MAX_FRAMES and len(kept) == MAX_FRAMES
    assert kept[0] == 0 and kept[-1] == epochs[-1] and kept == sorted(set(kept))
    assert all(frame.outputs[0, 0, 0, 0] == frame.epoch for frame in timeline.frames)  # each keeps its own outputs
    # Log-spaced: from epoch 10 on, no gap between kept frames is more than 2.5 times the smallest.
    gaps = [math.log(b / a) for a, b in zip(kept, kept[1:]) if a >= 10]
    assert max(gaps[:-1]) < 2.5 * min(gaps[:-1])


def test_a_frame_older_than_the_newest_is_refused_and_the_newest_epoch_again_replaces_it():
    timeline = frames_of([0, 5, 9])
    with pytest.raises(ValueError, match="epoch 7 after one of epoch 9"):
        timeline.add(Frame(7, torch.zeros(1, 3, 32, 32)))
    timeline.add(Frame(9, torch.ones(1, 3, 32, 32)))
    assert timeline.epochs == [0, 5, 9] and timeline.frames[-1].outputs.max() == 1


def test_each_frame_is_what_the_network_output_at_its_epoch(target):
    trainer = Trainer(target, device="cpu")
    trainer.train(40)
    trainer.train(90)  # a continued run extends its timeline
    assert trainer.timeline.epochs == [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15, 18, 22, 27, 33, 40, 48, 58, 70, 84, 90]
    for frame in trainer.timeline.frames[::4] + trainer.timeline.frames[-1:]:
        alone = Trainer(target, device="cpu")
        if frame.epoch:
            alone.train(frame.epoch)
        assert np.array_equal(frame.outputs[0], alone.reconstruction().numpy()), frame.epoch


def test_progress_carries_the_outputs_at_its_epoch_and_a_study_keeps_its_first_watched_models(target):
    targets = torch.stack([target, target.flip(-1), target.flip(-2), target.roll(3, -1), target.roll(5, -2)])
    study = BatchTrainer(targets, device="cpu")
    reports = []
    study.train(30, on_progress=reports.append)
    assert reports[-1].epoch == 30 and np.array_equal(reports[-1].outputs, study.reconstructions()[:WATCHED].numpy())
    assert all(frame.outputs.shape == (WATCHED, 3, 32, 32) for frame in study.timeline.frames)


def test_a_child_process_keeps_the_same_timeline(target):
    here, there = Trainer(target, device="cpu"), RemoteTrainer(target[None].numpy())
    here.train(300), there.train(300)
    assert here.timeline.epochs == there.timeline.epochs
    assert all(np.array_equal(a.outputs, b.outputs) for a, b in zip(here.timeline.frames, there.timeline.frames))


def test_a_diverged_run_keeps_its_frames_up_to_its_last_finite_checkpoint(target):
    trainer = Trainer(target, lr=1e30, device="cpu")
    assert trainer.train(200) == DIVERGED
    assert trainer.timeline.epochs[-1] == trainer.epochs_done
    assert all(np.isfinite(frame.outputs).all() for frame in trainer.timeline.frames)
