import gzip
import hashlib
import http.server
import pickle
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets
from torchvision.transforms import InterpolationMode
from torchvision.transforms.functional import resize

from ae_core import data


def test_sample_pack_holds_real_images_of_every_class_and_stays_small():
    mnist, mnist_labels = data.collection(data.MNIST, "sample")
    cifar, cifar_labels = data.collection(data.CIFAR10, "sample")
    assert mnist.shape[1:] == (28, 28) and len(mnist) >= 100
    assert np.bincount(mnist_labels, minlength=10).min() >= 10
    assert cifar.shape == (20, 32, 32, 3)
    assert data.SAMPLE_PACK.stat().st_size < 2 * 1024 * 1024
    # Real digits are mostly black with a bright stroke; noise or blanks would not be.
    assert 0.05 < (mnist > 128).mean() < 0.35 and mnist.max() == 255


def test_inputs_are_float_rgb_32x32_in_unit_range():
    for dataset in data.DATASETS:
        sample = data.load_sample(dataset, "sample", 5)
        assert sample.image.shape == (3, 32, 32) and sample.image.dtype == np.float32
        assert 0 <= sample.image.min() and sample.image.max() <= 1


def test_mnist_is_resized_as_torchvision_does_bit_for_bit_and_repeated_to_three_channels():
    digits, _ = data.collection(data.MNIST, "sample")
    noise = np.random.default_rng(0).integers(0, 256, (300, 28, 28), dtype=np.uint8)
    for digit in [*digits, *noise]:
        image = data.mnist_input(digit)
        expected = resize(
            torch.from_numpy(digit).float().unsqueeze(0) / 255,
            [32, 32],
            interpolation=InterpolationMode.BILINEAR,
            antialias=True,
        )
        assert np.array_equal(image[0], expected[0].clamp(0, 1).numpy())
        assert np.array_equal(image[0], image[1]) and np.array_equal(image[1], image[2])


def test_cifar_pixels_pass_through_unchanged():
    images, labels = data.collection(data.CIFAR10, "sample")
    sample = data.load_sample(data.CIFAR10, "sample", 2)
    assert np.array_equal((sample.image * 255).round().astype(np.uint8).transpose(1, 2, 0), images[2])
    assert sample.label == labels[2] and sample.label_name == data.CLASS_NAMES[data.CIFAR10][labels[2]]


@pytest.mark.parametrize("index", [-1, 200, 10**9, 1.5, "3"])
def test_an_index_outside_the_source_names_the_valid_range(index):
    with pytest.raises(IndexError, match="from 0 to 199"):
        data.load_sample(data.MNIST, "sample", index)


def test_random_index_is_reproducible_from_its_seed():
    picks = [data.random_index(data.MNIST, "sample", seed) for seed in range(20)]
    assert picks == [data.random_index(data.MNIST, "sample", seed) for seed in range(20)]
    assert len(set(picks)) > 5 and all(0 <= p < 200 for p in picks)


def test_unknown_sources_and_missing_downloads_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown source"):
        data.collection(data.MNIST, "imagenet")
    with pytest.raises(data.DataUnavailable, match="not downloaded"):
        data.collection(data.CIFAR10, "train", root=tmp_path)


# -- full datasets in torchvision's own on-disk formats ----------------------------------------------
def _idx(array: np.ndarray) -> bytes:
    magic = {1: 2049, 3: 2051}[array.ndim]  # labels, images
    return struct.pack(">" + "I" * (array.ndim + 1), magic, *array.shape) + array.astype(np.uint8).tobytes()


