"""Is it an autoencoder or a memorizer? A trained network run, without training, on inputs it never saw.

The seed trains one network on one image and scores how well it gives that image back. A network of
0.21 M weights can memorize one picture; what it does with another says whether it learned to encode
images at all. The probe takes the trained weights into the plain `Autoencoder` (model.py) and feeds it
the mixes of other pairs from the same source, each original alone, and the same pair mixed at another
α, and scores what comes back as the experiment does. Only `network` and `reconstruct` touch torch,
and import it when called; they run through the trainer's `call`, which for the app's trainers is in
a child process (worker.py): the server that offers the probe has no torch.
"""

import random
import statistics
from dataclasses import dataclass

import numpy as np

from . import data
from .data import Sample
from .experiment import Experiment, PairResult, pair_result
from .metrics import Quality, quality
from .mixing import check_alpha, mix, unmix
from .study import Study

MAX_UNSEEN = 64
TRAINED, UNSEEN, OTHER_ALPHA, ALONE = KINDS = ("trained pair", "unseen pair", "other α", "original alone")


def check_unseen(count) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_UNSEEN:
        raise ValueError(f"the number of unseen pairs must be a whole number from 1 to {MAX_UNSEEN} (got {count!r})")
    return count


@dataclass(frozen=True)
class ProbeRow:
    """One input given to a trained network, and what it gave back."""

    kind: str  # one of KINDS
    label: str
    input: np.ndarray  # (3, 32, 32)
    reconstruction: np.ndarray  # the network's output, unclamped
    fit: Quality  # the reconstruction against the input
    pair: PairResult | None  # un-mixed and scored, where the input is a pair's mix


def network(trainer, model: int = 0):
    """Model `model` of a trainer as the plain `Autoencoder` (model.py), on the CPU, ready to evaluate."""
    from .model import Autoencoder

    autoencoder = Autoencoder(trainer.architecture)
    autoencoder.load_state_dict(trainer.engine.state_dict(model))
    return autoencoder.eval()


def reconstruct(autoencoder, inputs: np.ndarray) -> np.ndarray:
    """(N, 3, 32, 32) -> the network's outputs for each, unclamped."""
    import torch

    with torch.no_grad():
        return autoencoder(torch.from_numpy(np.array(inputs, dtype=np.float32))).numpy()  # a copy: may be read-only


def network_outputs(trainer, inputs: np.ndarray, model: int = 0) -> np.ndarray:
    """What model `model` of `trainer` outputs for `inputs` (N, 3, 32, 32), unclamped."""
    return reconstruct(network(trainer, model), inputs)


def unseen_pairs(source: str, count: int, seed: int, trained: list[tuple[int, int]]) -> list[tuple[Sample, Sample]]:
    """`count` random pairs of `source` that none of the `trained` (mnist_index, cifar_index) pairs is,
    the same ones for the same seed. Each digit and photo differs from the trained ones where the
    source has enough of them, so an unseen pair shares no image with a trained one."""
    check_unseen(count)
    n_mnist, n_cifar = data.collection_size(data.MNIST, source), data.collection_size(data.CIFAR10, source)
    used_mnist, used_cifar = {i for i, _ in trained}, {j for _, j in trained}
    mnist = [i for i in range(n_mnist) if i not in used_mnist] or list(range(n_mnist))
    cifar = [j for j in range(n_cifar) if j not in used_cifar] or list(range(n_cifar))
    draw = random.Random(seed)
    chosen = set()
    while len(chosen) < min(count, len(mnist) * len(cifar)):
        pair = (draw.choice(mnist), draw.choice(cifar))
        if pair not in trained:
            chosen.add(pair)
    return [data.load_pair(source, i, j) for i, j in sorted(chosen, key=lambda pair: (pair[0], pair[1]))]


def chosen_pairs(text: str, source: str) -> list[tuple[Sample, Sample]]:
    """Pairs typed as "MNIST index/CIFAR-10 index", separated by commas ("5/3, 12/7"), from `source`."""
    try:
        indices = [tuple(int(index) for index in part.split("/")) for part in text.replace(",", " ").split()]
    except ValueError:
        indices = [()]
    if not indices or any(len(pair) != 2 for pair in indices):
        raise ValueError(f"pairs are written as MNIST index/CIFAR-10 index, separated by commas (got {text!r})")
    check_unseen(len(indices))
    try:
        return [data.load_pair(source, i, j) for i, j in indices]
    except IndexError as error:
        raise ValueError(str(error)) from None


