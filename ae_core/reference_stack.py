"""The reference network and torch.optim.Adam (reference.py) behind the fast engine's interface.

`BatchTrainer(..., engine="reference")` trains with it, and so does every trainer where this torch
lacks one of the fast engine's private operators (`engine.missing_private_ops`). Each model's
parameters and Adam moments are views of the same flat (K, parameters) buffers the engine keeps, so
checkpoints, divergence, `state_dict` and the worker's transfer work unchanged; the arithmetic is
autograd's and Adam's own, one model after another.
"""

from contextlib import contextmanager

import torch

from . import reference
from .engine import StackedAutoencoders, cpu_count, on_each
from .model import Autoencoder, architecture_of

# Measured with `python -m benchmarks.latent_sizes --pairs 4` on two cores: one model per core (torch
# held to one thread by the trainer) beat the plain loop by 1.23 to 1.32x up to 32 latent channels
# (110,563 weights), but ran at 0.89 to 0.99x of it at 128 (411,715), where two models at once outgrow
# the caches; one model after another on both cores ran at 0.94 to 1.01x (runs differ by 5%).
PARALLEL_UP_TO = 200_000  # weights per model


@contextmanager
def all_cpu_threads():
    """torch on every core for a while, inside the trainer's one-thread setting (training.py)."""
    before = torch.get_num_threads()
    torch.set_num_threads(cpu_count())
    try:
        yield
    finally:
        torch.set_num_threads(before)


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

        def train(k: int) -> None:
            model, optimizer = self.models[k], self.optimizers[k]
            for state in optimizer.state.values():
                state["step"].fill_(self.steps_done)
            batch = targets[k : k + 1]
            for epoch_losses in losses:
                epoch_losses[k] = reference.step(model, optimizer, batch)

        if self.params.shape[1] <= PARALLEL_UP_TO:
            on_each(list(range(self.k)), train)  # one model per core, as the engine's lanes
        else:
            with all_cpu_threads():
                for k in range(self.k):
                    train(k)
        self.steps_done += count
        return losses

    def reconstruct(self, images: torch.Tensor, first: int | None = None) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(images[k : k + 1]) for k, model in enumerate(self.models[:first])])
