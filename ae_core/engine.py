"""Train K independent copies of the seed's autoencoder at once, with the gradients written out by hand.

Why not autograd and torch.optim.Adam? The network is tiny (0.2 M parameters, about 10 MFLOP a step),
so a plain PyTorch step on a CPU is mostly framework overhead: slow-path convolutions refilling
buffers, autograd bookkeeping and a Python-level Adam over twelve tensors. Here every convolution is
one unfold/fold plus one batched matmul into a buffer allocated once, a step replays a recorded list
of those kernel calls (no views or temporaries are made per step), gradients go straight into one
flat buffer, and Adam is one fused call over that buffer. `python -m ae_core bench` measures the
gain; `tests/test_engine.py` checks the gradients against autograd and the trajectory against
`Autoencoder` + `torch.optim.Adam`.

Model k owns row k of every buffer: its own weights, gradients and Adam moments, so the K models
learn exactly as K separate runs would while sharing every kernel call (issue: batch study).

Shapes below are for one model; each tensor has a leading K. Weights are viewed as 2-D matrices
(out, in*k*k) for convolutions and (in, out*k*k) for transposed ones, their state_dict layout.
"""
from collections import OrderedDict
from functools import partial

import torch

from .model import IMAGE_SHAPE, Autoencoder

IMAGE_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

_aten = torch.ops.aten


def _relu_backward_(grad: torch.Tensor, activation: torch.Tensor) -> None:
    _aten.threshold_backward.grad_input(grad, activation, 0.0, grad_input=grad)


def _unfold_3x3_stride2(image: torch.Tensor, out: torch.Tensor) -> None:
    _aten.im2col.out(image, (3, 3), (1, 1), (1, 1), (2, 2), out=out)


def _fold_3x3_stride2(columns: torch.Tensor, size: int, out: torch.Tensor) -> None:
    _aten.col2im.out(columns, (size, size), (3, 3), (1, 1), (1, 1), (2, 2), out=out)


def _fold_7x7(columns: torch.Tensor, out: torch.Tensor) -> None:
    _aten.col2im.out(columns, (8, 8), (7, 7), (1, 1), (0, 0), (1, 1), out=out)


def _windows_7x7(maps: torch.Tensor) -> torch.Tensor:
    """A view of the four 7x7 windows of (K, C, 8, 8) maps, shaped like rows of `F.unfold(maps, 7)`ᵀ."""
    return maps.unfold(2, 7, 1).unfold(3, 7, 1).permute(0, 2, 3, 1, 4, 5)


