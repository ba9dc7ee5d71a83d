"""Training in a child process, for servers that host several trainings at once (the app).

A training step replays ~50 small kernels from Python, and Python runs one thread at a time. In the
web server's own process, eight trainings keep that lock busy and a page load waits its turn behind
them; their allocations also stay in the server's heap after they end. A child process has an
interpreter of its own, runs at a lower priority while others train, and gives all its memory back
when it exits.

The server holds each trainer as a `RemoteTrainer`: a `BatchTrainer`'s state as numpy arrays
(trainer_state.py), every computation on it run in a child process on a `BatchTrainer` built from that
state: training, the networks' outputs, the weights file. So the server never imports torch: only the
fork server that children start from does, and one process holding torch costs 500 MB with PyPI's
default wheel (docs/performance.md, server memory). The state crosses a pipe by value (containers
often have a small /dev/shm, so no shared memory); losses and timeline frames come back as they are
flushed, and the new state when the child stops, also when the caller is interrupted (a Streamlit
Stop raises out of `on_progress`), so nothing learned is lost.
"""

import multiprocessing
import os
import pickle
import sys
import threading
import types
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from multiprocessing import forkserver

import numpy as np

from . import trainer_state
from .architecture import SEED_ARCHITECTURE, Architecture, check_targets
from .progress import DIVERGED
from .settings import SEED_LR, check_epochs, check_lr, engine_for
from .timeline import Timeline

POLL_S = 0.05
_STOP = b"stop"
CROWDED_NICE = 19  # the priority of every child while more than one runs

# The children running now. A lone one trains at the server's priority: at nice 19 it gave way to the
# browser drawing its own live view on the same two cores, and the seed's 10,000 epochs took 1.58 times
# as long as in place against 1.46 at the server's priority (`python -m benchmarks.browser_feedback`,
# 5 and 3 rounds). Once two run, every child goes to nice 19, so the server keeps answering page loads
# while many sessions train (tests/test_browser_faults.py); a lowered priority is never raised again,
# which only a privileged process may do.
_running: set[int] = set()
_running_lock = threading.Lock()


class TrainingFailed(RuntimeError):
    """The child process died (out of memory, killed) or failed; the trainer keeps its state from before."""


def _context():
    # forkserver: children fork from a clean process that has imported torch once, which takes a
    # fraction of the seconds a fresh interpreter needs and never forks the server's threads.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Preloaded: this module, and torch with the engine loaded and warmed up (fork_server.py), so a
    # child has them all before it unpickles its work.
    context.set_forkserver_preload([__name__, "ae_core.fork_server"])
    return context


_BLANK_MAIN = types.ModuleType("__main__")
_main_swap = threading.Lock()


@contextmanager
def _without_main_module():
    """multiprocessing re-runs the parent's `__main__` in every child, and under Streamlit that is the
    app script itself (Streamlit installs each script run as `__main__`): a child would draw the page
    and start training again. Children here need nothing from it. Streamlit sets `__main__` from each
    session's thread without this lock, so another session may put the app back meanwhile: that is
    why streamlit_app.py also keeps its body under `if __name__ == "__main__"`."""
    with _main_swap:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = _BLANK_MAIN
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def warm_up() -> None:
    """Start the fork server now (it imports torch in the background), not at the first training."""
    if _context().get_start_method() == "forkserver":
        with _without_main_module():
            forkserver.ensure_running()


def _send(pipe, message) -> None:
    """Pickled with its arrays' bytes sent as they are (protocol 5's out-of-band buffers), not copied
    into the pickle first: a study's state is hundreds of MB. Plain pickle: torch's multiprocessing
    reductions would move tensors into shared memory (none should cross, but none will go there)."""
    buffers: list[pickle.PickleBuffer] = []
    header = pickle.dumps(message, protocol=5, buffer_callback=buffers.append)
    pipe.send_bytes(len(buffers).to_bytes(4, "little") + header)
    for buffer in buffers:
        pipe.send_bytes(buffer.raw())


def _receive(pipe):
    """A `_send`'s message; its arrays are read-only, over the bytes received."""
    message = pipe.recv_bytes()
    count = int.from_bytes(message[:4], "little")
    return pickle.loads(memoryview(message)[4:], buffers=[pipe.recv_bytes() for _ in range(count)])


