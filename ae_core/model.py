"""The seed's convolutional autoencoder: 3x32x32 -> 64x2x2 latent -> 3x32x32.

Layer indices (0, 2, 4 with ReLUs between) give exactly the state_dict names and shapes the seed lists
(`seed-architecture.json`); this module is the reference definition and the format of saved weights.
"""
import torch
from torch import nn

IMAGE_SHAPE = (3, 32, 32)


class Autoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),   # 32 -> 16
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(32, 64, 7),                       # 8 -> 2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7),                                        # 2 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),  # 8 -> 16
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 3, stride=2, padding=1, output_padding=1),   # 16 -> 32
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def initial_autoencoder(seed: int) -> Autoencoder:
    """PyTorch's default initialisation drawn from `seed`, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder()
