"""The experiment's settings, without torch: the seed's values, the engines, and the checks that turn a
bad value into a clear message. Pages import these to draw their forms before anything trains."""

import math

from .architecture import Architecture

SEED_EPOCHS = 10_000
SEED_LR = 1e-3
ENGINES = ("fast", "grouped", "reference")  # training.py has what each is


def check_epochs(epochs) -> int:
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a whole number of at least 1 (got {epochs!r})")
    return epochs


def check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"learning rate must be a finite number above 0 (got {lr!r})")
    return float(lr)


def engine_for(name: str, architecture: Architecture) -> str:
    """The engine that trains `architecture` when `name` is asked for: the fast engine is laid out for
    the seed's outer channels (width 1, any latent channels), and other widths train on the grouped one."""
    if name not in ENGINES:
        raise ValueError(f"the engine must be one of {', '.join(ENGINES)} (got {name!r})")
    return "grouped" if name == "fast" and architecture.width != 1.0 else name