def _fake_mnist(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def write_mnist_raw(root: Path) -> dict[str, bytes]:
    """Uncompressed IDX files where torchvision reads them; returns them gzipped by archive name."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    archives = {}
    for prefix, n, seed in (("train", 12, 0), ("t10k", 7, 1)):
        images, labels = _fake_mnist(n, seed)
        for kind, payload in (("images-idx3", _idx(images)), ("labels-idx1", _idx(labels))):
            name = f"{prefix}-{kind}-ubyte"
            (raw / name).write_bytes(payload)
            archives[name + ".gz"] = gzip.compress(payload, mtime=0)
    return archives


def test_mnist_idx_files_load_with_download_false(tmp_path):
    write_mnist_raw(tmp_path)
    train_images, train_labels = data.collection(data.MNIST, "train", root=tmp_path)
    assert train_images.shape == (12, 28, 28)
    expected_images, expected_labels = _fake_mnist(12, 0)
    assert np.array_equal(train_images, expected_images) and np.array_equal(train_labels, expected_labels)
    sample = data.load_sample(data.MNIST, "test", 6, root=tmp_path)
    assert sample.image.shape == (3, 32, 32) and sample.source == "test"
    with pytest.raises(IndexError, match="from 0 to 6"):
        data.load_sample(data.MNIST, "test", 7, root=tmp_path)


def write_cifar_batches(root: Path, monkeypatch) -> dict[str, np.ndarray]:
    """Pickled batches of 4 images each where torchvision reads them; returns the pixels by batch."""
    folder = root / datasets.CIFAR10.base_folder
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    md5 = {}

    def write(name, payload):
        (folder / name).write_bytes(pickle.dumps(payload))
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()

    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        pixels = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
        batches[name] = pixels
        write(name, {"data": pixels, "labels": rng.integers(0, 10, 4).tolist()})
    write("batches.meta", {"label_names": list(data.CLASS_NAMES[data.CIFAR10])})
    # torchvision checks every batch against the real files' md5s: point it at these instead.
    monkeypatch.setattr(
        datasets.CIFAR10, "train_list", [[f"data_batch_{i}", md5[f"data_batch_{i}"]] for i in range(1, 6)]
    )
    monkeypatch.setattr(datasets.CIFAR10, "test_list", [["test_batch", md5["test_batch"]]])
    monkeypatch.setattr(
        datasets.CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names", "md5": md5["batches.meta"]}
    )
    return batches


def test_cifar_pickled_batches_load_with_download_false(tmp_path, monkeypatch):
    batches = write_cifar_batches(tmp_path, monkeypatch)
    images, labels = data.collection(data.CIFAR10, "train", root=tmp_path)
    assert images.shape == (20, 32, 32, 3) and len(labels) == 20
    sample = data.load_sample(data.CIFAR10, "test", 1, root=tmp_path)
    expected = batches["test_batch"][1].reshape(3, 32, 32).astype(np.float32) / np.float32(255)
    assert np.array_equal(sample.image, expected)


# -- downloads ---------------------------------------------------------------------------------------
class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self):
        body = self.files.get(self.path.lstrip("/"))
        if body is None:
            self.send_error(500, "server error")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def mnist_server(tmp_path, monkeypatch):
    """A loopback HTTP server with fake MNIST archives; torchvision's MNIST points at it."""
    archives = write_mnist_raw(tmp_path / "source")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Files", (_Files,), {"files": dict(archives)}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(datasets.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
    monkeypatch.setattr(
        datasets.MNIST, "resources", [(name, hashlib.md5(body).hexdigest()) for name, body in archives.items()]
    )
    yield server
    server.shutdown()


def test_download_fetches_verifies_reports_progress_and_loads(tmp_path, mnist_server):
    root = tmp_path / "cache"
    seen = []
    data.download(data.MNIST, root=root, on_progress=lambda what, done, total: seen.append((what, done, total)))
    assert seen and seen[-1][1] == seen[-1][2] > 0
    assert data.collection_size(data.MNIST, "train", root=root) == 12
    assert not list(root.rglob("*.part"))


def test_a_damaged_cache_gets_a_clear_message_and_the_next_download_repairs_it(tmp_path, mnist_server):
    root = tmp_path / "cache"
    data.download(data.MNIST, root=root)
    extracted = root / "MNIST" / "raw" / "train-images-idx3-ubyte"
    extracted.write_bytes(extracted.read_bytes()[:100])  # truncated
    data._full_split.cache_clear()
    with pytest.raises(data.DataUnavailable, match="download it again"):
        data.collection(data.MNIST, "train", root=root)
    data.download(data.MNIST, root=root)
    assert data.collection_size(data.MNIST, "train", root=root) == 12


def test_a_corrupted_download_is_refused_and_leaves_nothing_behind(tmp_path, mnist_server, monkeypatch):
    monkeypatch.setattr(datasets.MNIST, "resources", [(name, "0" * 32) for name, _ in datasets.MNIST.resources])
    with pytest.raises(data.DataUnavailable, match="checksum mismatch"):
        data.download(data.MNIST, root=tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_no_network_gives_a_message_naming_the_cause(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])  # nothing listens there
    with pytest.raises(data.DataUnavailable, match="Could not download MNIST.*refused"):
        data.download(data.MNIST, root=tmp_path / "cache")
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert data.collection_size(data.MNIST, "sample") == 200  # the pack still works


# -- uploads -----------------------------------------------------------------------------------------
def _png(mode: str, size=(40, 30)) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    array = np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    picture = (
        Image.fromarray(array).convert(mode)
        if mode != "I;16"
        else Image.fromarray(array[..., 0].astype(np.uint16) * 257)
    )  # 16-bit grey
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "I;16"])
@pytest.mark.parametrize("dataset", data.DATASETS)
def test_uploads_of_any_colour_mode_become_inputs_like_the_datasets(mode, dataset):
    sample = data.sample_from_upload(_png(mode), dataset, "x.png")
    assert sample.image.shape == (3, 32, 32) and sample.image.dtype == np.float32
    assert 0 <= sample.image.min() and sample.image.max() <= 1
    if dataset == data.MNIST:
        assert np.array_equal(sample.image[0], sample.image[2])


@pytest.mark.parametrize(
    "content, says",
    [
        (b"hello, not a picture", "not an image"),
        (_png("RGB")[:60], "not an image"),
        (b"\0" * (data.MAX_UPLOAD_BYTES + 1), "limit is 5 MB"),
    ],
)
def test_refused_uploads_say_why(content, says):
    with pytest.raises(ValueError, match=says):
        data.sample_from_upload(content, data.CIFAR10, "x.png")


def test_an_upload_with_too_many_pixels_is_refused_before_decoding():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buffer, format="PNG")  # small file, huge picture
    with pytest.raises(ValueError, match="megapixels"):
        data.sample_from_upload(buffer.getvalue(), data.MNIST, "big.png")
