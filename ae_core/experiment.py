"""The seed's experiment for one pair: mix two images, train on the mix, un-mix, score.

Images are numpy arrays here, as data.py gives them: results are drawn and scored without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np

from .architecture import SEED_ARCHITECTURE, Architecture
from .data import Sample
from .metrics import Quality, quality
from .mixing import SEED_ALPHA, check_alpha, mix, unmix
from .settings import SEED_LR

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class PairResult:
    mnist: Sample
    cifar: Sample
    alpha: float
    mixed: np.ndarray
    reconstruction: np.ndarray  # network output for the mix
    unmixed_mnist: np.ndarray  # as computed, unclamped
    unmixed_cifar: np.ndarray
    # "mnist", "cifar", "mixed": each result against its original; "mix_vs_mnist", "mix_vs_cifar":
    # the mixed input itself against each original, the baseline that un-mixing has to beat.
    quality: dict[str, Quality]

    def images(self) -> dict[str, np.ndarray]:
        return {
            "mnist": self.mnist.image,
            "cifar": self.cifar.image,
            "mixed": self.mixed,
            # what came back, each in the place of what it is compared with: shown three over three
            # in a narrow window, each sits under its counterpart
            "unmixed_mnist": self.unmixed_mnist,
            "unmixed_cifar": self.unmixed_cifar,
            "reconstruction": self.reconstruction,
        }


def new_trainer(targets: np.ndarray, lr: float, seed: int, device, engine: str, architecture, in_child_process: bool):
    """A `BatchTrainer` of `targets` (K, 3, 32, 32), or with `in_child_process` a `worker.RemoteTrainer`
    of them: the same trainer, training and computing in child processes, for a server that hosts
    several trainings and imports no torch (the app). Imported here, not above: this module is torch-free."""
    settings = {"lr": lr, "seed": seed, "engine": engine, "architecture": architecture}
    if in_child_process:
        from .worker import RemoteTrainer

        return RemoteTrainer(targets, **settings)
    from .training import BatchTrainer

    return BatchTrainer(targets, device=device, **settings)


class Experiment:
    """A pair and the trainer of its mix; `train` may be called again to continue. With
    `in_child_process`, the trainer trains in child processes (worker.py), as the app's do."""

    def __init__(
        self,
        mnist: Sample,
        cifar: Sample,
        alpha: float = SEED_ALPHA,
        lr: float = SEED_LR,
        seed: int = 0,
        device: torch.device | str | None = None,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
        in_child_process: bool = False,
    ) -> None:
        self.mnist, self.cifar, self.alpha = mnist, cifar, check_alpha(alpha)
        self.mixed = mix(mnist.image, cifar.image, self.alpha)
        self.trainer = new_trainer(self.mixed[None], lr, seed, device, engine, architecture, in_child_process)

    def train(self, epochs: int, **callbacks) -> str:
        return self.trainer.train(epochs, **callbacks)

    def result(self, reconstruction: torch.Tensor | np.ndarray | None = None) -> PairResult:
        """Un-mixed and scored at the network's output now, or at `reconstruction` (3, 32, 32): one it
        gave earlier, such as a timeline frame's."""
        if reconstruction is None:
            reconstruction = self.trainer.reconstruction()
        return pair_result(self.mnist, self.cifar, self.alpha, self.mixed, reconstruction, self._baselines)

    @cached_property
    def _baselines(self) -> dict[str, Quality]:
        """The mix against each original: the same at every epoch, and two of the five scores of each of
        a timeline's ~46 frames."""
        return baselines(self.mnist, self.cifar, self.mixed)

    def results(self) -> list[PairResult]:
        """[result()]: a study of one pair, for code that shows either."""
        return [self.result()]


def baselines(mnist: Sample, cifar: Sample, mixed: np.ndarray) -> dict[str, Quality]:
    return {"mix_vs_mnist": quality(mnist.image, mixed), "mix_vs_cifar": quality(cifar.image, mixed)}


def pair_result(
    mnist: Sample,
    cifar: Sample,
    alpha: float,
    mixed: np.ndarray,
    reconstruction: torch.Tensor | np.ndarray,
    known_baselines: dict[str, Quality] | None = None,
) -> PairResult:
    """Un-mix a trained network's output (a CPU tensor or an array) and score everything against the
    originals (the mix's own scores, `baselines`, where not known already)."""
    reconstruction = np.asarray(reconstruction)
    unmixed_mnist, unmixed_cifar = unmix(reconstruction, mnist.image, cifar.image, alpha)
    return PairResult(
        mnist,
        cifar,
        alpha,
        mixed,
        reconstruction,
        unmixed_mnist,
        unmixed_cifar,
        {
            "mnist": quality(mnist.image, unmixed_mnist),
            "cifar": quality(cifar.image, unmixed_cifar),
            "mixed": quality(mixed, reconstruction),
            **(known_baselines or baselines(mnist, cifar, mixed)),
        },
    )