def probe_pair(
    experiment: Experiment, unseen: list[tuple[Sample, Sample]], other_alpha: float | None = None
) -> list[ProbeRow]:
    """The trained pair's network on: its own mix (for comparison), each unseen pair's mix at the
    same α, each original alone, and (where given) its own pair mixed at `other_alpha`."""
    if not experiment.trainer.epochs_done:
        raise ValueError("nothing is trained yet: train the pair before probing its network")
    alpha = experiment.alpha
    mnist, cifar = experiment.mnist, experiment.cifar
    mixes = [(TRAINED, f"{mnist.caption} + {cifar.caption}", mnist, cifar, alpha)]
    mixes += [(UNSEEN, f"{m.caption} + {c.caption}", m, c, alpha) for m, c in unseen]
    if other_alpha is not None:
        mixes.append((OTHER_ALPHA, f"the same pair at α {check_alpha(other_alpha):g}", mnist, cifar, other_alpha))
    inputs = np.stack([mix(m.image, c.image, a) for *_, m, c, a in mixes] + [mnist.image, cifar.image])
    outputs = experiment.trainer.call(network_outputs, inputs)
    rows = []
    for (kind, label, m, c, a), mixed, output in zip(mixes, inputs, outputs):
        result = pair_result(m, c, a, mixed, output)
        rows.append(ProbeRow(kind, label, mixed, output, result.quality["mixed"], result))
    for sample, output in zip((mnist, cifar), outputs[len(mixes) :]):
        rows.append(
            ProbeRow(ALONE, f"{sample.caption} alone", sample.image, output, quality(sample.image, output), None)
        )
    return rows


def unmixed_psnr(mnist: np.ndarray, cifar: np.ndarray, reconstruction: np.ndarray, alpha: float) -> np.ndarray:
    """The un-mixed MNIST's PSNR (dB) for batches (N, 3, 32, 32), as scikit-image computes it over all
    values with data range 1, without its per-image call: a study probe scores thousands."""
    unmixed, _ = unmix(reconstruction, mnist, cifar, alpha)
    mse = np.square(unmixed.astype(np.float64) - mnist.astype(np.float64)).reshape(len(mnist), -1).mean(1)
    return 10 * np.log10(1 / mse)


@dataclass(frozen=True)
class StudyProbe:
    """Each network of a study scored on its own pair and on the same unseen pairs."""

    unseen: list[tuple[Sample, Sample]]
    trained_psnr: list[float]  # the un-mixed MNIST's PSNR of each network on its own pair
    unseen_psnr: list[list[float]]  # [network][unseen pair]

    @property
    def unseen_medians(self) -> list[float]:
        return [statistics.median(scores) for scores in self.unseen_psnr]

    @property
    def gap_db(self) -> float:
        """How much better the median network does on its own pair than on pairs it never saw."""
        return statistics.median(self.trained_psnr) - statistics.median(self.unseen_medians)


def probe_study(study: Study, unseen_count: int, seed: int = 0) -> StudyProbe:
    """Every trained network of `study` on `unseen_count` mixes of pairs none of them trained on."""
    if not study.trainer.epochs_done:
        raise ValueError("nothing is trained yet: run the study before probing its networks")
    unseen = unseen_pairs(study.source, unseen_count, seed, study.indices)
    mnist = np.stack([m.image for m, _ in unseen])
    cifar = np.stack([c.image for _, c in unseen])
    inputs = mix(mnist, cifar, study.alpha)
    own_mnist = np.stack([m.image for m, _ in study.samples])
    own_cifar = np.stack([c.image for _, c in study.samples])
    trained, scores = study.trainer.call(
        _unmixed_psnr_of_each, own_mnist, own_cifar, study.mixed, mnist, cifar, inputs, study.alpha
    )
    return StudyProbe(unseen, trained, scores)


def _unmixed_psnr_of_each(trainer, own_mnist, own_cifar, own_mixed, mnist, cifar, inputs, alpha):
    """Each network's un-mixed MNIST PSNR on its own pair, and on every one of the `inputs`' pairs."""
    trained, scores = [], []
    for k in range(trainer.k):
        autoencoder = network(trainer, k)
        own = reconstruct(autoencoder, own_mixed[k : k + 1])
        trained.append(float(unmixed_psnr(own_mnist[k : k + 1], own_cifar[k : k + 1], own, alpha)[0]))
        scores.append(unmixed_psnr(mnist, cifar, reconstruct(autoencoder, inputs), alpha).tolist())
    return trained, scores