class StackedAutoencoders:
    """K autoencoders with their Adam states; `step(targets)` is one epoch for each on its own image."""

    def __init__(self, state_dicts: list[dict], lr: float, device: torch.device | str = "cpu") -> None:
        self.names = list(Autoencoder().state_dict())
        self.shapes = [state_dicts[0][name].shape for name in self.names]
        self.lr = lr
        self.k = k = len(state_dicts)
        self.params = torch.stack([torch.cat([sd[name].reshape(-1) for name in self.names])
                                   for sd in state_dicts]).to(device=device, dtype=torch.float32)
        self.grads = torch.zeros_like(self.params)
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self.steps_done = torch.zeros((), device=self.params.device)  # fused Adam wants a float tensor
        # Buffers are only ever updated in place, so these views stay valid (and slicing is not free).
        self.weights, self.weight_grads = self._views(self.params), self._views(self.grads)
        self._images: torch.Tensor | None = None
        self.forward_plan = self.backward_plan = ()   # built on first use: a trainer may only ever step elsewhere

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

    # -- crossing a process boundary (worker.py) -----------------------------------------------------
    def state_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything a step changes besides the step count: the weights and both Adam moments."""
        return self.params, self.exp_avg, self.exp_avg_sq

    def __getstate__(self) -> dict:
        # Pickled without `state_tensors()` (0.8 MB per model each): those are copied buffer to buffer.
        return {"names": self.names, "shapes": self.shapes, "k": self.k, "lr": self.lr,
                "steps_done": int(self.steps_done), "device": str(self.device)}

    def __setstate__(self, state: dict) -> None:
        blank = {name: torch.zeros(shape) for name, shape in zip(state["names"], state["shapes"])}
        self.__init__([blank] * state["k"], state["lr"], state["device"])
        self.steps_done.fill_(state["steps_done"])

    # -- forward and backward ------------------------------------------------------------------------
    def _build_plan(self) -> None:
        """Records the kernel calls of one forward and one backward pass on the buffers, once.

        On a CPU, creating the views and temporaries of a step cost more time than its arithmetic, so
        a step only replays these calls; every intermediate has a buffer allocated here.
        """
        k, call = self.k, partial
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6 = self.weights
        g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4, g_w5, g_b5, g_w6, g_b6 = self.weight_grads

        def buffer(*shape: int) -> torch.Tensor:
            return torch.empty(k, *shape, device=self.device)

        # Activations (a), unfolded columns (c) and their gradients (d, dc); shapes are per model.
        self.x, self.y = buffer(3, 32, 32), buffer(3, 32, 32)
        c1, a1, c2, a2 = buffer(27, 256), buffer(16, 256), buffer(144, 64), buffer(32, 64)
        c3, z3, c4, a4 = buffer(4, 1568), buffer(4, 64), buffer(4, 1568), buffer(32, 64)
        c5, a5, c6, d6 = buffer(144, 64), buffer(16, 256), buffer(27, 256), buffer(3, 32, 32)
        dc6, d5, dc5, d4 = buffer(27, 256), buffer(16, 256), buffer(144, 64), buffer(32, 64)
        dc4, d3, dc3, d2 = buffer(4, 1568), buffer(4, 64), buffer(4, 1568), buffer(32, 64)
        dc2, d1 = buffer(144, 64), buffer(16, 256)
        self.error = d6
        self.unfold_input = call(_unfold_3x3_stride2, self.x, c1)   # the same image every epoch: once
        self.forward_plan = (
            call(torch.baddbmm, b1.unsqueeze(2), w1, c1, out=a1), call(torch.relu_, a1),   # (16, 16*16)
            call(_unfold_3x3_stride2, a1.view(k, 16, 16, 16), c2),                          # (144, 8*8)
            call(torch.baddbmm, b2.unsqueeze(2), w2, c2, out=a2), call(torch.relu_, a2),   # (32, 8*8)
            # With only 4 output positions, MKL is several times faster when positions are the rows.
            call(c3.view(k, 2, 2, 32, 7, 7).copy_, _windows_7x7(a2.view(k, 32, 8, 8))),     # (4, 1568)
            call(torch.baddbmm, b3.unsqueeze(1), c3, w3.transpose(1, 2), out=z3),          # (4, 64) latent
            call(torch.bmm, z3, w4, out=c4),                                               # (4, 1568)
            call(_fold_7x7, c4.transpose(1, 2), a4.view(k, 32, 8, 8)),
            call(torch.add, a4, b4.unsqueeze(2), out=a4), call(torch.relu_, a4),           # (32, 8*8)
            call(torch.bmm, w5.transpose(1, 2), a4, out=c5),                               # (144, 8*8)
            call(_fold_3x3_stride2, c5, 16, a5.view(k, 16, 16, 16)),
            call(torch.add, a5, b5.unsqueeze(2), out=a5), call(torch.relu_, a5),           # (16, 16*16)
            call(torch.bmm, w6.transpose(1, 2), a5, out=c6),                               # (27, 16*16)
            call(_fold_3x3_stride2, c6, 32, self.y),
            call(torch.add, self.y, b6.view(k, 3, 1, 1), out=self.y), call(torch.sigmoid_, self.y),
            call(torch.sub, self.y, self.x, out=d6),                                       # the error
        )
        # d(mean squared error)/d(params) of each model into `self.grads`, from the error in d6.
        self.backward_plan = (
            call(torch.mul, d6, 2.0 / IMAGE_SIZE, out=d6),
            call(_aten.sigmoid_backward.grad_input, d6, self.y, grad_input=d6),
            call(torch.sum, d6, (2, 3), out=g_b6),
            call(_unfold_3x3_stride2, d6, dc6),
            call(torch.bmm, a5, dc6.transpose(1, 2), out=g_w6),
            call(torch.bmm, w6, dc6, out=d5), call(_relu_backward_, d5, a5),
            call(torch.sum, d5, 2, out=g_b5),
            call(_unfold_3x3_stride2, d5.view(k, 16, 16, 16), dc5),
            call(torch.bmm, a4, dc5.transpose(1, 2), out=g_w5),
            call(torch.bmm, w5, dc5, out=d4), call(_relu_backward_, d4, a4),
            call(torch.sum, d4, 2, out=g_b4),
            call(dc4.view(k, 2, 2, 32, 7, 7).copy_, _windows_7x7(d4.view(k, 32, 8, 8))),
            call(torch.bmm, z3.transpose(1, 2), dc4, out=g_w4),
            call(torch.bmm, dc4, w4.transpose(1, 2), out=d3),                              # (4, 64)
            call(torch.sum, d3, 1, out=g_b3),
            call(torch.bmm, d3.transpose(1, 2), c3, out=g_w3),
            call(torch.bmm, d3, w3, out=dc3),
            call(_fold_7x7, dc3.transpose(1, 2), d2.view(k, 32, 8, 8)), call(_relu_backward_, d2, a2),
            call(torch.sum, d2, 2, out=g_b2),
            call(torch.bmm, d2, c2.transpose(1, 2), out=g_w2),
            call(torch.bmm, w2.transpose(1, 2), d2, out=dc2),
            call(_fold_3x3_stride2, dc2, 16, d1.view(k, 16, 16, 16)), call(_relu_backward_, d1, a1),
            call(torch.sum, d1, 2, out=g_b1),
            call(torch.bmm, d1, c1.transpose(1, 2), out=g_w1),
        )

    def _forward(self, images: torch.Tensor) -> None:
        """Fills `self.y` with each model's output for its image and `self.error` with y - images."""
        if not self.forward_plan:
            self._build_plan()
        if self._images is not images:
            self.x.copy_(images)
            self.unfold_input()
            self._images = images
        for kernel_call in self.forward_plan:
            kernel_call()

    def gradients(self, targets: torch.Tensor) -> torch.Tensor:
        """Fill `self.grads` for `targets` (K, 3, 32, 32) without stepping; returns each model's loss."""
        self._forward(targets)
        losses = self.error.square().mean((1, 2, 3))
        for kernel_call in self.backward_plan:
            kernel_call()
        return losses

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
        """Each model's output for its image in `images` (K, 3, 32, 32), as a new tensor."""
        self._forward(images)
        return self.y.clone()
