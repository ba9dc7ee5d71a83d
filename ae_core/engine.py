"""Train K independent copies of the seed's autoencoder at once, with the gradients written out by hand.

Why not autograd and torch.optim.Adam? The network is tiny (0.2 M parameters, about 10 MFLOP a step),
so a plain PyTorch step on a CPU is mostly framework overhead: slow-path convolutions refilling
buffers, autograd bookkeeping and a Python-level Adam over twelve tensors. Here every convolution is
one batched matmul plus strided copies or index adds between buffers allocated once, a step replays a
recorded list of those kernel calls (no views or temporaries are made per step), gradients go straight
into one flat buffer, and Adam is torch's fused kernel. The 7x7 layers, which hold nearly all the
weights, take their Adam step in a C kernel (low_rank_adam.c, built by native.py) that forms their
rank-4 gradients on the fly instead of writing them out, and their forward products there too; without
a C compiler torch's ops do both.
`python -m ae_core bench` measures the gain; `tests/test_engine.py` checks the gradients against
autograd and the trajectory, both ways, against `Autoencoder` + `torch.optim.Adam`.

Model k owns row k of every buffer: its own weights, gradients and Adam moments, so the K models
learn exactly as K separate runs would while sharing kernel calls. On a CPU the
models are split into lanes of a few models, and one thread per core takes lanes in turn, each for
all the steps of a call: the kernels are too small to split one across cores, lanes never touch each
other's rows, and a lane's weights stay in cache while it steps.

Shapes below are for one model; each tensor has a leading K. Weights are viewed as 2-D matrices
(out, in*k*k) for convolutions and (in, out*k*k) for transposed ones, their state_dict layout.
"""

import os
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from functools import partial, reduce
from itertools import accumulate

import torch

from . import native
from .model import IMAGE_SHAPE, Autoencoder

IMAGE_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# Small lanes keep a model's 7x7 weights and their gradients in cache from forward to backward (a
# lane steps many times in a row); larger ones spread each kernel call's overhead over more models.
# At K = 16 on two cores, lanes of 2 to 8 models came within 15% of each other; 4 was the fastest.
MODELS_PER_LANE = 4
W3, W4 = "encoder.4.weight", "decoder.0.weight"  # the 7x7 layers' weights

_aten = torch.ops.aten
# The private torch operators the engine calls, as attribute paths from `torch`. A torch release may
# rename or drop any of them without notice: where one is missing, trainers take the reference path
# (reference_stack.py) instead, and tests/test_engine.py names the missing one.
PRIVATE_OPS = (
    "_fused_adam_",  # Adam over many tensors in one call
    "ops.aten._add_relu_.Tensor",  # a bias and a ReLU in one pass
    "ops.aten.im2col.out",  # the input's 3x3 windows, once per image
    "ops.aten.col2im.out",  # the 3x3 folds on a GPU
    "ops.aten.sigmoid_backward.grad_input",
    "ops.aten.threshold_backward.grad_input",  # the ReLUs' backward pass
)


def missing_private_ops() -> list[str]:
    """The entries of PRIVATE_OPS that this torch lacks, as `torch.<path>`; empty where all are there."""
    missing = []
    for path in PRIVATE_OPS:
        try:
            reduce(getattr, path.split("."), torch)
        except (AttributeError, RuntimeError):
            missing.append(f"torch.{path}")
    return missing


def cpu_count() -> int:
    """The cores this process may run on (a container's affinity mask, not the host's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


_lane_pool: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _lane_pool
    if _lane_pool is None:
        _lane_pool = ThreadPoolExecutor(max(1, cpu_count() - 1), thread_name_prefix="ae_core lane")
    return _lane_pool


def _relu_backward(grad: torch.Tensor, activation: torch.Tensor, out: torch.Tensor) -> None:
    # `activation` may be the input or the output of the ReLU: both are positive at the same places.
    _aten.threshold_backward.grad_input(grad, activation, 0.0, grad_input=out)


def _padded(k: int, channels: int, size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """A zeroed (K, C, size+2, size+2) map and the view of its interior: a 3x3 window's padding."""
    padded = torch.zeros(k, channels, size + 2, size + 2, device=device)
    return padded, padded[:, :, 1 : size + 1, 1 : size + 1]


