"""PSNR and SSIM with scikit-image, on CHW images as computed (never clamped: see the Method page)."""

from dataclasses import asdict, dataclass

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity


@dataclass(frozen=True)
class Quality:
    psnr: float
    ssim: float

    def as_dict(self) -> dict:
        return asdict(self)


def _hwc(image) -> np.ndarray:
    array = image.detach().cpu().numpy() if hasattr(image, "detach") else np.asarray(image)
    return np.ascontiguousarray(array.transpose(1, 2, 0), dtype=np.float64)


def quality(original, reconstructed) -> Quality:
    """Both images (3, H, W) with data range 1.0; an exact copy scores PSNR inf and SSIM 1."""
    orig, rec = _hwc(original), _hwc(reconstructed)
    return Quality(
        psnr=float(peak_signal_noise_ratio(orig, rec, data_range=1.0)),
        ssim=float(structural_similarity(orig, rec, data_range=1.0, channel_axis=-1)),
    )