@contextmanager
def _child_failures(child):
    """A broken pipe means the child is gone: say so in words."""
    try:
        yield
    except (OSError, EOFError) as error:
        child.join(timeout=1)
        raise TrainingFailed(
            f"The training process ended unexpectedly (exit code {child.exitcode}); the "
            "results from before this run are kept."
        ) from error


@dataclass(frozen=True)
class EngineInChild:
    """What trained a `RemoteTrainer` in its last child, as a `BatchTrainer`'s engine would say."""

    name: str
    device: str
    note: str = ""  # BatchTrainer.engine_note: why another engine ran than the one asked for


class RemoteTrainer:
    """A `BatchTrainer` for a server without torch: the same settings, public fields and calls, its
    state held here as numpy arrays and every computation on it run in a child process."""

    def __init__(
        self,
        targets: np.ndarray,
        lr: float = SEED_LR,
        seed: int = 0,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
    ) -> None:
        self.targets = np.asarray(targets, dtype=np.float32)
        check_targets(self.targets.shape)
        self.lr, self.seed, self.architecture = check_lr(lr), seed, architecture
        self.engine_asked = engine_for(engine, architecture)
        self.engine = EngineInChild(self.engine_asked, "cpu")  # until a child says what ran
        self._state: dict | None = None  # the child's `saved_state()` after its last training
        self._reconstructions: np.ndarray | None = None  # each network's output for its image, when known
        self._show(None)
        self._lock = threading.Lock()  # held by each call to a child, as BatchTrainer holds its engine

    def _show(self, state: dict | None) -> None:
        """The fields pages read, from `state` (None: untrained). A training adds to them as the child
        reports; a training that fails goes back to its state from before."""
        if state is None:
            self.losses = np.empty((0, self.k), np.float32)
            self.diverged, self.timeline = {}, Timeline()
            self.status, self.message, self.train_seconds = "", "", 0.0
        else:
            self.losses, self.diverged = state["losses"], trainer_state.diverged(state)
            self.timeline = trainer_state.timeline(state)
            self.status, self.message = str(state["status"]), str(state["message"])
            self.train_seconds = float(state["train_seconds"])

    @property
    def k(self) -> int:
        return len(self.targets)

    @property
    def epochs_done(self) -> int:
        return len(self.losses)

    @property
    def engine_note(self) -> str:
        return self.engine.note

    @property
    def loss_history(self) -> list[float]:
        return self.losses[:, 0].tolist()

    def train(
        self,
        epochs: int,
        on_progress: Callable | None = None,
        should_stop: Callable[[], bool] | None = None,
        report_every_s: float = 0.2,
    ) -> str:
        """`BatchTrainer.train`, in a child process."""
        check_epochs(epochs)
        with self._lock:
            if self.status != DIVERGED:
                self._in_child(("train", epochs, report_every_s), on_progress, should_stop)
            return self.status

    def call(self, function: Callable, *args):
        """`function(trainer, *args)` on this state's `BatchTrainer`, in a child process; `function` is
        found by its name there, and what it returns is sent back (arrays, not tensors)."""
        with self._lock:
            return self._in_child(("call", function, args), None, None)

    def reconstructions(self) -> np.ndarray:
        """Each network's output for its training image, (K, 3, 32, 32), unclamped."""
        if self._reconstructions is None:
            self._reconstructions = self.call(_reconstructions)
        return self._reconstructions

    def reconstruction(self) -> np.ndarray:
        return self.reconstructions()[0]

    def saved_state(self) -> dict:
        with self._lock:
            state = self._state
        return dict(state if state is not None else self.call(_saved_state))

    def load_saved_state(self, state: dict) -> None:
        trainer_state.check_fits(state, (self.k, self.architecture.parameters))
        with self._lock:
            self._state, self._reconstructions = dict(state), None
            self._show(state)

    def wait_until_idle(self, timeout_s: float = 30) -> None:
        """Return once no call to a child is under way, or after `timeout_s`."""
        if self._lock.acquire(timeout=timeout_s):
            self._lock.release()

    # -- the child ------------------------------------------------------------------------------------
    def _in_child(self, command: tuple, on_progress, should_stop):
        context = _context()
        pipe, child_end = context.Pipe()
        child = context.Process(target=_child_main, args=(child_end,), name="ae_core training", daemon=True)
        with _without_main_module():
            child.start()
        _count_in(child.pid)
        child_end.close()
        settings = (self.targets, self.lr, self.seed, self.engine_asked, self.architecture)
        try:
            with _child_failures(child):
                _send(pipe, (settings, self._state, command))
            return self._follow(pipe, child, on_progress, should_stop)
        except TrainingFailed:
            self._show(self._state)  # what the failed call reported is dropped
            raise
        except BaseException:
            with suppress(TrainingFailed):
                with _child_failures(child):
                    pipe.send_bytes(_STOP)
                self._follow(pipe, child, None, None)
            raise
        finally:
            pipe.close()
            with _running_lock:
                _running.discard(child.pid)
            threading.Thread(target=_reap, args=(child,), name="ae_core training ends", daemon=True).start()

    def _follow(self, pipe, child, on_progress, should_stop):
        """Take what the child reports until it is done; returns what it sends last."""
        stop_sent = False
        with _child_failures(child):
            while True:
                if should_stop is not None and not stop_sent and should_stop():
                    pipe.send_bytes(_STOP)
                    stop_sent = True
                if not pipe.poll(POLL_S):
                    if not child.is_alive() and not pipe.poll():
                        raise EOFError
                    continue
                kind, *payload = _receive(pipe)
                if kind == "failed":
                    raise TrainingFailed(f"The training process failed ({payload[0]}); what it had learned is kept.")
                if kind == "progress":
                    rows, diverged, frames, progress = payload
                    self._add(rows, diverged, frames)
                    if on_progress is not None:
                        on_progress(progress)
                    continue
                state, reconstructions, self.engine, result = payload
                if state is not None:
                    self._state, self._reconstructions = state, reconstructions
                    self._show(state)
                return result

    def _add(self, rows: np.ndarray, diverged: dict[int, int], frames: list) -> None:
        self.losses = np.concatenate([self.losses, rows])
        self.diverged = dict(diverged)
        trainer_state.mask_diverged(self.losses, self.diverged)  # reported rows may predate a divergence
        for frame in frames:
            self.timeline.add(frame)


