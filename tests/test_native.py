"""The C kernel (ae_core/low_rank_adam.c): its arithmetic, and what happens where it cannot be built."""

import ctypes
import os

import pytest
import torch
from conftest import c_kernel_or_skip

from ae_core import native
from ae_core.engine import ADAM_BETAS, ADAM_EPS, StackedAutoencoders
from ae_core.model import initial_autoencoder


@pytest.fixture
def kernel():
    """The kernel, built in this test's cache folder if no test has loaded it yet."""
    return c_kernel_or_skip()


def _pointer(tensor: torch.Tensor) -> int:
    return tensor.data_ptr()


@pytest.mark.parametrize("row_dots_out", [True, False])
@pytest.mark.parametrize("cols", [32, 800])  # 800: two whole tiles of col_sums and a part
def test_the_kernel_takes_adams_step_with_the_rank_4_gradient_and_the_backward_product(row_dots_out, cols, kernel):
    generator = torch.Generator().manual_seed(0)
    models, rows, step, lr = 3, 8, 7.0, 1e-3
    w, m, a, b = (
        torch.randn(shape, generator=generator)
        for shape in ((models, rows, cols), (models, rows, cols), (models, 4, rows), (models, 4, cols))
    )
    v = torch.rand(models, rows, cols, generator=generator)
    out = torch.empty(models, 4, rows if row_dots_out else cols)
    step_count = torch.tensor(step)  # the kernel reads it through a pointer: it must stay alive
    before = [t.double() for t in (w, m, v)]
    kernel(
        models,
        rows,
        cols,
        _pointer(w),
        _pointer(m),
        _pointer(v),
        rows * cols,
        _pointer(a),
        4 * rows,
        _pointer(b),
        4 * cols,
        _pointer(out),
        out[0].numel(),
        int(row_dots_out),
        _pointer(step_count),
        lr,
        *ADAM_BETAS,
        ADAM_EPS,
    )
    # torch.optim.Adam's formula, in float64.
    w0, m0, v0 = before
    grad = a.double().transpose(1, 2) @ b.double()
    beta1, beta2 = ADAM_BETAS
    m1 = beta1 * m0 + (1 - beta1) * grad
    v1 = beta2 * v0 + (1 - beta2) * grad**2
    w1 = w0 - lr / (1 - beta1**step) * m1 / (v1.sqrt() / (1 - beta2**step) ** 0.5 + ADAM_EPS)
    backward = b.double() @ w0.transpose(1, 2) if row_dots_out else a.double() @ w0
    for ours, expected in ((m, m1), (v, v1), (w, w1)):
        assert torch.allclose(ours.double(), expected, rtol=1e-5, atol=1e-6)
    assert torch.allclose(out.double(), backward, rtol=1e-5, atol=1e-4)  # float32 sums of up to 800 terms near 1


@pytest.mark.parametrize("row_dots_out", [True, False])
@pytest.mark.parametrize("cols", [32, 800])  # 800: two whole tiles of col_sums and a part
def test_the_product_alone_is_the_matmul_and_leaves_the_weights_as_they_were(row_dots_out, cols, kernel):
    generator = torch.Generator().manual_seed(0)
    models, rows = 3, 8
    w = torch.randn(models, rows, cols, generator=generator)
    x = torch.randn(models, 4, cols if row_dots_out else rows, generator=generator)
    out = torch.empty(models, 4, rows if row_dots_out else cols)
    before = w.clone()
    product = native.function("low_rank_product")
    product(
        models,
        rows,
        cols,
        _pointer(w),
        rows * cols,
        _pointer(x),
        x[0].numel(),
        _pointer(out),
        out[0].numel(),
        int(row_dots_out),
    )
    expected = x.double() @ (w.double().transpose(1, 2) if row_dots_out else w.double())
    assert torch.allclose(out.double(), expected, rtol=1e-5, atol=1e-4)
    assert torch.equal(w, before)


def test_the_kernel_is_built_once_and_then_loaded_from_the_cache(kernel, tmp_path, monkeypatch):
    monkeypatch.setattr(native, "_loaded", {})
    assert native.status() == f"on: {native._library_path(native._compiler())}"
    built = list((tmp_path / "cache" / "kernels").glob("*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    monkeypatch.setattr(native, "_loaded", {})
    assert native.function("low_rank_adam") is not None and built[0].stat().st_mtime_ns == stamp


def test_a_damaged_library_in_the_cache_is_built_again(kernel, monkeypatch):
    monkeypatch.setattr(native, "_loaded", {})
    path = native._library_path(native._compiler())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as damaged:
        damaged.write(b"not a shared library")
    assert native.status() == f"on: {path}"
    assert open(path, "rb").read() != b"not a shared library"


@pytest.mark.parametrize(
    "compiler, reason", [("no-such-compiler", "off: no C compiler"), ("false", "off: building low_rank_adam.c with ")]
)
def test_without_a_working_compiler_the_engine_says_why_and_trains_with_torch_ops(
    compiler, reason, monkeypatch, target, caplog
):
    monkeypatch.setenv("CC", compiler)
    monkeypatch.delenv("AE_NATIVE", raising=False)  # the suite may run with the kernel turned off
    monkeypatch.setattr(native, "_loaded", {})
    assert all(native.function(name) is None for name in native.SIGNATURES)
    assert native.status().startswith(reason) and reason in caplog.text
    engine = StackedAutoencoders([initial_autoencoder(0).state_dict()], lr=1e-3)
    losses = engine.steps(target.unsqueeze(0), 20)[:, 0]
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", sorted(native.SIGNATURES))
def test_each_functions_argument_list_matches_its_c_signature(name):
    source = open(native.SOURCE).read()
    signature = source[source.index(f"void {name}(") :].split(")")[0]
    assert signature.count(",") + 1 == len(native.SIGNATURES[name])
    assert all(t in (ctypes.c_int, ctypes.c_long, ctypes.c_double, ctypes.c_void_p) for t in native.SIGNATURES[name])
