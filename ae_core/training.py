"""Train the autoencoder on one image: MSE, Adam, one step per epoch, as the seed does.

A `Trainer` keeps everything it learned between calls: `train(epochs)` runs until `epochs` epochs are
done in total, so calling it again after a stop (or with a larger number) continues where it left off.
"""
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch

from .engine import StackedAutoencoders
from .model import IMAGE_SHAPE, initial_autoencoder

SEED_EPOCHS = 10_000
SEED_LR = 1e-3

FINISHED, STOPPED, DIVERGED = "finished", "stopped", "diverged"


def check_epochs(epochs) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number of at least 1 (got {epochs!r})")
    return epochs


def check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a finite number above 0 (got {lr!r})")
    return float(lr)


def best_device() -> torch.device:
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


_threads_lock = threading.Lock()
_threads_users = 0
_threads_before = 0


@contextmanager
def one_cpu_thread():
    """Kernels this small lose more to thread hand-offs than they gain from a second core.

    torch's thread count is process-wide, so concurrent trainings (two app sessions) share one
    setting: the first to enter sets it, the last to leave restores it.
    """
    global _threads_users, _threads_before
    with _threads_lock:
        if _threads_users == 0:
            _threads_before = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_before)


@dataclass(frozen=True)
class Progress:
    epoch: int               # epochs done in total
    target_epochs: int
    loss: float              # loss of the latest epoch
    epochs_per_second: float  # during this call of train()

    @property
    def seconds_left(self) -> float:
        return (self.target_epochs - self.epoch) / self.epochs_per_second if self.epochs_per_second else math.inf


class Trainer:
    def __init__(self, target: torch.Tensor, lr: float = SEED_LR, seed: int = 0,
                 device: torch.device | str | None = None) -> None:
        if tuple(target.shape) != IMAGE_SHAPE:
            raise ValueError(f"target must have shape {IMAGE_SHAPE}, got {tuple(target.shape)}")
        self.lr, self.seed = check_lr(lr), seed
        self.engine = StackedAutoencoders([initial_autoencoder(seed).state_dict()], self.lr,
                                          device or best_device())
        self.target = target.to(self.engine.device, torch.float32).unsqueeze(0)
        self.loss_history: list[float] = []
        self.train_seconds = 0.0
        self.status = ""       # "", FINISHED, STOPPED or DIVERGED
        self.message = ""
        self._checkpoint = (0, self.engine.snapshot())

    @property
    def epochs_done(self) -> int:
        return len(self.loss_history)

    def train(self, epochs: int, on_progress: Callable[[Progress], None] | None = None,
              should_stop: Callable[[], bool] | None = None, report_every_s: float = 0.2) -> str:
        """Train until `epochs` epochs are done in total; returns the status.

        `on_progress` is called at most every `report_every_s` seconds and once at the end;
        `should_stop` is polled between steps. A NaN or infinite loss ends training and restores
        the weights of the last checkpoint whose losses were all finite (checkpoints are taken at
        every report), so what is kept always reconstructs something.
        """
        check_epochs(epochs)
        if self.status == DIVERGED:
            return self.status
        start, started_at = self.epochs_done, time.perf_counter()
        pending: list[torch.Tensor] = []   # losses not yet read back: reading each one would sync a GPU
        next_report = started_at + report_every_s
        self.status = STOPPED
        try:
            with one_cpu_thread():
                while self.epochs_done + len(pending) < epochs:
                    if should_stop is not None and should_stop():
                        break
                    pending.append(self.engine.step(self.target)[0])
                    if time.perf_counter() >= next_report:
                        if not self._flush(pending):
                            break
                        self._report(on_progress, epochs, start, started_at)
                        next_report = time.perf_counter() + report_every_s
                else:
                    self.status = FINISHED
        finally:
            # Also when a callback raised (a Streamlit rerun does): every finished step is kept.
            if pending:
                self._flush(pending)
            self.train_seconds += time.perf_counter() - started_at
        self._report(on_progress, epochs, start, started_at)
        return self.status

    def _flush(self, pending: list[torch.Tensor]) -> bool:
        """Move pending losses into the history; False (and weights rolled back) if one is not finite."""
        losses = torch.stack(pending).tolist()
        pending.clear()
        bad = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
        if bad is None:
            self.loss_history.extend(losses)
            self._checkpoint = (self.epochs_done, self.engine.snapshot())
            return True
        epoch, snapshot = self._checkpoint
        self.engine.restore(snapshot)
        diverged_at = self.epochs_done + bad + 1
        del self.loss_history[epoch:]
        self.status = DIVERGED
        self.message = (f"Loss became {losses[bad]} at epoch {diverged_at}: the learning rate "
                        f"{self.lr:g} is too large. Kept the weights of epoch {epoch}, the last "
                        f"checkpoint with a finite loss.")
        return False

    def _report(self, on_progress, target_epochs: int, start: int, started_at: float) -> None:
        if on_progress is None or not self.loss_history:
            return
        elapsed = time.perf_counter() - started_at
        rate = (self.epochs_done - start) / elapsed if elapsed > 0 else 0.0
        on_progress(Progress(self.epochs_done, target_epochs, self.loss_history[-1], rate))

    def reconstruction(self) -> torch.Tensor:
        """The network's output for the training image, (3, 32, 32) on the CPU, unclamped."""
        with one_cpu_thread():
            return self.engine.reconstruct(self.target)[0].cpu()

    def state_dict(self):
        return self.engine.state_dict(0)
