"""Training in a child process, for servers that host several trainings at once (the app).

A training step replays ~50 small kernels from Python, and Python runs one thread at a time. In the
web server's own process, eight trainings keep that lock busy and a page load waits its turn behind
them; their allocations also stay in the server's heap after they end. A child process has an
interpreter of its own, runs at a lower priority, and gives all its memory back when it exits.

The trainer goes over a pipe by value (containers often have a small /dev/shm, so no shared memory):
the trainer pickled without its big tensors, then the weights and Adam moments buffer to buffer.
Losses come back as they are flushed; the final state comes back when the child stops, also when
the caller is interrupted (a Streamlit Stop raises out of `on_progress`), so nothing learned is lost.
"""

import multiprocessing
import os
import pickle
import sys
import threading
import types
from collections.abc import Callable
from contextlib import contextmanager, suppress
from multiprocessing import forkserver

POLL_S = 0.05
_STOP = b"stop"


class TrainingFailed(RuntimeError):
    """The child process died (out of memory, killed); the trainer keeps its state from before the call."""


def _context():
    # forkserver: children fork from a clean process that has imported torch once, which takes a
    # fraction of the seconds a fresh interpreter needs and never forks the server's threads.
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    # Preloaded: this module and the trainer's, whose import brings torch and the engine, so a child
    # has them before it unpickles a trainer. (training.py imports this module, so not the reverse.)
    context.set_forkserver_preload([__name__, "ae_core.training"])
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
    # Plain pickle: torch's multiprocessing reductions would move every tensor into shared memory.
    pipe.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))


def _receive(pipe):
    return pickle.loads(pipe.recv_bytes())


def _raw(tensor) -> memoryview:
    """A CPU tensor's bytes, to send or to receive into. (This module imports no torch: the server
    that calls it need not, until a training's results come back.)"""
    return memoryview(tensor.numpy()).cast("B")


def train_in_child(
    trainer, epochs: int, on_progress: Callable | None, should_stop: Callable[[], bool] | None, report_every_s: float
) -> str:
    """`trainer.train(...)` run on a copy of `trainer` in a child process; `trainer` ends as if it had
    run here. Only the trainer's public face crosses: `snapshot()`, `merge()`, `restore()`, its losses
    and `engine.state_tensors()`."""
    context = _context()
    pipe, child_end = context.Pipe()
    child = context.Process(target=_child_main, args=(child_end,), name="ae_core training", daemon=True)
    with _without_main_module():
        child.start()
    child_end.close()
    before = trainer.snapshot()
    try:
        with _child_failures(child):
            _send(pipe, (trainer, epochs, report_every_s))
            for tensor in trainer.engine.state_tensors():
                pipe.send_bytes(_raw(tensor))
        return _follow(trainer, pipe, child, on_progress, should_stop)
    except TrainingFailed:
        trainer.restore(before)
        raise
    except BaseException:
        with suppress(TrainingFailed):
            with _child_failures(child):
                pipe.send_bytes(_STOP)
            _follow(trainer, pipe, child, None, None)
        raise
    finally:
        pipe.close()
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join()


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


def _follow(trainer, pipe, child, on_progress, should_stop) -> str:
    """Merge what the child reports until it is done; returns its status."""
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
            kind, rows, diverged, frames, payload = _receive(pipe)
            trainer.merge(rows, diverged, frames)
            if kind == "progress":
                if on_progress is not None:
                    on_progress(payload)
                continue
            for tensor in trainer.engine.state_tensors():
                pipe.recv_bytes_into(_raw(tensor))
            trainer.restore(payload)
            return trainer.status


def _child_main(pipe) -> None:
    if hasattr(os, "nice"):
        os.nice(19)  # the server and its clients come first; training takes whatever CPU is left
    trainer, epochs, report_every_s = _receive(pipe)
    for tensor in trainer.engine.state_tensors():
        pipe.recv_bytes_into(_raw(tensor))
    sent = trainer.epochs_done
    frames_sent = trainer.timeline.epochs[-1] if trainer.timeline.frames else -1

    def news() -> tuple:
        """The losses and timeline frames not yet sent, and the diverged models."""
        nonlocal sent, frames_sent
        rows, sent = trainer.losses[sent:].numpy(), trainer.epochs_done
        frames = trainer.timeline.since(frames_sent)
        frames_sent = max([frames_sent, *(frame.epoch for frame in frames)])
        return rows, trainer.diverged, frames

    def report(progress) -> None:
        _send(pipe, ("progress", *news(), progress))

    trainer.train(epochs, on_progress=report, should_stop=pipe.poll, report_every_s=report_every_s)
    _send(pipe, ("done", *news(), trainer.snapshot()))
    for tensor in trainer.engine.state_tensors():
        pipe.send_bytes(_raw(tensor))
