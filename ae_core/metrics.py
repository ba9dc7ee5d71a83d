"""PSNR and SSIM with scikit-image, on CHW images as computed (never clamped: see the Method page).

The seed does not say which SSIM it reports. `ssim` is scikit-image's default (a 7 x 7 uniform window,
sample covariance), the app's headline; `ssim_gaussian` is Wang et al.'s original (an 11-tap Gaussian
window of σ 1.5, population covariance). On pair 3/3 after 10,000 epochs they differ as much as this
run differs from the seed: MNIST 0.9823 against 0.9894, CIFAR-10 0.9932 against 0.9926
(`ae-core run --mnist-index 3 --cifar-index 3`)."""

import functools
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Quality:
    psnr: float  # dB
    ssim: float  # scikit-image's default window
    ssim_gaussian: float  # Wang et al.'s Gaussian window, σ 1.5

    def as_dict(self) -> dict:
        return asdict(self)


def _hwc(image) -> np.ndarray:
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return np.ascontiguousarray(array.transpose(1, 2, 0), dtype=np.float64)


@functools.cache
def scikit_image_metrics():
    """Imported on first use: scikit-image's metrics bring scipy.stats, 0.5 s of the 2.3 s that
    `import app_widgets` took (`python -X importtime`), and a first visit to the app scores nothing.
    (`import skimage.metrics` alone loads none of it: scikit-image loads its submodules lazily.)"""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    return peak_signal_noise_ratio, structural_similarity


def quality(original, reconstructed) -> Quality:
    """Both images (3, H, W) with data range 1.0; an exact copy scores PSNR inf and both SSIMs 1."""
    peak_signal_noise_ratio, structural_similarity = scikit_image_metrics()
    orig, rec = _hwc(original), _hwc(reconstructed)
    return Quality(
        psnr=float(peak_signal_noise_ratio(orig, rec, data_range=1.0)),
        ssim=float(structural_similarity(orig, rec, data_range=1.0, channel_axis=-1)),
        ssim_gaussian=float(
            structural_similarity(
                orig,
                rec,
                data_range=1.0,
                channel_axis=-1,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
        ),
    )