def _windows_3x3_stride2(padded: torch.Tensor) -> torch.Tensor:
    """A view of the stride-2 3x3 windows of a padded map, shaped (K, C, 3, 3, out, out) like im2col's
    columns. Copying it is a few times faster than `im2col`, which loops element by element."""
    k, channels, size, _ = padded.shape
    out = (size - 2) // 2
    s_k, s_c, s_h, s_w = padded.stride()
    return padded.as_strided((k, channels, 3, 3, out, out), (s_k, s_c, s_h, s_w, 2 * s_h, 2 * s_w))


def _fold_target(k: int, channels: int, size: int, device) -> torch.Tensor:
    """(K, C, size, size) maps for `_fold_3x3_stride2` to write: on a CPU, each model's maps are followed
    by one spare element, where the fold drops the windows' taps that fall on the padding."""
    if torch.device(device).type != "cpu":
        return torch.empty(k, channels, size, size, device=device)
    return torch.empty(k, channels * size * size + 1, device=device)[:, :-1].view(k, channels, size, size)


def _fold_3x3_stride2(columns: torch.Tensor, maps: torch.Tensor) -> list:
    """Kernel calls that sum (K, C*9, out*out) columns of stride-2 3x3 windows onto (K, C, size, size)
    maps from `_fold_target`, as col2im does."""
    k, channels, size, _ = maps.shape
    if maps.device.type != "cpu":
        return [partial(_aten.col2im.out, columns, (size, size), (3, 3), (1, 1), (1, 1), (2, 2), out=maps)]
    # On a CPU, index_add_ is faster than col2im (29 against 48 us for 4 models of 16 channels) and
    # gives the same sums bit for bit; see _fold_7x7 for why not on a GPU.
    spare = channels * size * size
    places = torch.full((1, channels, size + 2, size + 2), spare)
    places[:, :, 1 : size + 1, 1 : size + 1] = torch.arange(spare).view(1, channels, size, size)
    # (A view of one model's maps may give any stride between models: there is none.)
    assert k == 1 or maps.stride(0) == spare + 1, "maps from _fold_target"
    with_spare = maps.as_strided((k, spare + 1), (spare + 1, 1))
    return [
        with_spare.zero_,
        partial(with_spare.index_add_, 1, _windows_3x3_stride2(places).flatten(), columns.view(k, -1)),
    ]


def _windows_7x7(maps: torch.Tensor) -> torch.Tensor:
    """A view of the four 7x7 windows of (K, C, 8, 8) maps, shaped like rows of `F.unfold(maps, 7)`ᵀ."""
    return maps.unfold(2, 7, 1).unfold(3, 7, 1).permute(0, 2, 3, 1, 4, 5)


def _fold_7x7(rows: torch.Tensor, maps: torch.Tensor) -> list:
    """Kernel calls that add (K, 4, C*49) rows, one per 2x2 output position, onto (K, C, 8, 8) maps."""
    k, channels = maps.shape[:2]
    if maps.device.type == "cpu":
        # One call in place of four adds, and faster than them (22 against 34 us for 4 models): on a
        # CPU, index_add_ adds in index order, so the sums equal the four adds' bit for bit. On a GPU
        # it adds with atomics in no fixed order, which would make runs differ, so there the adds stay.
        where = _windows_7x7(torch.arange(channels * 64).view(1, channels, 8, 8)).flatten()
        return [partial(maps.view(k, -1).index_add_, 1, where, rows.view(k, -1))]
    windows = rows.view(k, 2, 2, -1, 7, 7)
    return [
        partial(torch.add, maps[:, :, r : r + 7, c : c + 7], windows[:, r, c], out=maps[:, :, r : r + 7, c : c + 7])
        for r in range(2)
        for c in range(2)
    ]


