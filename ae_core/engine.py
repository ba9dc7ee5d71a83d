"""Train K independent copies of the seed's autoencoder at once, with the gradients written out by hand.

Why not autograd and torch.optim.Adam? The network is tiny (0.2 M parameters, about 10 MFLOP a step),
so a plain PyTorch step on a CPU is mostly framework overhead: slow-path convolutions refilling
buffers, autograd bookkeeping and a Python-level Adam over twelve tensors. Here every convolution is
one unfold/fold plus one batched matmul, gradients go straight into one flat buffer, and Adam is one
fused call over that buffer. `benchmarks/` measures the gain; `tests/test_engine.py` checks the
gradients against autograd and the trajectory against `Autoencoder` + `torch.optim.Adam`.

Model k owns row k of every buffer: its own weights, gradients and Adam moments, so the K models
learn exactly as K separate runs would while sharing every kernel call (issue: batch study).

Shapes below are for one model; each tensor has a leading K. Weights are viewed as 2-D matrices
(out, in*k*k) for convolutions and (in, out*k*k) for transposed ones, their state_dict layout.
"""
from collections import OrderedDict

import torch
import torch.nn.functional as F

from .model import Autoencoder

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


def _relu_grad(grad: torch.Tensor, activation: torch.Tensor) -> torch.Tensor:
    return torch.ops.aten.threshold_backward(grad, activation, 0.0)


