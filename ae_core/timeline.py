"""What the networks output while they learn, kept at log-spaced epochs: the data behind the app's
live images, its timeline slider and the animated GIF.

A trainer keeps a frame of its first WATCHED models' outputs before its first step (epoch 0),
whenever the epoch count reaches `next_frame_epoch` (1, 2, 3, 4, 5, 6, 8, 10, 12, 15, ...: each about
1.2 times the one before) and at the end of every call of `train()`, so that a Stop's epoch is a
frame too. Past MAX_FRAMES a timeline drops the frame whose neighbours are closest on a log scale, so
however long a run goes on, its frames stay log-spaced and its memory bounded: 64 frames of 4 models
of 3 x 32 x 32 float32 values (12 KiB each) are 3 MiB; of one model, 768 KiB.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

MAX_FRAMES = 64
WATCHED = 4  # the models of a study whose outputs are kept and shown; a single run has one
RATIO = 1.2  # 46 frames over the seed's 10,000 epochs, 58 over the app's cap of 100,000


def next_frame_epoch(epoch: int) -> int:
    """The epoch of the frame after one taken at `epoch` (0 or more)."""
    return max(epoch + 1, math.ceil(epoch * RATIO))


@dataclass(frozen=True)
class Frame:
    epoch: int  # steps done when it was taken
    outputs: np.ndarray  # (watched models, 3, 32, 32), unclamped


@dataclass
class Timeline:
    """Frames in the order of their epochs; the first and the newest are never dropped."""

    frames: list[Frame] = field(default_factory=list)

    @property
    def epochs(self) -> list[int]:
        return [frame.epoch for frame in self.frames]

    def add(self, frame: Frame) -> None:
        """Append `frame`, of a later epoch than any kept or of the newest epoch again (then it replaces it)."""
        if self.frames and self.frames[-1].epoch >= frame.epoch:
            if self.frames[-1].epoch > frame.epoch:
                raise ValueError(f"a frame of epoch {frame.epoch} after one of epoch {self.frames[-1].epoch}")
            self.frames.pop()
        self.frames.append(frame)
        if len(self.frames) > MAX_FRAMES:
            self._drop_most_crowded()

    def _drop_most_crowded(self) -> None:
        def log_gap_without(i: int) -> float:  # epoch 0 counts as 0.5, half a step below epoch 1
            before, after = self.frames[i - 1].epoch, self.frames[i + 1].epoch
            return math.log(after) - math.log(max(before, 0.5))

        del self.frames[min(range(1, len(self.frames) - 1), key=log_gap_without)]

    def since(self, epoch: int) -> list[Frame]:
        """The frames of epochs after `epoch`, oldest first."""
        return [frame for frame in self.frames if frame.epoch > epoch]

    def drop_after(self, epoch: int) -> None:
        """Forget the frames of epochs after `epoch` (a run that diverged keeps its last finite ones)."""
        self.frames = [frame for frame in self.frames if frame.epoch <= epoch]
