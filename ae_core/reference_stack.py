"""The reference network and torch.optim.Adam (reference.py) behind the fast engine's interface.

`BatchTrainer(..., engine="reference")` trains with it, and so does every trainer where this torch
lacks one of the fast engine's private operators (`engine.missing_private_ops`). Each model's
parameters and Adam moments are views of the same flat (K, parameters) buffers the engine keeps, so
checkpoints, divergence, `state_dict` and the worker's transfer work unchanged; the arithmetic is
autograd's and Adam's own, one model after another.
"""

import torch

from . import reference
from .engine import StackedAutoencoders
from .model import Autoencoder, architecture_of


class ReferenceStack(StackedAutoencoders):
    """K `Autoencoder`s, each with its own `torch.optim.Adam`, on the engine's buffers."""

    name = "reference"

    def __init__(self, state_dicts: list[dict], lr: float, device: torch.device | str = "cpu") -> None:
        super().__init__(state_dicts, lr, device)
        self.models, self.optimizers = [], []
        architecture = architecture_of(state_dicts[0])
        for k in range(self.k):
            model = Autoencoder(architecture).to(self.device)
            optimizer = torch.optim.Adam(model.parameters(), lr=lr)
            for param, weights, exp_avg, exp_avg_sq in zip(
                model.parameters(), *(self._parameter_views(buffer, k) for buffer in self.state_tensors())
            ):
                param.data = weights
                # Adam takes a parameter's state as it finds it and updates it in place.
                optimizer.state[param] = {"step": torch.zeros(()), "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
            self.models.append(model)
            self.optimizers.append(optimizer)

    def _parameter_views(self, flat: torch.Tensor, k: int) -> list[torch.Tensor]:
        """Model k's parameters in a (K, parameters) buffer, each viewed in its state_dict shape."""
        return [flat[k, lo:hi].view(shape) for (lo, hi), shape in zip(self.spans(), self.shapes)]

    def steps(self, targets: torch.Tensor, count: int) -> torch.Tensor:
        losses = torch.empty(count, self.k, device=self.device)
        for k, (model, optimizer) in enumerate(zip(self.models, self.optimizers)):
            for state in optimizer.state.values():
                state["step"].fill_(self.steps_done)
            batch = targets[k : k + 1]
            for epoch_losses in losses:
                epoch_losses[k] = reference.step(model, optimizer, batch)
        self.steps_done += count
        return losses

    def reconstruct(self, images: torch.Tensor, first: int | None = None) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(images[k : k + 1]) for k, model in enumerate(self.models[:first])])