class StackedAutoencoders:
    """K autoencoders with their Adam states; `step(targets)` is one epoch for each on its own image."""

    def __init__(self, state_dicts: list[dict], lr: float, device: torch.device | str = "cpu") -> None:
        self.names = list(Autoencoder().state_dict())
        self.shapes = [state_dicts[0][name].shape for name in self.names]
        self.lr = lr
        self.k = len(state_dicts)
        self.params = torch.stack([torch.cat([sd[name].reshape(-1) for name in self.names])
                                   for sd in state_dicts]).to(device=device, dtype=torch.float32)
        self.grads = torch.zeros_like(self.params)
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self.steps_done = torch.zeros((), device=self.params.device)  # fused Adam wants a float tensor
        # Buffers are only ever updated in place, so these views stay valid (and slicing is not free).
        self.weights, self.weight_grads = self._views(self.params), self._views(self.grads)
        self._unfolded: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return self.params.device

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        views, offset = [], 0
        for shape in self.shapes:
            size = shape.numel()
            block = flat[:, offset:offset + size]
            views.append(block.view(self.k, shape[0], -1) if len(shape) > 1 else block)
            offset += size
        return views

    # -- state, in Autoencoder's format -------------------------------------------------------------
    def state_dict(self, index: int = 0) -> OrderedDict:
        return OrderedDict((name, view[index].reshape(shape).detach().cpu().clone())
                           for name, view, shape in zip(self.names, self.weights, self.shapes))

    def snapshot(self) -> tuple[torch.Tensor, ...]:
        return tuple(t.clone() for t in (self.params, self.exp_avg, self.exp_avg_sq, self.steps_done))

    def restore(self, snapshot: tuple[torch.Tensor, ...]) -> None:
        for tensor, saved in zip((self.params, self.exp_avg, self.exp_avg_sq, self.steps_done), snapshot):
            tensor.copy_(saved)

    # -- forward and backward ------------------------------------------------------------------------
    def _unfold_input(self, x: torch.Tensor) -> torch.Tensor:
        # Training shows the same images every epoch: unfold them once.
        if self._unfolded is None or self._unfolded[0] is not x:
            self._unfolded = (x, F.unfold(x, 3, padding=1, stride=2))
        return self._unfolded[1]

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6 = self.weights
        k = self.k
        c1 = self._unfold_input(x)                                                  # (27, 256)
        a1 = torch.baddbmm(b1.unsqueeze(2), w1, c1).relu_()                         # (16, 16*16)
        c2 = F.unfold(a1.view(k, 16, 16, 16), 3, padding=1, stride=2)               # (144, 64)
        a2 = torch.baddbmm(b2.unsqueeze(2), w2, c2).relu_()                         # (32, 8*8)
        c3 = F.unfold(a2.view(k, 32, 8, 8), 7)                                      # (1568, 4)
        # With only 4 output positions, MKL is several times faster when positions are the rows.
        z3 = torch.baddbmm(b3.unsqueeze(1), c3.transpose(1, 2), w3.transpose(1, 2))  # (4, 64) latent
        c4 = torch.bmm(z3, w4)                                                      # (4, 1568)
        a4 = F.fold(c4.transpose(1, 2), (8, 8), 7).add_(b4.view(k, 32, 1, 1)).relu_()
        c5 = torch.bmm(w5.transpose(1, 2), a4.view(k, 32, 64))                      # (144, 64)
        a5 = F.fold(c5, (16, 16), 3, padding=1, stride=2).add_(b5.view(k, 16, 1, 1)).relu_()
        c6 = torch.bmm(w6.transpose(1, 2), a5.view(k, 16, 256))                     # (27, 256)
        y = F.fold(c6, (32, 32), 3, padding=1, stride=2).add_(b6.view(k, 3, 1, 1)).sigmoid_()
        return y, (c1, a1, c2, a2, c3, z3, a4, a5)

    def _backward(self, y: torch.Tensor, targets: torch.Tensor, saved: tuple) -> torch.Tensor:
        """Writes d(mean squared error)/d(params) of each model into `self.grads`; returns the losses."""
        c1, a1, c2, a2, c3, z3, a4, a5 = saved
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6 = self.weights
        g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4, g_w5, g_b5, g_w6, g_b6 = self.weight_grads
        k = self.k
        error = y - targets
        losses = error.square().mean((1, 2, 3))
        d6 = torch.ops.aten.sigmoid_backward(error.mul_(2.0 / error[0].numel()), y)
        torch.sum(d6, (2, 3), out=g_b6)
        dc6 = F.unfold(d6, 3, padding=1, stride=2)
        torch.bmm(a5.view(k, 16, 256), dc6.transpose(1, 2), out=g_w6)
        d5 = _relu_grad(torch.bmm(w6, dc6), a5.view(k, 16, 256))
        torch.sum(d5, 2, out=g_b5)
        dc5 = F.unfold(d5.view(k, 16, 16, 16), 3, padding=1, stride=2)
        torch.bmm(a4.view(k, 32, 64), dc5.transpose(1, 2), out=g_w5)
        d4 = _relu_grad(torch.bmm(w5, dc5), a4.view(k, 32, 64))
        torch.sum(d4, 2, out=g_b4)
        dc4 = F.unfold(d4.view(k, 32, 8, 8), 7)
        torch.bmm(z3.transpose(1, 2), dc4.transpose(1, 2), out=g_w4)
        d3 = torch.bmm(dc4.transpose(1, 2), w4.transpose(1, 2))                    # (4, 64)
        torch.sum(d3, 1, out=g_b3)
        torch.bmm(d3.transpose(1, 2), c3.transpose(1, 2), out=g_w3)
        d2 = _relu_grad(F.fold(torch.bmm(d3, w3).transpose(1, 2), (8, 8), 7).view(k, 32, 64), a2)
        torch.sum(d2, 2, out=g_b2)
        torch.bmm(d2, c2.transpose(1, 2), out=g_w2)
        d1 = F.fold(torch.bmm(w2.transpose(1, 2), d2), (16, 16), 3, padding=1, stride=2)
        d1 = _relu_grad(d1.view(k, 16, 256), a1)
        torch.sum(d1, 2, out=g_b1)
        torch.bmm(d1, c1.transpose(1, 2), out=g_w1)
        return losses

    def gradients(self, targets: torch.Tensor) -> torch.Tensor:
        """Fill `self.grads` for `targets` (K, 3, 32, 32) without stepping; returns each model's loss."""
        y, saved = self._forward(targets)
        return self._backward(y, targets, saved)

    def step(self, targets: torch.Tensor) -> torch.Tensor:
        """One Adam step of every model on its own target; returns the K losses before the step."""
        losses = self.gradients(targets)
        self.steps_done += 1
        torch._fused_adam_([self.params], [self.grads], [self.exp_avg], [self.exp_avg_sq], [],
                           [self.steps_done], amsgrad=False, lr=self.lr, beta1=ADAM_BETAS[0],
                           beta2=ADAM_BETAS[1], weight_decay=0.0, eps=ADAM_EPS, maximize=False)
        return losses

    @torch.no_grad()
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        return self._forward(images)[0]
