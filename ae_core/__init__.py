"""The seed experiment as a library: mix an MNIST digit with a CIFAR-10 image, train an autoencoder on
the mix, un-mix, and score with PSNR and SSIM. No Streamlit here; the app and the CLI build on it."""

from .data import DataUnavailable, Sample, load_pair, load_sample
from .experiment import Experiment, PairResult
from .metrics import Quality, quality
from .mixing import mix, unmix
from .model import Autoencoder
from .study import Study
from .training import BatchTrainer, Progress, Trainer

__all__ = [
    "Autoencoder",
    "BatchTrainer",
    "DataUnavailable",
    "Experiment",
    "PairResult",
    "Progress",
    "Quality",
    "Sample",
    "Study",
    "Trainer",
    "load_pair",
    "load_sample",
    "mix",
    "quality",
    "unmix",
]
