"""The seed experiment as a library: mix an MNIST digit with a CIFAR-10 image, train an autoencoder on
the mix, un-mix, and score with PSNR and SSIM. No Streamlit here; the app and the CLI build on it.

The names below load their module on first use (PEP 562), and the modules a page needs to draw its
forms and images (data, mixing, metrics, architecture, settings, progress, reporting, charts, store)
import no torch: the app's server imports it only once something trains there (docs/design.md).
"""

import importlib

_HOMES = {
    "DataUnavailable": "data",
    "Sample": "data",
    "load_pair": "data",
    "load_sample": "data",
    "Experiment": "experiment",
    "PairResult": "experiment",
    "Quality": "metrics",
    "quality": "metrics",
    "mix": "mixing",
    "unmix": "mixing",
    "Autoencoder": "model",
    "Study": "study",
    "Progress": "progress",
    "BatchTrainer": "training",
    "Trainer": "training",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'ae_core' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
