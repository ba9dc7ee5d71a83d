"""A sweep: the same pairs at several learning rates, epoch counts or latent sizes, scored at each value.

An epochs sweep trains one study and scores it each time it reaches a value (so it costs no more than
the largest value); a learning-rate sweep trains one study per rate, each on the same pairs from the
same initial weights; a latent sweep one study per network size (architecture.Architecture), its pairs all
together. `run` may be called again after a stop: it goes on where it stopped.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from .architecture import LATENT_CHANNELS, SEED_ARCHITECTURE, Architecture
from .mixing import SEED_ALPHA
from .progress import DIVERGED, FINISHED, STOPPED, Progress
from .settings import SEED_LR, check_epochs, check_lr
from .study import Study, score_lists, summarize

SWEEPABLE = {"lr": "learning rate", "epochs": "epochs", "latent": "latent channels"}
MAX_VALUES = 8


def _check_setting(over: str) -> str:
    if over not in SWEEPABLE:
        raise ValueError(f"a sweep goes over {', '.join(SWEEPABLE)} (got {over!r})")
    return over


def check_values(over: str, values) -> list:
    """The values to sweep, in ascending order; a ValueError says what is wrong with them."""
    _check_setting(over)
    values = list(values)
    if not 1 <= len(values) <= MAX_VALUES:
        raise ValueError(f"a sweep takes 1 to {MAX_VALUES} values (got {len(values)})")
    values = sorted({"epochs": check_epochs, "lr": check_lr, "latent": _check_latent}[over](value) for value in values)
    if len(set(values)) < len(values):
        raise ValueError(f"each {SWEEPABLE[over]} may appear once")
    return values


def _check_latent(channels) -> int:
    if isinstance(channels, bool) or channels not in LATENT_CHANNELS:
        raise ValueError(f"latent channels must be among {', '.join(map(str, LATENT_CHANNELS))} (got {channels!r})")
    return channels


def parse_values(over: str, text: str) -> list:
    """Values typed as text, separated by commas or spaces ("3e-4, 1e-3"), checked as above."""
    convert = float if _check_setting(over) == "lr" else int
    try:
        values = [convert(part) for part in text.replace(",", " ").split()]
    except ValueError:
        kind = "numbers" if over == "lr" else "whole numbers"
        raise ValueError(f"{SWEEPABLE[over]} values must be {kind} separated by commas (got {text!r})") from None
    return check_values(over, values)


@dataclass(frozen=True)
class SweepPoint:
    value: float | int
    epochs: int
    lr: float
    diverged: int  # models that diverged (their kept weights are scored)
    engine: str  # which trained them: "fast", or "grouped" for another network than the seed's
    architecture: dict  # architecture.Architecture.as_dict() of the networks
    scores: dict[str, dict[str, list[float]]]  # dataset -> metric -> one value per pair
    summary: dict


class Sweep:
    """`values` of `over` ("lr", "epochs" or "latent"); the settings not swept are held at `lr`,
    `epochs` and `architecture`."""

    def __init__(
        self,
        over: str,
        values,
        source: str = "sample",
        pairs: int = 16,
        epochs: int = 2000,
        lr: float = SEED_LR,
        alpha: float = SEED_ALPHA,
        seed: int = 0,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
        in_child_process: bool = False,
    ) -> None:
        self.over, self.values = over, check_values(over, values)
        self.epochs, self.lr, self.architecture = check_epochs(epochs), check_lr(lr), architecture
        self.study_settings = {"source": source, "pairs": pairs, "alpha": alpha, "seed": seed, "engine": engine}
        self.in_child_process = in_child_process  # as Study takes it
        self.points: list[SweepPoint] = []
        self.study: Study | None = None  # the one being trained for the next point
        if over == "epochs":
            self.study = Study(
                **self.study_settings, lr=self.lr, architecture=architecture, in_child_process=in_child_process
            )

    @property
    def done(self) -> bool:
        return len(self.points) == len(self.values)

    def run(
        self,
        on_progress: Callable[[int, Progress], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> str:
        """Train and score the values not done yet; returns FINISHED, or STOPPED with the points so far.
        `on_progress(index, progress)` reports on the value `values[index]`."""
        while not self.done:
            index = len(self.points)
            value = self.values[index]
            epochs = value if self.over == "epochs" else self.epochs
            lr = value if self.over == "lr" else self.lr
            if self.study is None:
                architecture = self.architecture
                if self.over == "latent":
                    architecture = Architecture(value, self.architecture.width)
                self.study = Study(
                    **self.study_settings, lr=lr, architecture=architecture, in_child_process=self.in_child_process
                )
            report = None if on_progress is None else partial(on_progress, index)
            status = self.study.train(epochs, on_progress=report, should_stop=should_stop)
            if status == STOPPED:
                return STOPPED
            self.points.append(_score(self.study, value, epochs, lr))
            if self.over != "epochs":
                self.study = None
            elif status == DIVERGED:  # every model diverged: later epoch counts would score the same weights
                self.values = self.values[: len(self.points)]
        return FINISHED


def _score(study: Study, value, epochs: int, lr: float) -> SweepPoint:
    results = study.results()
    trainer = study.trainer
    return SweepPoint(
        value,
        epochs,
        lr,
        len(trainer.diverged),
        trainer.engine.name,
        trainer.architecture.as_dict(),
        score_lists(results),
        summarize(results),
    )
