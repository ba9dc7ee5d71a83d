"""K networks of any size trained as grouped convolutions, behind the engine's interface.

The fast engine (engine.py) is laid out for the seed's 16-32-64 channels. Another `Architecture`
trains here: the models of a lane (all of them, or a lane per core for large ones) are the groups
of `groups=k` convolutions, so one forward, one backward (autograd's) and one fused Adam step
(`torch.optim.Adam(fused=True)`) take all of them at once. A group sees only its own channels, so
the models stay as independent as K plain loops (a diverged one's NaNs stay in its group); the sums
round differently, so losses match the plain loop within rounding, not bit for bit
(tests/test_variants.py). `engine="reference"` keeps the exact path.

The (K, parameters) buffers of `StackedAutoencoders` stay the truth between calls (checkpoints, the
worker's transfer and the run store read and write them); each call copies them into the grouped
layout and back, once per call of up to 256 steps rather than once per step.

Measured on two cores, 4 pairs, against `reference.train` on each (`python -m benchmarks.latent_sizes`,
docs/performance.md): about 2x the plain loop at 4 to 32 latent channels, about even at 128. The
arithmetic is the plain loop's, but each kernel call serves several models, and the fused Adam makes
one pass over the weights where the default makes several (at 128 channels the default took the
grouped network to 0.81x the plain loop).
"""

from contextlib import nullcontext

import torch

from .architecture import Architecture
from .engine import StackedAutoencoders, cpu_count
from .model import Autoencoder, architecture_of
from .reference_stack import all_cpu_threads

# Ad-hoc timings of `steps` on 4 pairs, 200 steps at a time, six times each, in fresh processes: up to
# 32 latent channels (110,563 weights) one lane of all the models on one thread took 0.57 to 0.63 ms per
# pair-epoch, a lane per core 0.60 to 0.86 (their Python loops wait on each other for the GIL); at 128
# (411,715) a lane per core took 1.8 to 2.3 ms against 2.4 to 3.4. Two threads inside one lane were as
# fast as two lanes on a quiet process but 2.5 to 3x slower once other threads had run torch there
# (libgomp, seeing more threads than cores, wakes its threads by futex at every operator).
LANE_PER_CORE_ABOVE = 200_000  # weights per model


class _GroupedLane:
    """Rows `rows` of the stack's buffers as one grouped network with its own fused Adam."""

    def __init__(self, stack: "GroupedStack", rows: slice, architecture: Architecture) -> None:
        self.stack, self.rows = stack, rows
        self.k = rows.stop - rows.start
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten: leave the global RNG be
            self.network = Autoencoder(architecture, side_by_side=self.k).to(stack.device)
        # In state_dict order, as a row of the flat buffers: weight and bias of each layer in turn.
        self.layers = list(self.network.parameters())
        self.layer_exp_avg = [torch.zeros_like(layer) for layer in self.layers]
        self.layer_exp_avg_sq = [torch.zeros_like(layer) for layer in self.layers]
        self.optimizer = torch.optim.Adam(self.layers, lr=stack.lr, fused=True)
        for layer, exp_avg, exp_avg_sq in zip(self.layers, self.layer_exp_avg, self.layer_exp_avg_sq):
            self.optimizer.state[layer] = {
                "step": torch.zeros((), device=stack.device),
                "exp_avg": exp_avg,
                "exp_avg_sq": exp_avg_sq,
            }

    def _pairs(self, with_moments: bool):
        """(grouped tensor, its (k, *state_dict shape) view in the flat buffer) for every layer."""
        stack = self.stack
        grouped = [[layer.data for layer in self.layers], self.layer_exp_avg, self.layer_exp_avg_sq]
        flat = [stack.params, stack.exp_avg, stack.exp_avg_sq]
        for tensors, buffer in list(zip(grouped, flat))[: 3 if with_moments else 1]:
            for tensor, (lo, hi), shape in zip(tensors, stack.spans(), stack.shapes):
                yield tensor, buffer[self.rows, lo:hi].view(self.k, *shape)

    def _images(self, images: torch.Tensor) -> torch.Tensor:
        return images[self.rows].reshape(1, -1, *images.shape[2:])

    def steps(self, targets: torch.Tensor, losses: torch.Tensor, steps_done: torch.Tensor) -> None:
        for tensor, part in self._pairs(with_moments=True):
            tensor.view_as(part).copy_(part)
        for state in self.optimizer.state.values():
            state["step"].fill_(steps_done)
        images = self._images(targets)
        for epoch_losses in losses:
            self.optimizer.zero_grad()
            errors = (self.network(images) - images).square().view(self.k, -1).mean(1)
            errors.sum().backward()  # each model's gradient is that of its own mean squared error
            self.optimizer.step()
            epoch_losses[self.rows].copy_(errors.detach())
        for tensor, part in self._pairs(with_moments=True):
            part.copy_(tensor.view_as(part))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        for tensor, part in self._pairs(with_moments=False):
            tensor.view_as(part).copy_(part)
        with torch.no_grad():
            return self.network(self._images(images)).view(self.k, *images.shape[1:])


class GroupedStack(StackedAutoencoders):
    """K `Autoencoder`s of one architecture as grouped networks (one, or one per core for large
    models), each with one fused Adam."""

    name = "grouped"

    def __init__(self, state_dicts: list[dict], lr: float, device: torch.device | str = "cpu") -> None:
        super().__init__(state_dicts, lr, device)
        self.architecture = architecture_of(state_dicts[0])

    def _build_lanes(self) -> list[_GroupedLane]:
        """One lane of every model, or one per core for models above LANE_PER_CORE_ABOVE weights."""
        per_core = self.device.type == "cpu" and self.params.shape[1] > LANE_PER_CORE_ABOVE
        lanes = min(self.k, cpu_count()) if per_core else 1
        bounds = [self.k * lane // lanes for lane in range(lanes + 1)]
        return [_GroupedLane(self, slice(lo, hi), self.architecture) for lo, hi in zip(bounds, bounds[1:])]

    def _on_each_lane(self, work) -> None:
        """A lone model has every core; otherwise each lane runs on the one thread the trainer sets."""
        with all_cpu_threads() if self.k == 1 else nullcontext():
            super()._on_each_lane(work)