def _count_in(pid: int) -> None:
    with _running_lock:
        _running.add(pid)
        if len(_running) > 1 and hasattr(os, "setpriority"):  # not on Windows
            for running in _running:
                with suppress(OSError):  # one that has just ended
                    os.setpriority(os.PRIO_PROCESS, running, CROWDED_NICE)


def _reap(child) -> None:
    """Wait for a child that has sent everything to end, and end it if it does not. Not on the caller's
    time: a child's exit takes 10 to 11 ms (its share of torch's address space torn down; an ad-hoc
    script timing the parent's join in five trainings), a sixth of a short training's own overhead."""
    child.join(timeout=10)
    if child.is_alive():
        child.kill()
        child.join()


def _reconstructions(trainer) -> np.ndarray:
    return trainer.reconstructions().numpy()


def _saved_state(trainer) -> dict:
    return trainer.saved_state()


def _child_main(pipe) -> None:
    try:
        (targets, lr, seed, engine, architecture), state, command = _receive(pipe)
        from .training import BatchTrainer  # the fork server has imported it

        trainer = BatchTrainer(np.array(targets), lr, seed, engine=engine, architecture=architecture)
        if state is not None:
            trainer.load_saved_state(state)
        state = None  # copied into the trainer: a 256-pair study's is 650 MB, held twice until now
        if command[0] == "train":
            _train(trainer, pipe, *command[1:])
            state, reconstructions, result = trainer.saved_state(), _reconstructions(trainer), trainer.status
        else:
            function, args = command[1:]
            state, reconstructions, result = None, None, function(trainer, *args)
        engine_used = EngineInChild(trainer.engine.name, str(trainer.engine.device), trainer.engine_note)
        _send(pipe, ("done", state, reconstructions, engine_used, result))
    except Exception as error:
        with suppress(OSError):
            _send(pipe, ("failed", f"{type(error).__name__}: {error}"))


def _train(trainer, pipe, epochs: int, report_every_s: float) -> None:
    """`trainer.train`, reporting the losses and timeline frames not yet sent with each progress."""
    sent = trainer.epochs_done
    frames_sent = trainer.timeline.epochs[-1] if trainer.timeline.frames else -1

    def report(progress) -> None:
        nonlocal sent, frames_sent
        rows, sent = trainer.losses[sent:].numpy(), trainer.epochs_done
        frames = trainer.timeline.since(frames_sent)
        frames_sent = max([frames_sent, *(frame.epoch for frame in frames)])
        _send(pipe, ("progress", rows, dict(trainer.diverged), frames, progress))

    trainer.train(epochs, on_progress=report, should_stop=pipe.poll, report_every_s=report_every_s)
