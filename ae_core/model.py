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
            nn.Conv2d(3, 16, 3, stride=2, padding=1),  # 32 -> 16
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),  # 16 -> 8
            nn.ReLU(),
            nn.Conv2d(32, 64, 7),  # 8 -> 2
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 7),  # 2 -> 8
            nn.ReLU(),
            nn.ConvTranspose2d(32, 16, 3, stride=2, padding=1, output_padding=1),  # 8 -> 16
            nn.ReLU(),
            nn.ConvTranspose2d(16, 3, 3, stride=2, padding=1, output_padding=1),  # 16 -> 32
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def initial_autoencoder(seed: int) -> Autoencoder:
    """PyTorch's default initialisation drawn from `seed`, without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Autoencoder()


def architecture_rows(seed_shapes: dict[str, list[int]]) -> list[dict]:
    """One row per layer for a 32x32 input: geometry, output shape, parameters, and whether the
    parameter shapes equal the seed's listing."""
    model = Autoencoder()
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
