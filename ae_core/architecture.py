"""The sizes of the network: the seed's 16-32-64 channels, and the same shape at other sizes.

A description only, without torch, so that pages can offer and show sizes without importing it;
`model.py` builds the network from it. `Architecture` scales the two outer layers' channels (16, 32)
by a width multiplier and sets the latent channels (64); the 7x7 bottleneck layer and the 2x2 latent
grid stay.
"""

import math
from dataclasses import dataclass

IMAGE_SHAPE = (3, 32, 32)
LATENT_CHANNELS = (4, 8, 16, 32, 64, 128)  # offered; the seed's is 64
WIDTHS = (0.5, 1.0, 2.0)  # multipliers of the seed's 16 and 32 channels
LATENT_GRID = 2 * 2  # the 7x7 layer maps 8x8 to 2x2


def check_targets(shape: tuple[int, ...]) -> None:
    """A trainer's targets are K >= 1 images of IMAGE_SHAPE."""
    if len(shape) != 4 or tuple(shape[1:]) != IMAGE_SHAPE or shape[0] == 0:
        raise ValueError(f"targets must have shape (K, {', '.join(map(str, IMAGE_SHAPE))}), got {tuple(shape)}")


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


def architecture_rows(seed_shapes: dict[str, list[int]], architecture: Architecture = SEED_ARCHITECTURE) -> list[dict]:
    """One row per layer for a 32x32 input: geometry, output shape, parameters, and whether the
    parameter shapes equal the seed's listing. Worked out from the sizes, without building the network;
    tests/test_architecture.py checks every size against `model.Autoencoder` itself."""
    c1, c2, latent = architecture.channels
    # name, type, kernel, stride and padding (0 for none), weight shape (None for none), output shape
    layers = [
        ("encoder.0", "Conv2d", 3, 2, 1, (c1, 3, 3, 3), (c1, 16, 16)),
        ("encoder.1", "ReLU", 0, 0, 0, None, (c1, 16, 16)),
        ("encoder.2", "Conv2d", 3, 2, 1, (c2, c1, 3, 3), (c2, 8, 8)),
        ("encoder.3", "ReLU", 0, 0, 0, None, (c2, 8, 8)),
        ("encoder.4", "Conv2d", 7, 1, 0, (latent, c2, 7, 7), (latent, 2, 2)),
        ("decoder.0", "ConvTranspose2d", 7, 1, 0, (latent, c2, 7, 7), (c2, 8, 8)),  # in x out x k x k
        ("decoder.1", "ReLU", 0, 0, 0, None, (c2, 8, 8)),
        ("decoder.2", "ConvTranspose2d", 3, 2, 1, (c2, c1, 3, 3), (c1, 16, 16)),
        ("decoder.3", "ReLU", 0, 0, 0, None, (c1, 16, 16)),
        ("decoder.4", "ConvTranspose2d", 3, 2, 1, (c1, 3, 3, 3), (3, 32, 32)),
        ("decoder.5", "Sigmoid", 0, 0, 0, None, (3, 32, 32)),
    ]
    rows = []
    for name, kind, kernel, stride, padding, weight, output in layers:
        bias = (output[0],) if weight else None
        rows.append(
            {
                "Layer": name,
                "Type": kind,
                "Kernel": f"{kernel}x{kernel}" if weight else "",
                # Text, so that layers without a stride (ReLU, Sigmoid) show a blank cell, not "None".
                "Stride": str(stride) if weight else "",
                "Padding": str(padding) if weight else "",
                "Output shape": " x ".join(map(str, output)),
                "Weight shape": " x ".join(map(str, weight)) if weight else "",
                "Bias shape": " x ".join(map(str, bias)) if bias else "",
                "Parameters": math.prod(weight) + bias[0] if weight else 0,
                # True or False for a layer with parameters; None (an empty cell) for one without.
                "Matches seed": seed_shapes.get(f"{name}.weight") == list(weight)
                and seed_shapes.get(f"{name}.bias") == list(bias)
                if weight
                else None,
            }
        )
    return rows
