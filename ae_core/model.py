"""The seed's convolutional autoencoder: 3x32x32 -> 64x2x2 latent -> 3x32x32, and the same shape of
network at other sizes.

Layer indices (0, 2, 4 with ReLUs between) give exactly the state_dict names and shapes the seed lists
(`seed-architecture.json`); this module is the reference definition and the format of saved weights.
`Architecture` scales the two outer layers' channels (16, 32) by a width multiplier and sets the
latent channels (64); the 7x7 bottleneck layer and the 2x2 latent grid stay.
"""

from dataclasses import dataclass

import torch
from torch import nn

IMAGE_SHAPE = (3, 32, 32)
LATENT_CHANNELS = (4, 8, 16, 32, 64, 128)  # offered; the seed's is 64
WIDTHS = (0.5, 1.0, 2.0)  # multipliers of the seed's 16 and 32 channels
LATENT_GRID = 2 * 2  # the 7x7 layer maps 8x8 to 2x2


@dataclass(frozen=True)
class Architecture:
    latent_channels: int = 64
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.latent_channels not in LATENT_CHANNELS or isinstance(self.latent_channels, bool):
            offered = ", ".join(map(str, LATENT_CHANNELS))
            raise ValueError(f"latent channels must be one of {offered} (got {self.latent_channels!r})")
        if self.width not in WIDTHS or isinstance(self.width, bool):
            raise ValueError(f"the width must be one of {', '.join(f'{w:g}' for w in WIDTHS)} (got {self.width!r})")
        object.__setattr__(self, "width", float(self.width))

    @property
    def channels(self) -> tuple[int, int, int]:
        """Output channels of the encoder's three layers (the decoder mirrors them)."""
        return round(16 * self.width), round(32 * self.width), self.latent_channels

    @property
    def is_seed(self) -> bool:
        return self == SEED_ARCHITECTURE

    @property
    def latent_size(self) -> int:
        """Numbers in the bottleneck: a twelfth of the 3,072 input values in the seed's network."""
        return self.latent_channels * LATENT_GRID

    @property
    def parameters(self) -> int:
        """Weights and biases: 3x3 layers 3-c1-c2 and back, the 7x7 pair c2-latent and back."""
        c1, c2, latent = self.channels
        encoder = (3 * 9 + 1) * c1 + (c1 * 9 + 1) * c2 + (c2 * 49 + 1) * latent
        decoder = (latent * 49 + 1) * c2 + (c2 * 9 + 1) * c1 + (c1 * 9 + 1) * 3
        return encoder + decoder

    def describe(self) -> str:
        c1, c2, latent = self.channels
        seed = " (the seed's)" if self.is_seed else ""
        return (
            f"channels {c1}-{c2}-{latent}, latent {latent} x 2 x 2 = {self.latent_size} numbers, "
            f"{self.parameters:,} parameters{seed}"
        )

    def as_dict(self) -> dict:
        return {
            "latent_channels": self.latent_channels,
            "width": self.width,
            "channels": list(self.channels),
            "latent_size": self.latent_size,
            "parameters": self.parameters,
            "is_seed": self.is_seed,
        }


SEED_ARCHITECTURE = Architecture()


def architecture_of(state_dict: dict) -> Architecture:
    """The architecture whose weights these are (the first layer's and the bottleneck's widths)."""
    return Architecture(int(state_dict["encoder.4.weight"].shape[0]), state_dict["encoder.0.weight"].shape[0] / 16)


class Autoencoder(nn.Module):
    def __init__(self, architecture: Architecture = SEED_ARCHITECTURE) -> None:
        super().__init__()
        c1, c2, latent = architecture.channels
        self.architecture = architecture
        self.encoder = nn.Sequential(
            nn.Conv2d(3, c1, 3, stride=2, padding=1),  # 32 -> 16
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, stride=2, padding=1),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(c2, latent, 7),  # 8 -> 2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(latent, c2, 7),  # 2 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(c2, c1, 3, stride=2, padding=1, output_padding=1),  # 8 -> 16
            nn.ReLU(),
            nn.ConvTranspose2d(c1, 3, 3, stride=2, padding=1, output_padding=1),  # 16 -> 32
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def initial_autoencoder(seed: int, architecture: Architecture = SEED_ARCHITECTURE) -> Autoencoder:
    """PyTorch's default initialisation drawn from `seed`, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder(architecture)


def architecture_rows(seed_shapes: dict[str, list[int]], architecture: Architecture = SEED_ARCHITECTURE) -> list[dict]:
    """One row per layer for a 32x32 input: geometry, output shape, parameters, and whether the
    parameter shapes equal the seed's listing."""
    model = Autoencoder(architecture)
    shapes = {}
    hooks = [
        module.register_forward_hook(lambda m, i, out, name=name: shapes.__setitem__(name, tuple(out.shape[1:])))
        for name, module in model.named_modules()
        if name.count(".") == 1
    ]
    with torch.no_grad():
        model(torch.zeros(1, *IMAGE_SHAPE))
    for hook in hooks:
        hook.remove()
    rows = []
    for name, module in model.named_modules():
        if name.count(".") != 1:
            continue
        params = {key: list(p.shape) for key, p in module.named_parameters()}
        conv = isinstance(module, (nn.Conv2d, nn.ConvTranspose2d))
        rows.append(
            {
                "Layer": name,
                "Type": type(module).__name__,
                "Kernel": f"{module.kernel_size[0]}x{module.kernel_size[1]}" if conv else "",
                # Text, so that layers without a stride (ReLU, Sigmoid) show a blank cell, not "None".
                "Stride": str(module.stride[0]) if conv else "",
                "Padding": str(module.padding[0]) if conv else "",
                "Output shape": " x ".join(map(str, shapes[name])),
                "Weight shape": " x ".join(map(str, params["weight"])) if params else "",
                "Bias shape": " x ".join(map(str, params["bias"])) if params else "",
                "Parameters": sum(p.numel() for p in module.parameters()),
                # True or False for a layer with parameters; None (an empty cell) for one without.
                "Matches seed": all(seed_shapes.get(f"{name}.{key}") == shape for key, shape in params.items())
                if params
                else None,
            }
        )
    return rows
