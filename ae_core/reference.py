"""The seed's experiment in plain PyTorch, top to bottom: the yardstick for everything faster.

Mix an MNIST digit with a CIFAR-10 photo, train the autoencoder on that one image (MSE, Adam, one
step per epoch), take each original back out with the other, and score both. The fast engine
(engine.py) must learn what `train` learns (tests/test_engine.py), and `ae-core bench` times the
two side by side. `ae-core run --engine reference` trains with this loop through the app's trainer.
"""

import torch
from torch import nn

from .architecture import SEED_ARCHITECTURE, Architecture
from .data import Sample
from .metrics import quality
from .mixing import SEED_ALPHA, mix, unmix
from .model import Autoencoder, initial_autoencoder
from .settings import SEED_EPOCHS, SEED_LR


def train(
    target: torch.Tensor,
    epochs: int,
    lr: float = SEED_LR,
    seed: int = 0,
    architecture: Architecture = SEED_ARCHITECTURE,
) -> tuple[Autoencoder, list[float]]:
    """Train the seed's network (or another `architecture`) on one image (3, 32, 32) in [0, 1], a tensor
    or an array as data.py gives it; returns the network and the loss of each epoch, taken before its step."""
    model = initial_autoencoder(seed, architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    batch = torch.as_tensor(target).unsqueeze(0)
    losses = [step(model, optimizer, batch).item() for _ in range(epochs)]
    return model, losses


def step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: torch.Tensor) -> torch.Tensor:
    """One epoch on `batch` (1, 3, 32, 32): the mean squared error before the step, as a tensor."""
    optimizer.zero_grad()
    loss = nn.functional.mse_loss(model(batch), batch)
    loss.backward()
    optimizer.step()
    return loss.detach()


def experiment(mnist: Sample, cifar: Sample, epochs: int = SEED_EPOCHS, lr: float = SEED_LR, seed: int = 0) -> dict:
    """The seed's experiment on one pair at alpha 0.5: mix, train, un-mix, score. Returns the losses,
    the images and each un-mixed image's Quality against its original."""
    digit, photo = torch.from_numpy(mnist.image), torch.from_numpy(cifar.image)  # data.py gives arrays
    mixed = mix(digit, photo, SEED_ALPHA)
    model, losses = train(mixed, epochs, lr, seed)
    with torch.no_grad():
        reconstruction = model(mixed.unsqueeze(0))[0]
    unmixed_mnist, unmixed_cifar = unmix(reconstruction, digit, photo, SEED_ALPHA)
    return {
        "losses": losses,
        "reconstruction": reconstruction,
        "unmixed_mnist": unmixed_mnist,
        "unmixed_cifar": unmixed_cifar,
        "mnist": quality(mnist.image, unmixed_mnist),
        "cifar": quality(cifar.image, unmixed_cifar),
    }
