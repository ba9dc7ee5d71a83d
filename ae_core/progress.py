"""What a training reports while it runs and how it ended, without torch (pages draw these)."""

import math
from dataclasses import dataclass
from typing import Any

FINISHED, STOPPED, DIVERGED = "finished", "stopped", "diverged"


@dataclass(frozen=True)
class Progress:
    epoch: int  # epochs done in total
    target_epochs: int
    loss: float  # loss of the latest epoch (the median over models still training)
    epochs_per_second: float  # during this call of train()
    outputs: Any = None  # the first WATCHED models' outputs now, a (watched, 3, 32, 32) array, unclamped

    @property
    def seconds_left(self) -> float:
        return (self.target_epochs - self.epoch) / self.epochs_per_second if self.epochs_per_second else math.inf
