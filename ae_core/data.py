"""The two images of the experiment: where they come from and how they become network inputs.

Sources ("collections" of each dataset):
  * "sample": the embedded pack `sample_pack.npz` (200 real MNIST test digits, 20 real CIFAR-10 test
    images; built by scripts/build_sample_pack.py), so everything works offline on first launch.
  * "train" / "test": the full datasets' splits through torchvision, once `download()` has fetched
    them into `data_dir()`.

Preprocessing follows the seed: MNIST 28x28 grey is resized to 32x32 with bilinear interpolation and
repeated to 3 channels; CIFAR-10 stays 32x32 RGB. Every input is float32 in [0, 1], shape (3, 32, 32).
"""

import hashlib
import io
import os
import random
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

MNIST, CIFAR10 = "MNIST", "CIFAR-10"
DATASETS = (MNIST, CIFAR10)
SOURCES = {"sample": "Embedded sample pack", "train": "Full datasets, train split", "test": "Full datasets, test split"}
CLASS_NAMES = {
    MNIST: tuple(str(digit) for digit in range(10)),
    CIFAR10: ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
SAMPLE_PACK = Path(__file__).with_name("sample_pack.npz")


def _torchvision_class(dataset: str):
    """torchvision's dataset class, imported only where the full datasets are used: importing
    torchvision adds 165 MB to a process (PSS, `import torch` 507 MB, `import torch, torchvision`
    672 MB, measured with /proc/self/smaps_rollup), which a server and its training processes on
    the sample pack need not pay."""
    from torchvision import datasets

    return {MNIST: datasets.MNIST, CIFAR10: datasets.CIFAR10}[dataset]


ProgressCallback = Callable[[str, int, int], None]  # (what, bytes done, bytes in all or 0 if unknown)


class DataUnavailable(RuntimeError):
    """A dataset that is not on disk, or could not be fetched or read; the message says why."""


@dataclass(frozen=True)
class Sample:
    image: np.ndarray  # (3, 32, 32) float32 in [0, 1]
    label: int
    dataset: str
    source: str
    index: int

    @property
    def label_name(self) -> str:
        return CLASS_NAMES[self.dataset][self.label] if self.label >= 0 else "uploaded"

    @property
    def caption(self) -> str:
        return f"{self.dataset} #{self.index} ({self.label_name})"


# -- preprocessing -----------------------------------------------------------------------------------
@lru_cache(maxsize=2)
def _bilinear_taps(size_in: int, size_out: int) -> tuple[np.ndarray, ...]:
    """For each output index: its two input indices and their weights, as torch's antialiased bilinear
    resize computes them (`_upsample_bilinear2d_aa`) when enlarging, where each output has two taps."""
    scale = size_in / size_out
    taps = np.zeros((size_out, 2), np.int64)
    weights = np.zeros((size_out, 2), np.float32)
    for out in range(size_out):
        centre = scale * (out + 0.5)
        first, last = max(int(centre - 0.5), 0), min(int(centre + 1.5), size_in)
        tent = [max(0.0, 1 - abs(index - centre + 0.5)) for index in range(first, last)]
        taps[out, : len(tent)] = range(first, last)
        weights[out, : len(tent)] = np.divide(tent, sum(tent))
    return taps[:, 0], taps[:, 1], weights[:, 0], weights[:, 1]


def _resize_last_axis(values: np.ndarray, size_out: int) -> np.ndarray:
    """torch's sum of the two taps, bit for bit: the first product rounded to float32, then the second
    added by a fused multiply-add (one rounding), which float64 reproduces exactly for float32 inputs."""
    first, second, first_weight, second_weight = _bilinear_taps(values.shape[-1], size_out)
    partial = values[..., first] * first_weight
    return (values[..., second].astype(np.float64) * second_weight + partial).astype(np.float32)


def mnist_input(digit: np.ndarray) -> np.ndarray:
    """A 28x28 grey digit (uint8, or float in [0, 1]) -> (3, 32, 32) float32 in [0, 1].

    What torchvision's resize(..., BILINEAR, antialias=True) computes for a tensor, bit for bit
    (tests/test_data.py compares them on real and random digits), in numpy: a page that shows a pair
    then needs no torch (docs/performance.md, server memory). Width first, then height, as torch."""
    grey = np.asarray(digit)
    grey = grey.astype(np.float32) / np.float32(255) if grey.dtype == np.uint8 else grey.astype(np.float32)
    big = _resize_last_axis(_resize_last_axis(grey, 32).T, 32).T
    return np.repeat(np.clip(big, 0, 1)[None], 3, axis=0)


def cifar_input(image: np.ndarray) -> np.ndarray:
    """A 32x32x3 uint8 RGB image -> (3, 32, 32) float32 in [0, 1]."""
    return np.ascontiguousarray(np.asarray(image).transpose(2, 0, 1)).astype(np.float32) / np.float32(255)


_PREPROCESS = {MNIST: mnist_input, CIFAR10: cifar_input}


# -- uploads -----------------------------------------------------------------------------------------
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_UPLOAD_PIXELS = 4096 * 4096


def sample_from_upload(content: bytes, dataset: str, name: str = "upload") -> Sample:
    """An uploaded picture converted as its dataset's images are: a digit becomes 28x28 grey (then the
    MNIST preprocessing), a photo 32x32 RGB. Raises ValueError saying why a file is refused."""
    from PIL import Image, UnidentifiedImageError

    if len(content) > MAX_UPLOAD_BYTES:
        raise ValueError(f"{name} is {len(content) / 1e6:.1f} MB; the limit is {MAX_UPLOAD_BYTES / 1e6:.0f} MB.")
    try:
        with Image.open(io.BytesIO(content)) as picture:
            if picture.width * picture.height > MAX_UPLOAD_PIXELS:
                raise ValueError(
                    f"{name} is {picture.width}x{picture.height} pixels; the limit is "
                    f"{MAX_UPLOAD_PIXELS // 1_000_000} megapixels."
                )
            picture.load()
            if dataset == MNIST:
                grey = picture.convert("L").resize((28, 28), Image.Resampling.BILINEAR)
                image = mnist_input(np.asarray(grey))
            else:
                image = cifar_input(np.asarray(picture.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
        raise ValueError(f"{name} is not an image that can be read ({error.__class__.__name__}).") from error
    return Sample(image, -1, dataset, "upload", 0)


# -- collections -------------------------------------------------------------------------------------
def data_dir() -> Path:
    """Where full datasets are cached: $AE_DATA_DIR, else the per-user cache folder."""
    if os.environ.get("AE_DATA_DIR"):
        return Path(os.environ["AE_DATA_DIR"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "ae-mix-demo"


@lru_cache(maxsize=1)
def _sample_pack() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    with np.load(SAMPLE_PACK) as pack:
        return {
            MNIST: (pack["mnist_images"], pack["mnist_labels"]),
            CIFAR10: (pack["cifar_images"], pack["cifar_labels"]),
        }


@lru_cache(maxsize=8)
def _full_split(dataset: str, train: bool, root: Path) -> tuple[np.ndarray, np.ndarray]:
    split = "train" if train else "test"
    try:
        ds = _torchvision_class(dataset)(str(root), train=train, download=False)
    except Exception as error:  # torchvision raises many kinds for missing or damaged files
        if not is_downloaded(dataset, root):
            raise DataUnavailable(f"{dataset} ({split}) is not downloaded yet (looked in {root}).") from error
        raise DataUnavailable(
            f"{dataset} ({split}) in {root} could not be read ({error}); download it again to repair the cache."
        ) from error
    return np.asarray(ds.data), np.asarray(ds.targets)


def collection(dataset: str, source: str, root: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images as stored, labels) of one dataset in one source."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if source == "sample":
        return _sample_pack()[dataset]
    if source in ("train", "test"):
        return _full_split(dataset, source == "train", Path(root or data_dir()))
    raise ValueError(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}")


def collection_size(dataset: str, source: str, root: Path | None = None) -> int:
    return len(collection(dataset, source, root)[1])


def check_index(index, size: int, dataset: str, source: str) -> int:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < size:
        raise IndexError(
            f"{dataset} index must be a whole number from 0 to {size - 1} in the "
            f"{SOURCES.get(source, source).lower()} (got {index!r})"
        )
    return int(index)


def load_sample(dataset: str, source: str, index: int, root: Path | None = None) -> Sample:
    images, labels = collection(dataset, source, root)
    index = check_index(index, len(labels), dataset, source)
    return Sample(_PREPROCESS[dataset](images[index]), int(labels[index]), dataset, source, index)


def random_index(dataset: str, source: str, seed: int | None = None, root: Path | None = None) -> int:
    return random.Random(seed).randrange(collection_size(dataset, source, root))


def load_pair(source: str, mnist_index: int, cifar_index: int, root: Path | None = None) -> tuple[Sample, Sample]:
    return load_sample(MNIST, source, mnist_index, root), load_sample(CIFAR10, source, cifar_index, root)


# -- downloads ---------------------------------------------------------------------------------------
def _archives(dataset: str, root: Path) -> list[tuple[list[str], Path, str]]:
    """(mirror URLs, destination, md5) of each archive, as torchvision lists them."""
    cls = _torchvision_class(dataset)
    if dataset == MNIST:
        raw = root / cls.__name__ / "raw"
        return [([mirror + name for mirror in cls.mirrors], raw / name, md5) for name, md5 in cls.resources]
    return [([cls.url], root / cls.filename, cls.tgz_md5)]


def is_downloaded(dataset: str, root: Path | None = None) -> bool:
    """Whether the dataset's archives are in the cache (not whether they are intact: loading tells)."""
    return all(path.exists() for _, path, _ in _archives(dataset, Path(root or data_dir())))


def _fetch(urls: list[str], dest: Path, md5: str, what: str, on_progress: ProgressCallback | None) -> None:
    """Stream the first URL that works into `dest`, which appears only once its md5 is right."""
    from torchvision.datasets.utils import check_integrity

    if check_integrity(str(dest), md5):
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    errors = []
    for url in urls:
        try:
            digest = hashlib.md5()
            with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
                total, done = int(response.headers.get("Content-Length") or 0), 0
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if on_progress:
                        on_progress(what, done, total)
            if digest.hexdigest() != md5:
                raise OSError(f"checksum mismatch (got md5 {digest.hexdigest()}, expected {md5})")
            os.replace(part, dest)
            return
        except Exception as error:  # network, HTTP and disk errors all end in the same message
            errors.append(f"{url}: {error}")
        finally:
            part.unlink(missing_ok=True)
    raise DataUnavailable(f"Could not download {what}. " + "; ".join(errors))


def download(dataset: str, root: Path | None = None, on_progress: ProgressCallback | None = None) -> None:
    """Fetch both splits of `dataset` into the cache, verified by torchvision's checksums.

    Safe to repeat: verified archives are kept, anything extracted from them is redone, so a
    damaged cache is repaired by downloading again.
    """
    root = Path(root or data_dir())
    archives = _archives(dataset, root)
    for number, (urls, dest, md5) in enumerate(archives, 1):
        _fetch(urls, dest, md5, f"{dataset} ({number}/{len(archives)}: {dest.name})", on_progress)
    if dataset == MNIST:  # torchvision only extracts MNIST files that are missing, not damaged ones
        for _, dest, _ in archives:
            dest.with_suffix("").unlink(missing_ok=True)
    _full_split.cache_clear()
    try:
        for train in (True, False):
            _torchvision_class(dataset)(str(root), train=train, download=True)
            collection(dataset, "train" if train else "test", root)
    except Exception as error:
        raise DataUnavailable(f"{dataset} was downloaded but could not be unpacked: {error}") from error
