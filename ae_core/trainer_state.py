"""A trainer's state as numpy arrays, numbers and strings (`BatchTrainer.saved_state()`): what the run
store writes to disk and what the app's server and its training processes hand each other.

numpy's npz format holds it and reads it back without pickle, so a store file can hold arrays and
numbers, never code; and a process that holds a state needs no torch (the app's server does not
import it: worker.py). Its entries:

    params, exp_avg, exp_avg_sq   (K, parameters) float32: the weights and both Adam moments
    steps_done                    Adam's step count
    losses                        (epochs, K) float32, NaN after a diverged model's kept epoch
    diverged_models, diverged_epochs    which models diverged, and the epoch whose weights each keeps
    kept_models, kept_weights     those models' weights from that epoch, (diverged, parameters)
    frame_epochs, frame_outputs   the timeline: (frames,) and (frames, watched, 3, 32, 32)
    status, message, train_seconds
"""

import io
import math
import zipfile

import numpy as np

from .timeline import Frame, Timeline


def check_fits(state: dict, weights_shape: tuple[int, int]) -> None:
    """Weights saved from one network are never loaded into another's (K, parameters) buffers."""
    saved = tuple(state["params"].shape)
    if saved != tuple(weights_shape):
        raise ValueError(f"a saved state of {saved} weights does not fit this trainer's {tuple(weights_shape)}")


def mask_diverged(losses, diverged: dict[int, int]) -> None:
    """NaN in `losses` (epochs, K; an array or a tensor) after each diverged model's kept epoch."""
    for model, epoch in diverged.items():
        losses[epoch:, model] = math.nan


def diverged(state: dict) -> dict[int, int]:
    """Model -> the epoch whose weights it keeps."""
    return dict(zip(state["diverged_models"].tolist(), state["diverged_epochs"].tolist()))


def timeline(state: dict) -> Timeline:
    return Timeline(
        [Frame(epoch, outputs) for epoch, outputs in zip(state["frame_epochs"].tolist(), state["frame_outputs"])]
    )


def encode(state: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **state)
    return buffer.getvalue()


def decode(blob: bytes) -> dict:
    """`encode`'s state back, or the state of a blob that an earlier version wrote with torch.save."""
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:  # both formats are zip files
        if any(name.endswith("/data.pkl") for name in archive.namelist()):
            return _from_torch_save(blob)
    with np.load(io.BytesIO(blob), allow_pickle=False) as arrays:
        return {name: arrays[name] if arrays[name].ndim else arrays[name].item() for name in arrays.files}


def _from_torch_save(blob: bytes) -> dict:
    """The state as the run store kept it before it was numpy's: tensors, lists and dicts in torch.save's
    format, read with `weights_only` (tensors and numbers only, never code)."""
    import torch  # only for a store written by that version

    old = torch.load(io.BytesIO(blob), weights_only=True)
    kept = sorted(old["kept_weights"])
    params = old["params"].numpy()
    outputs = old["frame_outputs"]
    return {
        "params": params,
        "exp_avg": old["exp_avg"].numpy(),
        "exp_avg_sq": old["exp_avg_sq"].numpy(),
        "steps_done": int(old["steps_done"]),
        "losses": old["losses"][: old["epochs_done"]].numpy(),
        "diverged_models": np.array(list(old["diverged"]), dtype=np.int64),
        "diverged_epochs": np.array(list(old["diverged"].values()), dtype=np.int64),
        "kept_models": np.array(kept, dtype=np.int64),
        "kept_weights": np.stack([old["kept_weights"][m].numpy() for m in kept])
        if kept
        else np.empty((0, params.shape[1]), np.float32),
        "frame_epochs": np.array(old["frame_epochs"], dtype=np.int64),
        "frame_outputs": torch.stack(outputs).numpy() if outputs else np.empty((0, 1, 3, 32, 32), np.float32),
        "status": old["status"],
        "message": old["message"],
        "train_seconds": float(old["train_seconds"]),
    }
