"""Train K independent copies of the seed's autoencoder at once, with the gradients written out by hand.

This is an optimisation of `reference.py` (the plain PyTorch loop) and must learn what it learns.
Why not autograd and torch.optim.Adam? The network is tiny (0.2 M parameters, about 10 MFLOP a step),
so a plain PyTorch step on a CPU is mostly framework overhead: slow-path convolutions refilling
buffers, autograd bookkeeping and a Python-level Adam over twelve tensors. Here every convolution is
one batched matmul plus strided copies or index adds between buffers allocated once, a step replays a
recorded list of those kernel calls (no views or temporaries are made per step), gradients go straight
into one flat buffer, and Adam is torch's fused kernel. The 7x7 layers, which hold nearly all the
weights, take their Adam step in a C kernel (low_rank_adam.c, built by native.py) that forms their
rank-4 gradients on the fly instead of writing them out, and their forward products there too; without
a C compiler torch's ops do both.
`ae-core bench` measures the gain against `reference.train`; `tests/test_engine.py` checks the
gradients against autograd and the trajectory, with and without the C kernel, against it.

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
from contextlib import contextmanager
from functools import partial, reduce
from itertools import accumulate

import torch

from . import native
from .architecture import IMAGE_SHAPE

IMAGE_SIZE = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# Small lanes keep a model's 7x7 weights and their gradients in cache from forward to backward (a
# lane steps many times in a row); larger ones spread each kernel call's overhead over more models.
# At K = 16 on two cores, lanes of 2 to 8 models came within 15% of each other; 4 was the fastest.
MODELS_PER_LANE = 4
ENC4_WEIGHT, DEC0_WEIGHT = "encoder.4.weight", "decoder.0.weight"  # the 7x7 layers' weights

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


@contextmanager
def denormals_flushed():
    """Floats too small to be normal count as zero on this thread (x86's FTZ and DAZ flags, where torch
    can set them; not on torch's other intra-op threads, which trainers do not use), then the default
    again. Adam's first moment of a weight whose gradient vanishes shrinks tenfold every 22 steps into
    that range, and Intel CPUs take each such number through a slow microcode path: on an AVX-512 host
    one model's step took 0.50 ms over its first 500 steps and 1.2 to 1.4 ms from then on, 0.49 ms
    throughout with them flushed (`benchmarks/denormals.py`: 2.56x at steps 2,000 to 3,000), and the
    seed's 10,000 epochs 12.7 to 12.8 s against 4.7 to 5.1 s. Four models' losses and weights over
    3,000 steps came out bit for bit the same; only first moments under 1.2e-38 became zero."""
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


def on_each(items: list, work) -> None:
    """Run `work(item)` for every item, on as many threads as there are cores, any thread taking the
    next item; returns when all are done. The items must not share buffers."""
    queue, take = iter(items), threading.Lock()

    def work_through_queue() -> None:
        while True:
            with take:
                item = next(queue, None)
            if item is None:
                return
            work(item)

    others = [_pool().submit(work_through_queue) for _ in range(min(cpu_count(), len(items)) - 1)]
    try:
        work_through_queue()
    finally:
        for other in others:  # an item's buffers are in use until its work returns
            other.result()


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
        self.names = list(state_dicts[0])  # every Architecture's names are the seed's, in this order
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
        outer_channels = tuple(
            self.shapes[self.names.index(name)][0] for name in ("encoder.0.weight", "encoder.2.weight")
        )
        if outer_channels != (16, 32):
            raise ValueError(f"the fast engine is laid out for 16 and 32 outer channels, not {outer_channels}")
        lanes = max(-(-self.k // MODELS_PER_LANE), min(self.k, cpu_count())) if self.device.type == "cpu" else 1
        bounds = [self.k * lane // lanes for lane in range(lanes + 1)]
        return [_Lane(self, slice(lo, hi)) for lo, hi in zip(bounds, bounds[1:])]

    def _on_each_lane(self, work) -> None:
        """Run `work(lane)` for every lane (`on_each`); lanes never share a row."""
        if not self._lanes:
            self._lanes = self._build_lanes()
        on_each(self._lanes, work)

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

    def reconstruct(self, images: torch.Tensor, first: int | None = None) -> torch.Tensor:
        """Each model's output for its image in `images` (K, 3, 32, 32), as a new tensor; only the
        first `first` models' where it is given (the lanes of the others do no work)."""
        count = self.k if first is None else min(first, self.k)
        outputs = torch.empty(count, *IMAGE_SHAPE, device=self.device)

        def forward(lane: _Lane) -> None:
            if lane.rows.start < count:
                stop = min(lane.rows.stop, count)
                outputs[lane.rows.start : stop].copy_(lane.forward(images)[: stop - lane.rows.start])

        self._on_each_lane(forward)
        return outputs


def _contiguous(*tensors: torch.Tensor) -> bool:
    return all(tensor.is_contiguous() for tensor in tensors)


class _Lane:
    """The models in `rows` of a stack, with the buffers and recorded kernel calls of their steps.

    On a CPU, creating the views and temporaries of a step cost more time than its arithmetic, so a
    step only replays calls recorded here once; every intermediate has a buffer allocated here. Each
    buffer is named after the state_dict's layer it belongs to (`enc4` is `encoder.4`, `dec0` is
    `decoder.0`); `_columns` are a convolution's unfolded input windows or a transposed convolution's
    products before they are folded, `grad_` the loss's gradient there. Shapes are per model, for the
    seed's 16-32-64 channels; the latent channels (64) may be any number, the outer two may not:

        layer          buffer             shape         written by
        encoder.0      enc0_columns       27 x 256      im2col, once per image
                       enc0_out           16 x 256      baddbmm (weights and bias)
          ReLU         enc0_relu          16 x 16 x 16  clamp_min, into the interior of enc0_relu_padded
        encoder.2      enc2_columns       144 x 64      copy of enc0_relu_padded's stride-2 3x3 windows
                       enc2_out           32 x 64       baddbmm (its ReLU is taken as the next windows are copied)
        encoder.4      enc4_columns       4 x 1568      clamp_min of enc2_out's four 7x7 windows
                       latent             4 x 64        the C kernel's product (bmm without it), add of the bias
                                                        (4 x latent channels)
        decoder.0      dec0_columns       4 x 1568      the C kernel's product (bmm)
                       dec0_out           32 x 8 x 8    copy of the bias, 7x7 fold, relu_
        decoder.2      dec2_columns       144 x 64      bmm
                       dec2_out           16 x 256      3x3 fold, _add_relu_ of the bias
        decoder.4      dec4_columns       27 x 256      bmm
                       output             3 x 32 x 32   3x3 fold, add of the bias, sigmoid_
        loss           error              3 x 32 x 32   sub (output - input); then, as its gradient, mul and
                                                        sigmoid_backward (the interior of error_padded)
        decoder.4      grad_dec4_columns  27 x 256      copy of error_padded's 3x3 windows
        decoder.2      grad_dec2_out      16 x 256      bmm
                       grad_dec2_relu     16 x 16 x 16  ReLU backward, into the interior of grad_dec2_relu_padded
                       grad_dec2_columns  144 x 64      copy of grad_dec2_relu_padded's 3x3 windows
        decoder.0      grad_dec0_out      32 x 64       bmm, ReLU backward
                       grad_dec0_columns  4 x 1568      copy of grad_dec0_out's 7x7 windows
        encoder.4      grad_latent        4 x 64        bmm, or the C kernel with decoder.0's Adam step
                                                        (4 x latent channels)
                       grad_enc4_columns  4 x 1568      bmm, or the C kernel with encoder.4's Adam step
        encoder.2      grad_enc2_out      32 x 8 x 8    zero_, 7x7 fold, ReLU backward
                       grad_enc2_columns  144 x 64      bmm
        encoder.0      grad_enc0_out      16 x 256      3x3 fold, ReLU backward
        each layer     grad_enc0_w, ...   (its rows of the stack's grads)  bmm and sum; for the 7x7
                                                        weights only without the C kernel, which steps them itself
    """

    def __init__(self, stack: StackedAutoencoders, rows: slice) -> None:
        self.stack, self.rows = stack, rows
        self.k = rows.stop - rows.start
        self.params, self.grads = stack.params[rows], stack.grads[rows]
        self.exp_avg, self.exp_avg_sq = stack.exp_avg[rows], stack.exp_avg_sq[rows]
        self.steps_done = torch.zeros_like(stack.steps_done)  # lanes may be steps apart within a call
        self._images: torch.Tensor | None = None
        self._allocate_buffers()
        self.unfold_input = partial(
            _aten.im2col.out, self.input, (3, 3), (1, 1), (1, 1), (2, 2), out=self.enc0_columns
        )  # once per image
        self.forward_plan = self._forward_plan()
        to_7x7, through_7x7, from_7x7 = self._backward_plans()
        self.backward_plan = (*to_7x7, *through_7x7, *from_7x7)
        self.step_plan = self._step_plan(to_7x7, from_7x7)

    def _allocate_buffers(self) -> None:
        k, device = self.k, self.stack.device

        def buffer(*shape: int) -> torch.Tensor:
            return torch.empty(k, *shape, device=device)

        weights, grads = self.stack.views(self.params), self.stack.views(self.grads)
        self.enc0_w, self.enc0_b, self.enc2_w, self.enc2_b, self.enc4_w, self.enc4_b = weights[:6]
        self.dec0_w, self.dec0_b, self.dec2_w, self.dec2_b, self.dec4_w, self.dec4_b = weights[6:]
        self.grad_enc0_w, self.grad_enc0_b, self.grad_enc2_w, self.grad_enc2_b = grads[:4]
        self.grad_enc4_w, self.grad_enc4_b, self.grad_dec0_w, self.grad_dec0_b = grads[4:8]
        self.grad_dec2_w, self.grad_dec2_b, self.grad_dec4_w, self.grad_dec4_b = grads[8:]
        self.input, self.output = buffer(3, 32, 32), _fold_target(k, 3, 32, device)
        self.enc0_columns, self.enc0_out = buffer(27, 256), buffer(16, 256)
        self.enc0_relu_padded, self.enc0_relu = _padded(k, 16, 16, device)  # for encoder.2's windows
        self.enc2_columns, self.enc2_out = buffer(144, 64), buffer(32, 64)
        latent_channels = self.enc4_w.shape[1]  # the C kernel takes any number of rows
        self.enc4_columns, self.latent = buffer(4, 1568), buffer(4, latent_channels)
        self.dec0_columns, self.dec0_out = buffer(4, 1568), buffer(32, 8, 8)
        self.dec2_columns, self.dec2_out = buffer(144, 64), _fold_target(k, 16, 16, device).view(k, 16, 256)
        self.dec4_columns = buffer(27, 256)
        self.error_padded, self.error = _padded(k, 3, 32, device)  # then its gradient, for decoder.4's windows
        self.grad_dec4_columns, self.grad_dec2_out = buffer(27, 256), buffer(16, 256)
        self.grad_dec2_relu_padded, self.grad_dec2_relu = _padded(k, 16, 16, device)  # for decoder.2's windows
        self.grad_dec2_columns, self.grad_dec0_out = buffer(144, 64), buffer(32, 64)
        self.grad_dec0_columns, self.grad_latent = buffer(4, 1568), buffer(4, latent_channels)
        self.grad_enc4_columns, self.grad_enc2_out = buffer(4, 1568), buffer(32, 8, 8)
        self.grad_enc2_columns = buffer(144, 64)
        self.grad_enc0_out = _fold_target(k, 16, 16, device).view(k, 16, 256)

    def _forward_plan(self) -> tuple:
        """The kernel calls from `input` to `output` and `error`."""
        call, k, maps = partial, self.k, (self.k, 16, 16, 16)
        # The 7x7 layers' products with their weights: rank 4, where the C kernel beats MKL's bmm.
        product = native.function("low_rank_product") if self.stack.device.type == "cpu" else None
        if product is None:
            to_latent = call(torch.bmm, self.enc4_columns, self.enc4_w.transpose(1, 2), out=self.latent)
            from_latent = call(torch.bmm, self.latent, self.dec0_w, out=self.dec0_columns)
        else:
            to_latent = self._low_rank_product_call(
                product, ENC4_WEIGHT, x=self.enc4_columns, out=self.latent, row_dots_out=True
            )
            from_latent = self._low_rank_product_call(
                product, DEC0_WEIGHT, x=self.latent, out=self.dec0_columns, row_dots_out=False
            )
        return (
            call(torch.baddbmm, self.enc0_b.unsqueeze(2), self.enc0_w, self.enc0_columns, out=self.enc0_out),
            call(torch.clamp_min, self.enc0_out.view(maps), 0.0, out=self.enc0_relu),
            call(self.enc2_columns.view(k, 16, 3, 3, 8, 8).copy_, _windows_3x3_stride2(self.enc0_relu_padded)),
            call(torch.baddbmm, self.enc2_b.unsqueeze(2), self.enc2_w, self.enc2_columns, out=self.enc2_out),
            # The ReLU is taken as the windows are copied, one call fewer (enc2_out stays pre-ReLU). With
            # only 4 output positions, MKL is several times faster when positions are the rows.
            call(
                torch.clamp_min,
                _windows_7x7(self.enc2_out.view(k, 32, 8, 8)),
                0.0,
                out=self.enc4_columns.view(k, 2, 2, 32, 7, 7),
            ),
            to_latent,
            call(torch.add, self.latent, self.enc4_b.unsqueeze(1), out=self.latent),
            from_latent,
            call(self.dec0_out.copy_, self.dec0_b.view(k, 32, 1, 1).expand(k, 32, 8, 8)),
            *_fold_7x7(self.dec0_columns, self.dec0_out),
            call(torch.relu_, self.dec0_out),
            call(torch.bmm, self.dec2_w.transpose(1, 2), self.dec0_out.view(k, 32, 64), out=self.dec2_columns),
            *_fold_3x3_stride2(self.dec2_columns, self.dec2_out.view(maps)),
            call(_aten._add_relu_, self.dec2_out, self.dec2_b.unsqueeze(2)),
            call(torch.bmm, self.dec4_w.transpose(1, 2), self.dec2_out, out=self.dec4_columns),
            *_fold_3x3_stride2(self.dec4_columns, self.output),
            call(torch.add, self.output, self.dec4_b.view(k, 3, 1, 1), out=self.output),
            call(torch.sigmoid_, self.output),
            call(torch.sub, self.output, self.input, out=self.error),
        )

    def _backward_plans(self) -> tuple[tuple, tuple, tuple]:
        """d(mean squared error)/d(params) of each model into its rows of the stack's grads, in three
        parts: down to the 7x7 layers, through them (what the C kernel replaces), and from them on."""
        call, k, maps = partial, self.k, (self.k, 16, 16, 16)
        to_7x7 = (
            call(torch.mul, self.error, 2.0 / IMAGE_SIZE, out=self.error),
            call(_aten.sigmoid_backward.grad_input, self.error, self.output, grad_input=self.error),
            call(torch.sum, self.error, (2, 3), out=self.grad_dec4_b),
            call(self.grad_dec4_columns.view(k, 3, 3, 3, 16, 16).copy_, _windows_3x3_stride2(self.error_padded)),
            call(torch.bmm, self.dec2_out, self.grad_dec4_columns.transpose(1, 2), out=self.grad_dec4_w),
            call(torch.bmm, self.dec4_w, self.grad_dec4_columns, out=self.grad_dec2_out),
            call(_relu_backward, self.grad_dec2_out.view(maps), self.dec2_out.view(maps), self.grad_dec2_relu),
            call(torch.sum, self.grad_dec2_relu, (2, 3), out=self.grad_dec2_b),
            call(
                self.grad_dec2_columns.view(k, 16, 3, 3, 8, 8).copy_, _windows_3x3_stride2(self.grad_dec2_relu_padded)
            ),
            call(
                torch.bmm, self.dec0_out.view(k, 32, 64), self.grad_dec2_columns.transpose(1, 2), out=self.grad_dec2_w
            ),
            call(torch.bmm, self.dec2_w, self.grad_dec2_columns, out=self.grad_dec0_out),
            call(_relu_backward, self.grad_dec0_out, self.dec0_out.view(k, 32, 64), self.grad_dec0_out),
            call(torch.sum, self.grad_dec0_out, 2, out=self.grad_dec0_b),
            call(
                self.grad_dec0_columns.view(k, 2, 2, 32, 7, 7).copy_,
                _windows_7x7(self.grad_dec0_out.view(k, 32, 8, 8)),
            ),
        )
        through_7x7 = (
            call(torch.bmm, self.latent.transpose(1, 2), self.grad_dec0_columns, out=self.grad_dec0_w),
            call(torch.bmm, self.grad_dec0_columns, self.dec0_w.transpose(1, 2), out=self.grad_latent),
            call(torch.sum, self.grad_latent, 1, out=self.grad_enc4_b),
            call(torch.bmm, self.grad_latent.transpose(1, 2), self.enc4_columns, out=self.grad_enc4_w),
            call(torch.bmm, self.grad_latent, self.enc4_w, out=self.grad_enc4_columns),
        )
        grad_enc2_out = self.grad_enc2_out.view(k, 32, 64)
        from_7x7 = (
            call(self.grad_enc2_out.zero_),
            *_fold_7x7(self.grad_enc4_columns, self.grad_enc2_out),
            call(_relu_backward, grad_enc2_out, self.enc2_out, grad_enc2_out),
            call(torch.sum, grad_enc2_out, 2, out=self.grad_enc2_b),
            call(torch.bmm, grad_enc2_out, self.enc2_columns.transpose(1, 2), out=self.grad_enc2_w),
            call(torch.bmm, self.enc2_w.transpose(1, 2), grad_enc2_out, out=self.grad_enc2_columns),
            *_fold_3x3_stride2(self.grad_enc2_columns, self.grad_enc0_out.view(maps)),
            call(_relu_backward, self.grad_enc0_out, self.enc0_out, self.grad_enc0_out),
            call(torch.sum, self.grad_enc0_out, 2, out=self.grad_enc0_b),
            call(torch.bmm, self.grad_enc0_out, self.enc0_columns.transpose(1, 2), out=self.grad_enc0_w),
        )
        return to_7x7, through_7x7, from_7x7

    def _step_plan(self, to_7x7: tuple, from_7x7: tuple) -> tuple:
        """The backward pass and Adam. With the C kernel (native.py), the 7x7 layers' weights take their
        Adam step in the same pass that forms their rank-4 gradients and the backward products through
        them; torch's fused Adam updates the other parameters."""
        kernel = native.function("low_rank_adam") if self.stack.device.type == "cpu" else None
        if kernel is None:
            return (*self.backward_plan, self._adam_call(lambda buffer: [buffer]))
        fused_7x7 = (
            self._low_rank_adam_call(
                kernel, DEC0_WEIGHT, a=self.latent, b=self.grad_dec0_columns, out=self.grad_latent, row_dots_out=True
            ),
            partial(torch.sum, self.grad_latent, 1, out=self.grad_enc4_b),
            self._low_rank_adam_call(
                kernel,
                ENC4_WEIGHT,
                a=self.grad_latent,
                b=self.enc4_columns,
                out=self.grad_enc4_columns,
                row_dots_out=False,
            ),
        )
        return (*to_7x7, *fused_7x7, *from_7x7, self._adam_call(self._pieces_besides(ENC4_WEIGHT, DEC0_WEIGHT)))

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
        """Fills `self.output` with each model's output for its row of `images`, and `self.error` with
        output - images."""
        if self._images is not images:
            self.input.copy_(images[self.rows])
            self.unfold_input()
            self._images = images
        for kernel_call in self.forward_plan:
            kernel_call()
        return self.output

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
        with denormals_flushed():
            for step_losses in losses:
                self.forward(targets)
                self.loss(step_losses)
                self.steps_done += 1
                for kernel_call in self.step_plan:
                    kernel_call()
