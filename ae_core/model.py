"""The seed's convolutional autoencoder: 3x32x32 -> 64x2x2 latent -> 3x32x32, and the same shape of
network at other sizes (architecture.py).

Layer indices (0, 2, 4 with ReLUs between) give exactly the state_dict names and shapes the seed lists
(`seed-architecture.json`); this module is the reference definition and the format of saved weights.
"""

import torch
from torch import nn

from .architecture import SEED_ARCHITECTURE, Architecture


def architecture_of(state_dict: dict) -> Architecture:
    """The architecture whose weights these are (the first layer's and the bottleneck's widths)."""
    return Architecture(int(state_dict["encoder.4.weight"].shape[0]), state_dict["encoder.0.weight"].shape[0] / 16)


class Autoencoder(nn.Module):
    """The seed's network. `side_by_side=K` builds K of them as one (grouped_stack.py): every layer has
    K times the channels in K groups, and channels k*c to (k+1)*c of each layer are network k's."""

    def __init__(self, architecture: Architecture = SEED_ARCHITECTURE, side_by_side: int = 1) -> None:
        super().__init__()
        c1, c2, latent = (side_by_side * channels for channels in architecture.channels)
        rgb, groups = 3 * side_by_side, side_by_side
        self.architecture = architecture
        self.encoder = nn.Sequential(
            nn.Conv2d(rgb, c1, 3, stride=2, padding=1, groups=groups),  # 32 -> 16
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1, groups=groups),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(c2, latent, 7, groups=groups),  # 8 -> 2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent, c2, 7, groups=groups),  # 2 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1, groups=groups),  # 8 -> 16
            nn.ReLU(),
            nn.ConvTranspose2d(c1, rgb, 3, stride=2, padding=1, output_padding=1, groups=groups),  # 16 -> 32
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def initial_autoencoder(seed: int, architecture: Architecture = SEED_ARCHITECTURE) -> Autoencoder:
    """PyTorch's default initialisation drawn from `seed`, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder(architecture)