class StackedAutoencoders:
    """K autoencoders with their Adam states; `step(targets)` is one epoch for each on its own image."""

    name = "fast"

    def __init__(self, state_dicts: list[dict], lr: float, device: torch.device | str = "cpu") -> None:
        self.names = list(Autoencoder().state_dict())
        self.shapes = [state_dicts[0][name].shape for name in self.names]
        self.lr = lr
        self.k = len(state_dicts)
        self.params = torch.stack([torch.cat([sd[name].reshape(-1) for name in self.names]) for sd in state_dicts]).to(
            device=device, dtype=torch.float32
        )
        self.grads = torch.zeros_like(self.params)
        self.exp_avg = torch.zeros_like(self.params)
        self.exp_avg_sq = torch.zeros_like(self.params)
        self.steps_done = torch.zeros((), device=self.params.device)  # fused Adam wants a float tensor
        self._lanes: list[_Lane] = []  # built on first use: a trainer may only ever step elsewhere

    @property
    def device(self) -> torch.device:
        return self.params.device

    def spans(self) -> list[tuple[int, int]]:
        """Where each layer's parameters lie in a model's row: (start, end) in state_dict order."""
        ends = list(accumulate(shape.numel() for shape in self.shapes))
        return list(zip([0, *ends[:-1]], ends))

    def views(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer views of a (K, parameters) buffer: (K, out, rest) for weights, (K, n) for biases."""
        return [
            flat[:, lo:hi].view(len(flat), shape[0], -1) if len(shape) > 1 else flat[:, lo:hi]
            for shape, (lo, hi) in zip(self.shapes, self.spans())
        ]

    # -- state, in Autoencoder's format -------------------------------------------------------------
    def state_dict(self, index: int = 0) -> OrderedDict:
        return OrderedDict(
            (name, view[0].reshape(shape).detach().cpu().clone())
            for name, view, shape in zip(self.names, self.views(self.params[index : index + 1]), self.shapes)
        )

    # -- crossing a process boundary (worker.py) -----------------------------------------------------
    def state_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Everything a step changes besides the step count: the weights and both Adam moments."""
        return self.params, self.exp_avg, self.exp_avg_sq

    def __getstate__(self) -> dict:
        # Pickled without `state_tensors()` (0.8 MB per model each): those are copied buffer to buffer.
        return {
            "names": self.names,
            "shapes": self.shapes,
            "k": self.k,
            "lr": self.lr,
            "steps_done": int(self.steps_done),
            "device": str(self.device),
        }

    def __setstate__(self, state: dict) -> None:
        blank = {name: torch.zeros(shape) for name, shape in zip(state["names"], state["shapes"])}
        self.__init__([blank] * state["k"], state["lr"], state["device"])
        self.steps_done.fill_(state["steps_done"])

    # -- stepping, lane by lane -----------------------------------------------------------------------
    def _build_lanes(self) -> list["_Lane"]:
        """Lanes of about MODELS_PER_LANE models, and at least one per core while there are models."""
        lanes = max(-(-self.k // MODELS_PER_LANE), min(self.k, cpu_count())) if self.device.type == "cpu" else 1
        bounds = [self.k * lane // lanes for lane in range(lanes + 1)]
        return [_Lane(self, slice(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]

    def _on_each_lane(self, work) -> None:
        """Run `work(lane)` for every lane, on as many threads as there are cores (lanes never share
        a row, so any thread may take any lane); returns when all are done."""
        if not self._lanes:
            self._lanes = self._build_lanes()
        queue, take = iter(self._lanes), threading.Lock()

        def work_through_queue() -> None:
            while True:
                with take:
                    lane = next(queue, None)
                if lane is None:
                    return
                work(lane)

        others = [_pool().submit(work_through_queue) for _ in range(min(cpu_count(), len(self._lanes)) - 1)]
        try:
            work_through_queue()
        finally:
            for other in others:  # a lane's buffers are in use until its work returns
                other.result()

    def gradients(self, targets: torch.Tensor) -> torch.Tensor:
        """Fill `self.grads` for `targets` (K, 3, 32, 32) without stepping; returns each model's loss."""
        losses = torch.empty(self.k, device=self.device)
        self._on_each_lane(lambda lane: lane.gradients(targets, losses))
        return losses

    def steps(self, targets: torch.Tensor, count: int) -> torch.Tensor:
        """`count` Adam steps of every model on its own target; returns the (count, K) losses, each
        before its step. Each lane takes all its steps in a row while its weights are in cache."""
        losses = torch.empty(count, self.k, device=self.device)
        self._on_each_lane(lambda lane: lane.steps(targets, losses, self.steps_done))
        self.steps_done += count
        return losses

    def step(self, targets: torch.Tensor) -> torch.Tensor:
        """One Adam step of every model on its own target; returns the K losses before the step."""
        return self.steps(targets, 1)[0]

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Each model's output for its image in `images` (K, 3, 32, 32), as a new tensor."""
        outputs = torch.empty(self.k, *IMAGE_SHAPE, device=self.device)
        self._on_each_lane(lambda lane: outputs[lane.rows].copy_(lane.forward(images)))
        return outputs


def _contiguous(*tensors: torch.Tensor) -> bool:
    return all(tensor.is_contiguous() for tensor in tensors)


class _Lane:
    """The models in `rows` of a stack, with the buffers and recorded kernel calls of their steps.

    On a CPU, creating the views and temporaries of a step cost more time than its arithmetic, so a
    step only replays calls recorded here once; every intermediate has a buffer allocated here.
    """

    def __init__(self, stack: StackedAutoencoders, rows: slice) -> None:
        self.stack, self.rows = stack, rows
        self.k = k = rows.stop - rows.start
        self.params, self.grads = stack.params[rows], stack.grads[rows]
        self.exp_avg, self.exp_avg_sq = stack.exp_avg[rows], stack.exp_avg_sq[rows]
        self.steps_done = torch.zeros_like(stack.steps_done)  # lanes may be steps apart within a call
        self._images: torch.Tensor | None = None
        call, device = partial, stack.device
        w1, b1, w2, b2, w3, b3, w4, b4, w5, b5, w6, b6 = stack.views(self.params)
        g_w1, g_b1, g_w2, g_b2, g_w3, g_b3, g_w4, g_b4, g_w5, g_b5, g_w6, g_b6 = stack.views(self.grads)

        def buffer(*shape: int) -> torch.Tensor:
            return torch.empty(k, *shape, device=device)

        # Activations (a), unfolded columns (c), gradients (d, dc) and maps with a zero border for 3x3
        # windows (p, e, q; `_in` is the interior); shapes are per model.
        self.x, self.y = buffer(3, 32, 32), _fold_target(k, 3, 32, device)
        c1, a1, c2, a2 = buffer(27, 256), buffer(16, 256), buffer(144, 64), buffer(32, 64)
        c3, z3, c4, a4 = buffer(4, 1568), buffer(4, 64), buffer(4, 1568), buffer(32, 8, 8)
        c5, a5, c6 = buffer(144, 64), _fold_target(k, 16, 16, device).view(k, 16, 256), buffer(27, 256)
        dc6, d5, dc5, d4 = buffer(27, 256), buffer(16, 256), buffer(144, 64), buffer(32, 64)
        dc4, d3, dc3, d2 = buffer(4, 1568), buffer(4, 64), buffer(4, 1568), buffer(32, 8, 8)
        dc2, d1 = buffer(144, 64), _fold_target(k, 16, 16, device).view(k, 16, 256)
        p1, p1_in = _padded(k, 16, 16, device)  # relu(a1), for conv2's windows
        e6, e6_in = _padded(k, 3, 32, device)  # the error, then its gradient, for deconv6's windows
        q5, q5_in = _padded(k, 16, 16, device)  # d5 through the ReLU, for deconv5's windows
        maps = (k, 16, 16, 16)
        self.error = e6_in
        # The 7x7 layers' products with their weights: rank 4, where the C kernel beats MKL's bmm.
        product = native.function("low_rank_product") if device.type == "cpu" else None
        if product is None:
            to_latent, from_latent = call(torch.bmm, c3, w3.transpose(1, 2), out=z3), call(torch.bmm, z3, w4, out=c4)
        else:
            to_latent = self._low_rank_product_call(product, W3, x=c3, out=z3, row_dots_out=True)
            from_latent = self._low_rank_product_call(product, W4, x=z3, out=c4, row_dots_out=False)
        self.unfold_input = call(_aten.im2col.out, self.x, (3, 3), (1, 1), (1, 1), (2, 2), out=c1)  # once per image
        self.forward_plan = (
            call(torch.baddbmm, b1.unsqueeze(2), w1, c1, out=a1),  # (16, 16*16)
            call(torch.clamp_min, a1.view(maps), 0.0, out=p1_in),  # ReLU
            call(c2.view(k, 16, 3, 3, 8, 8).copy_, _windows_3x3_stride2(p1)),  # (144, 8*8)
            call(torch.baddbmm, b2.unsqueeze(2), w2, c2, out=a2),  # (32, 8*8)
            # The ReLU is taken as the windows are copied, one call fewer (a2 stays pre-ReLU). With
            # only 4 output positions, MKL is several times faster when positions are the rows.
            call(torch.clamp_min, _windows_7x7(a2.view(k, 32, 8, 8)), 0.0, out=c3.view(k, 2, 2, 32, 7, 7)),
            to_latent,
            call(torch.add, z3, b3.unsqueeze(1), out=z3),  # (4, 64) latent
            from_latent,  # (4, 1568)
            call(a4.copy_, b4.view(k, 32, 1, 1).expand(k, 32, 8, 8)),
            *_fold_7x7(c4, a4),
            call(torch.relu_, a4),  # (32, 8, 8)
            call(torch.bmm, w5.transpose(1, 2), a4.view(k, 32, 64), out=c5),  # (144, 8*8)
            *_fold_3x3_stride2(c5, a5.view(maps)),
            call(_aten._add_relu_, a5, b5.unsqueeze(2)),  # (16, 16*16)
            call(torch.bmm, w6.transpose(1, 2), a5, out=c6),  # (27, 16*16)
            *_fold_3x3_stride2(c6, self.y),
            call(torch.add, self.y, b6.view(k, 3, 1, 1), out=self.y),
            call(torch.sigmoid_, self.y),
            call(torch.sub, self.y, self.x, out=e6_in),  # the error
        )
        # d(mean squared error)/d(params) of each model into its rows of the stack's grads.
        backward_to_7x7 = (
            call(torch.mul, e6_in, 2.0 / IMAGE_SIZE, out=e6_in),
            call(_aten.sigmoid_backward.grad_input, e6_in, self.y, grad_input=e6_in),
            call(torch.sum, e6_in, (2, 3), out=g_b6),
            call(dc6.view(k, 3, 3, 3, 16, 16).copy_, _windows_3x3_stride2(e6)),
            call(torch.bmm, a5, dc6.transpose(1, 2), out=g_w6),
            call(torch.bmm, w6, dc6, out=d5),
            call(_relu_backward, d5.view(maps), a5.view(maps), q5_in),
            call(torch.sum, q5_in, (2, 3), out=g_b5),
            call(dc5.view(k, 16, 3, 3, 8, 8).copy_, _windows_3x3_stride2(q5)),
            call(torch.bmm, a4.view(k, 32, 64), dc5.transpose(1, 2), out=g_w5),
            call(torch.bmm, w5, dc5, out=d4),
            call(_relu_backward, d4, a4.view(k, 32, 64), d4),
            call(torch.sum, d4, 2, out=g_b4),
            call(dc4.view(k, 2, 2, 32, 7, 7).copy_, _windows_7x7(d4.view(k, 32, 8, 8))),
        )
        through_7x7 = (
            call(torch.bmm, z3.transpose(1, 2), dc4, out=g_w4),
            call(torch.bmm, dc4, w4.transpose(1, 2), out=d3),  # (4, 64)
            call(torch.sum, d3, 1, out=g_b3),
            call(torch.bmm, d3.transpose(1, 2), c3, out=g_w3),
            call(torch.bmm, d3, w3, out=dc3),
        )
        backward_from_7x7 = (
            call(d2.zero_),
            *_fold_7x7(dc3, d2),
            call(_relu_backward, d2.view(k, 32, 64), a2, d2.view(k, 32, 64)),
            call(torch.sum, d2.view(k, 32, 64), 2, out=g_b2),
            call(torch.bmm, d2.view(k, 32, 64), c2.transpose(1, 2), out=g_w2),
            call(torch.bmm, w2.transpose(1, 2), d2.view(k, 32, 64), out=dc2),
            *_fold_3x3_stride2(dc2, d1.view(maps)),
            call(_relu_backward, d1, a1, d1),
            call(torch.sum, d1, 2, out=g_b1),
            call(torch.bmm, d1, c1.transpose(1, 2), out=g_w1),
        )
        self.backward_plan = (*backward_to_7x7, *through_7x7, *backward_from_7x7)
        # A step: the backward pass and Adam. With the C kernel (native.py), the 7x7 layers' weights
        # take their Adam step in the same pass that forms their rank-4 gradients and the backward
        # products through them; torch's fused Adam updates the other parameters.
        kernel = native.function("low_rank_adam") if device.type == "cpu" else None
        if kernel is None:
            self.step_plan = (*self.backward_plan, self._adam_call(lambda buffer: [buffer]))
        else:
            fused_7x7 = (
                self._low_rank_adam_call(kernel, W4, a=z3, b=dc4, out=d3, row_dots_out=True),
                call(torch.sum, d3, 1, out=g_b3),
                self._low_rank_adam_call(kernel, W3, a=d3, b=c3, out=dc3, row_dots_out=False),
            )
            self.step_plan = (
                *backward_to_7x7,
                *fused_7x7,
                *backward_from_7x7,
                self._adam_call(self._pieces_besides(W3, W4)),
            )

    def _adam_call(self, pieces) -> partial:
        """torch's fused Adam on `pieces(buffer)` of each of the lane's buffers (views of its rows)."""
        params, grads, exp_avg, exp_avg_sq = map(pieces, (self.params, self.grads, self.exp_avg, self.exp_avg_sq))
        return partial(
            torch._fused_adam_,
            params,
            grads,
            exp_avg,
            exp_avg_sq,
            [],
            [self.steps_done] * len(params),
            amsgrad=False,
            lr=self.stack.lr,
            beta1=ADAM_BETAS[0],
            beta2=ADAM_BETAS[1],
            weight_decay=0.0,
            eps=ADAM_EPS,
            maximize=False,
        )

    def _pieces_besides(self, *names: str):
        """A function giving each model's parameters outside the layers `names`, as 1-D views of a buffer."""
        spans = self.stack.spans()
        skipped = sorted(spans[self.stack.names.index(name)] for name in names)
        edges = [0, *(edge for span in skipped for edge in span), spans[-1][1]]
        kept = list(zip(edges[::2], edges[1::2]))
        return lambda buffer: [buffer[model, lo:hi] for model in range(self.k) for lo, hi in kept]

    def _low_rank_adam_call(self, kernel, name: str, a, b, out, row_dots_out: bool) -> partial:
        """The kernel's Adam step for the weights `name`, (k, rows, cols), whose gradient is aᵀb per model.

        The call holds raw addresses: every tensor behind them lives as long as this lane (its
        buffers, its plans' arguments and the stack's rows), and none is ever reallocated."""
        weights, exp_avg, exp_avg_sq = (
            self._low_rank_weights(name, buffer) for buffer in (self.params, self.exp_avg, self.exp_avg_sq)
        )
        _, rows, cols = weights.shape
        assert a.shape[1:] == (4, rows) and b.shape[1:] == (4, cols) and _contiguous(a, b, out)
        return partial(
            kernel,
            self.k,
            rows,
            cols,
            weights.data_ptr(),
            exp_avg.data_ptr(),
            exp_avg_sq.data_ptr(),
            weights.stride(0),
            a.data_ptr(),
            a.stride(0),
            b.data_ptr(),
            b.stride(0),
            out.data_ptr(),
            out.stride(0),
            int(row_dots_out),
            self.steps_done.data_ptr(),
            self.stack.lr,
            *ADAM_BETAS,
            ADAM_EPS,
        )

    def _low_rank_product_call(self, kernel, name: str, x, out, row_dots_out: bool) -> partial:
        """The kernel's product of (k, 4, ·) `x` with the weights `name`: x wᵀ if `row_dots_out`, else x w.
        Raw addresses, as in `_low_rank_adam_call`."""
        weights = self._low_rank_weights(name, self.params)
        _, rows, cols = weights.shape
        assert x.shape[1:] == (4, cols if row_dots_out else rows) and _contiguous(x, out)
        return partial(
            kernel,
            self.k,
            rows,
            cols,
            weights.data_ptr(),
            weights.stride(0),
            x.data_ptr(),
            x.stride(0),
            out.data_ptr(),
            out.stride(0),
            int(row_dots_out),
        )

    def _low_rank_weights(self, name: str, buffer: torch.Tensor) -> torch.Tensor:
        """The (k, rows, cols) view of the 7x7 layer `name` in one of the lane's buffers, as the kernel takes it."""
        view = self.stack.views(buffer)[self.stack.names.index(name)]
        assert view.shape[2] % 16 == 0 and view.stride()[1:] == (view.shape[2], 1), "the kernel's shapes"
        return view

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Fills `self.y` with each model's output for its row of `images` and `self.error` with y - images."""
        if self._images is not images:
            self.x.copy_(images[self.rows])
            self.unfold_input()
            self._images = images
        for kernel_call in self.forward_plan:
            kernel_call()
        return self.y

    def loss(self, losses: torch.Tensor) -> None:
        """Each model's mean squared error from the last forward pass, into its rows of `losses`."""
        torch.mean(self.error.square(), (1, 2, 3), out=losses[self.rows])

    def gradients(self, targets: torch.Tensor, losses: torch.Tensor) -> None:
        self.forward(targets)
        self.loss(losses)
        for kernel_call in self.backward_plan:
            kernel_call()

    def steps(self, targets: torch.Tensor, losses: torch.Tensor, steps_done: torch.Tensor) -> None:
        """len(losses) steps; `steps_done` is the stack's count before them."""
        self.steps_done.copy_(steps_done)
        for step_losses in losses:
            self.forward(targets)
            self.loss(step_losses)
            self.steps_done += 1
            for kernel_call in self.step_plan:
                kernel_call()
