"""The seed's experiment over many pairs at once: K random (MNIST, CIFAR-10) pairs trained side by side.

One pair says little about the method; a study trains K pairs together (`BatchTrainer`, one network
per pair, each exactly as a single run with the same seed would train) and summarises the seed's
table as distributions.
"""

from __future__ import annotations

import random
import statistics
from typing import TYPE_CHECKING

import numpy as np

from . import data
from .architecture import SEED_ARCHITECTURE, Architecture
from .experiment import PairResult, new_trainer, pair_result
from .mixing import SEED_ALPHA, check_alpha, mix
from .settings import SEED_LR

if TYPE_CHECKING:
    import torch

MAX_PAIRS = 256
METRICS = ("psnr", "ssim", "ssim_gaussian")  # metrics.Quality's fields
SCORES = [(dataset, metric) for dataset in ("mnist", "cifar") for metric in METRICS]


def check_pairs(pairs) -> int:
    if isinstance(pairs, bool) or not isinstance(pairs, int) or not 1 <= pairs <= MAX_PAIRS:
        raise ValueError(f"the number of pairs must be a whole number from 1 to {MAX_PAIRS} (got {pairs!r})")
    return pairs


def pick_pairs(source: str, pairs: int, seed: int) -> list[tuple[int, int]]:
    """`pairs` distinct (mnist_index, cifar_index) pairs drawn from `source`, the same for the same seed."""
    n_mnist = data.collection_size(data.MNIST, source)
    n_cifar = data.collection_size(data.CIFAR10, source)
    if check_pairs(pairs) > n_mnist * n_cifar:
        raise ValueError(f"the {source} source has only {n_mnist * n_cifar} distinct pairs")
    return [divmod(flat, n_cifar) for flat in random.Random(seed).sample(range(n_mnist * n_cifar), pairs)]


class Study:
    """K pairs and the batch trainer of their mixes; `train` may be called again to continue
    (`in_child_process`: as in experiment.py)."""

    def __init__(
        self,
        source: str = "sample",
        pairs: int = 16,
        alpha: float = SEED_ALPHA,
        lr: float = SEED_LR,
        seed: int = 0,
        device: torch.device | str | None = None,
        engine: str = "fast",
        architecture: Architecture = SEED_ARCHITECTURE,
        in_child_process: bool = False,
    ) -> None:
        self.source, self.alpha, self.seed = source, check_alpha(alpha), seed
        self.indices = pick_pairs(source, pairs, seed)
        self.samples = [data.load_pair(source, i, j) for i, j in self.indices]
        self.mixed = np.stack([mix(m.image, c.image, self.alpha) for m, c in self.samples])
        self.trainer = new_trainer(self.mixed, lr, seed, device, engine, architecture, in_child_process)

    def train(self, epochs: int, **callbacks) -> str:
        return self.trainer.train(epochs, **callbacks)

    def results(self) -> list[PairResult]:
        reconstructions = self.trainer.reconstructions()
        return [
            pair_result(mnist, cifar, self.alpha, mixed, reconstruction)
            for (mnist, cifar), mixed, reconstruction in zip(self.samples, self.mixed, reconstructions)
        ]


def score_lists(results: list[PairResult]) -> dict[str, dict[str, list[float]]]:
    """{"mnist"|"cifar": {"psnr"|"ssim"|"ssim_gaussian": [one value per pair]}}."""
    lists: dict = {"mnist": {}, "cifar": {}}
    for dataset, metric in SCORES:
        lists[dataset][metric] = [getattr(result.quality[dataset], metric) for result in results]
    return lists


def summarize(results: list[PairResult]) -> dict[str, dict[str, dict[str, float]]]:
    """{"mnist"|"cifar": {"psnr"|"ssim"|"ssim_gaussian": {mean, std, median, min, max}}} over the pairs."""
    return {
        dataset: {
            metric: {
                "mean": statistics.fmean(values),
                "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
            }
            for metric, values in by_metric.items()
        }
        for dataset, by_metric in score_lists(results).items()
    }
