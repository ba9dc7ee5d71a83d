"""Train the autoencoder on one image: MSE, Adam, one step per epoch, as the seed does.

A `Trainer` keeps everything it learned between calls: `train(epochs)` runs until `epochs` epochs are
done in total, so calling it again after a stop (or with a larger number) continues where it left off.
"""

import threading
import time
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch

from . import trainer_state
from .architecture import IMAGE_SHAPE, SEED_ARCHITECTURE, Architecture, check_targets
from .engine import StackedAutoencoders, missing_private_ops
from .grouped_stack import GroupedStack
from .model import initial_autoencoder
from .progress import DIVERGED, FINISHED, STOPPED, Progress
from .reference_stack import ReferenceStack
from .settings import SEED_LR, check_epochs, check_lr, engine_for
from .timeline import WATCHED, Frame, Timeline, next_frame_epoch

ENGINE_CLASSES = {"fast": StackedAutoencoders, "grouped": GroupedStack, "reference": ReferenceStack}

# Each call into the engine runs this long at most (after the first), so that Stop and progress
# reports are prompt, and long enough for each lane to keep its weights in cache over many steps.
STEPS_CALL_S = 0.25
MAX_STEPS_PER_CALL = 256


def choose_engine(name: str, architecture: Architecture = SEED_ARCHITECTURE) -> tuple[type[StackedAutoencoders], str]:
    """The engine class for `name` (one of settings.ENGINES) and, where the fast one cannot run, the
    one that runs instead with a sentence saying why (else ""): the grouped one for another width than
    the seed's, the reference one for a torch without the fast engine's private operators."""
    if engine_for(name, architecture) != name:
        # The engine's buffers are laid out for the seed's 16 and 32 outer channels.
        return GroupedStack, (
            "the fast engine is written for the seed's 16 and 32 outer channels; this one trains as grouped "
            "convolutions with autograd and a fused Adam (grouped_stack.py), all networks at once."
        )
    missing = missing_private_ops() if name == "fast" else []
    if missing:
        return ReferenceStack, (
            f"torch {torch.__version__} lacks {', '.join(missing)}, which the fast engine needs: "
            "training with the plain PyTorch reference instead (slower, the same results within rounding)."
        )
    return ENGINE_CLASSES[name], ""


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
    """Kernels this small lose more to thread hand-offs than they gain from a second core (the engine
    puts the other cores to work on other models).

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


class BatchTrainer:
    """K autoencoders, each trained on its own target (K, 3, 32, 32) exactly as K `Trainer`s would be.

    All start from the same initial weights (`seed`), so model k learns what a single run on target k
    with that seed learns. A model whose loss turns NaN or infinite gets the weights of the last
    checkpoint whose losses were all finite and stops counting; the others train on. `timeline` keeps
    the first WATCHED models' outputs at log-spaced epochs (timeline.py).
    """

    def __init__(
        self,
        targets: torch.Tensor,
        lr: float = SEED_LR,
        seed: int = 0,
        device: torch.device | str | None = None,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
    ) -> None:
        targets = torch.as_tensor(targets)  # numpy images (data.py) are shared, not copied
        check_targets(tuple(targets.shape))
        self.lr, self.seed, self.architecture = check_lr(lr), seed, architecture
        initial = initial_autoencoder(seed, architecture).state_dict()
        engine_class, self.engine_note = choose_engine(engine, architecture)
        self.engine_asked = engine_for(engine, architecture)  # what the run store files it under
        self.engine = engine_class([initial] * len(targets), self.lr, device or best_device())
        self.targets = targets.to(self.engine.device, torch.float32).contiguous()
        self.losses = torch.empty(0, len(targets))  # (epochs, K); NaN after a diverged model's epoch
        self.diverged: dict[int, int] = {}  # model -> the epoch whose weights it keeps
        self.timeline = Timeline()
        self._kept_weights: dict[int, torch.Tensor] = {}
        self.train_seconds = 0.0
        self.status = ""  # "", FINISHED, STOPPED or DIVERGED (every model diverged)
        self.message = ""
        # The engine computes in buffers of its own. A Streamlit rerun can start reading results while
        # the interrupted run is still finishing its step, so each use holds the engine.
        self._engine_lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = {**self.__dict__}
        del state["_engine_lock"]
        state.pop("_checkpoint", None)  # taken afresh by every call of train()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _engine_lock=threading.Lock())

    @property
    def k(self) -> int:
        return self.engine.k

    @property
    def epochs_done(self) -> int:
        return len(self.losses)

    def train(
        self,
        epochs: int,
        on_progress: Callable[[Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        report_every_s: float = 0.2,
    ) -> str:
        """Train until `epochs` epochs are done in total; returns the status.

        `on_progress` is called after the first step, then at most every `report_every_s` seconds, and
        once at the end; `should_stop` is polled between steps.
        """
        check_epochs(epochs)
        with self._engine_lock:
            return self._train(epochs, on_progress, should_stop, report_every_s)

    def _train(self, epochs, on_progress, should_stop, report_every_s) -> str:
        if self.status == DIVERGED:
            return self.status
        start, started_at = self.epochs_done, time.perf_counter()
        pending: list[torch.Tensor] = []  # losses not yet read back: reading each one would sync a GPU
        steps_per_call = 1
        next_report = started_at  # the first report follows the first step: a live view shows it at once
        self.status = STOPPED
        self._checkpoint = (self.epochs_done, self.engine.params.clone())  # every model still in it is finite
        self._checkpointed_at, self._checkpoint_cost = started_at, 0.0
        if not self.timeline.frames:
            self._take_frame()  # what the untrained network makes of its image
        next_frame = next_frame_epoch(self.timeline.epochs[-1])
        try:
            with one_cpu_thread():
                while (stepped := self.epochs_done + sum(map(len, pending))) < epochs:
                    if should_stop is not None and should_stop():
                        break
                    count = min(steps_per_call, epochs - stepped, next_frame - stepped)
                    call_started = time.perf_counter()
                    pending.append(self.engine.steps(self.targets, count))
                    if stepped + count == next_frame:
                        self.timeline.add(Frame(next_frame, self._watched_outputs()))
                        next_frame = next_frame_epoch(next_frame)
                    seconds_per_step = max(time.perf_counter() - call_started, 1e-9) / count
                    steps_per_call = max(1, min(MAX_STEPS_PER_CALL, int(STEPS_CALL_S / seconds_per_step)))
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
            self._restore_diverged()
            self._take_frame()
            self.train_seconds += time.perf_counter() - started_at
        self._report(on_progress, epochs, start, started_at)
        return self.status

    def _flush(self, pending: list[torch.Tensor]) -> bool:
        """Move pending losses into `losses`; False once every model has diverged."""
        chunk = torch.cat(pending).cpu()
        pending.clear()
        first_epoch = self.epochs_done + 1
        self.losses = torch.cat([self.losses, chunk])
        bad = ~torch.isfinite(chunk)
        checkpoint_epoch, checkpoint = self._checkpoint
        newly = [m for m in bad.any(0).nonzero().flatten().tolist() if m not in self.diverged]
        for model in newly:
            self.diverged[model] = checkpoint_epoch
            self._kept_weights[model] = checkpoint[model].clone()
        if newly:
            model = newly[0]
            row = int(bad[:, model].nonzero()[0])
            who = "" if self.k == 1 else f" for {len(self.diverged)} of {self.k} models (first: model {model})"
            self.message = (
                f"Loss became {chunk[row, model].item()} at epoch {first_epoch + row}{who}: the "
                f"learning rate {self.lr:g} is too large. Kept the weights of epoch "
                f"{checkpoint_epoch}, the last checkpoint with a finite loss."
            )
        trainer_state.mask_diverged(self.losses, self.diverged)
        if len(self.diverged) == self.k:
            self.losses = self.losses[: max(self.diverged.values())]
            self.status = DIVERGED
            return False
        self._maybe_checkpoint()
        return True

    def _maybe_checkpoint(self) -> None:
        # Copying every weight takes a while at large K: spend at most 1% of the time on it. The copy
        # goes into the same buffer every time: a fresh one costs a page fault every 4 kB, 20-40x the copy.
        # The losses seen so far are of the weights before the last step, so the weights now are taken
        # only where the models still training give finite outputs (a finite loss): after one step at
        # lr 1e30 the weights are finite, near 1e30, and the outputs NaN.
        now = time.perf_counter()
        if now - self._checkpointed_at >= 100 * self._checkpoint_cost and self._outputs_finite():
            _, weights = self._checkpoint
            self._checkpoint = (self.epochs_done, weights.copy_(self.engine.params))
            self._checkpointed_at = time.perf_counter()
            self._checkpoint_cost = self._checkpointed_at - now

    def _outputs_finite(self) -> bool:
        training = [model for model in range(self.k) if model not in self.diverged]
        return bool(self.engine.reconstruct(self.targets)[training].isfinite().all())

    def _restore_diverged(self) -> None:
        for model, weights in self._kept_weights.items():
            self.engine.params[model].copy_(weights)

    def _watched_outputs(self) -> np.ndarray:
        return self.engine.reconstruct(self.targets, first=WATCHED).cpu().numpy()

    def _take_frame(self) -> None:
        """A frame of the outputs now, at `epochs_done`; where every model diverged, the frames taken
        after the epoch whose weights they went back to are dropped first."""
        self.timeline.drop_after(self.epochs_done)
        self.timeline.add(Frame(self.epochs_done, self._watched_outputs()))

    def _report(self, on_progress, target_epochs: int, start: int, started_at: float) -> None:
        if on_progress is None or not self.epochs_done:
            return
        elapsed = time.perf_counter() - started_at
        rate = (self.epochs_done - start) / elapsed if elapsed > 0 else 0.0
        loss = torch.nanmedian(self.losses[-1]).item()
        # The newest frame, where it was taken at this epoch (at the end of every call, and at each frame
        # epoch), holds these very outputs: no second forward pass for them.
        newest = self.timeline.frames[-1] if self.timeline.frames else None
        outputs = newest.outputs if newest and newest.epoch == self.epochs_done else self._watched_outputs()
        on_progress(Progress(self.epochs_done, target_epochs, loss, rate, outputs))

    # -- kept elsewhere (store.py writes it to disk, worker.py sends it to a child process) -----------
    def saved_state(self) -> dict:
        """Everything this trainer learned, as numpy arrays, numbers and strings, so that a process
        without torch can hold it and numpy's `savez` can write it: `load_saved_state` on a trainer of
        the same settings puts it back, and training then goes on exactly as it would have here."""
        with self._engine_lock:
            params, exp_avg, exp_avg_sq = (tensor.cpu().numpy().copy() for tensor in self.engine.state_tensors())
            kept = sorted(self._kept_weights)
            frames = self.timeline.frames
            return {
                "params": params,
                "exp_avg": exp_avg,
                "exp_avg_sq": exp_avg_sq,
                "steps_done": int(self.engine.steps_done),
                "losses": self.losses.numpy().copy(),  # (epochs, K)
                "diverged_models": np.array(list(self.diverged), dtype=np.int64),
                "diverged_epochs": np.array(list(self.diverged.values()), dtype=np.int64),
                "kept_models": np.array(kept, dtype=np.int64),  # their weights from before they diverged
                "kept_weights": np.stack([self._kept_weights[m].cpu().numpy() for m in kept])
                if kept
                else np.empty((0, params.shape[1]), np.float32),
                "frame_epochs": np.array([frame.epoch for frame in frames], dtype=np.int64),
                "frame_outputs": np.stack([frame.outputs for frame in frames])
                if frames
                else np.empty((0, min(self.k, WATCHED), *IMAGE_SHAPE), np.float32),
                "status": self.status,
                "message": self.message,
                "train_seconds": self.train_seconds,
            }

    def load_saved_state(self, state: dict) -> None:
        with self._engine_lock:
            buffers = self.engine.state_tensors()
            trainer_state.check_fits(state, tuple(buffers[0].shape))
            for buffer, name in zip(buffers, ("params", "exp_avg", "exp_avg_sq")):
                buffer.copy_(torch.from_numpy(np.array(state[name], np.float32)))
            self.engine.steps_done.fill_(int(state["steps_done"]))
            self.losses = torch.from_numpy(np.array(state["losses"], np.float32))  # a copy: arrays may be read-only
            self.diverged = trainer_state.diverged(state)
            self._kept_weights = {
                model: torch.from_numpy(np.array(weights))
                for model, weights in zip(state["kept_models"].tolist(), state["kept_weights"])
            }
            self.timeline = trainer_state.timeline(state)
            self.status, self.message = str(state["status"]), str(state["message"])
            self.train_seconds = float(state["train_seconds"])

    def call(self, function: Callable, *args):
        """`function(self, *args)`: what a `worker.RemoteTrainer` runs in a child process, run here."""
        return function(self, *args)

    def wait_until_idle(self, timeout_s: float = 30) -> None:
        """Return once no call of `train()` (or a read of the weights) is under way, or after `timeout_s`."""
        if self._engine_lock.acquire(timeout=timeout_s):
            self._engine_lock.release()

    def reconstructions(self) -> torch.Tensor:
        """Each network's output for its training image, (K, 3, 32, 32) on the CPU, unclamped."""
        with self._engine_lock, one_cpu_thread():
            return self.engine.reconstruct(self.targets).cpu()

    # -- the first model, the only one of a single pair's run ----------------------------------------
    @property
    def loss_history(self) -> list[float]:
        return self.losses[:, 0].tolist()

    def reconstruction(self) -> torch.Tensor:
        """The first network's output for its training image, (3, 32, 32) on the CPU, unclamped."""
        return self.reconstructions()[0]

    def state_dict(self):
        """The first network's weights, as `Autoencoder.state_dict()` has them."""
        with self._engine_lock:
            return self.engine.state_dict(0)


class Trainer(BatchTrainer):
    """One autoencoder trained on one image (3, 32, 32)."""

    def __init__(
        self,
        target: torch.Tensor,
        lr: float = SEED_LR,
        seed: int = 0,
        device: torch.device | str | None = None,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
    ) -> None:
        target = torch.as_tensor(target)
        if tuple(target.shape) != IMAGE_SHAPE:
            raise ValueError(f"target must have shape {IMAGE_SHAPE}, got {tuple(target.shape)}")
        super().__init__(target.unsqueeze(0), lr, seed, device, engine, architecture)
