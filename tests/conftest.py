import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_SEED = ROOT.parent / "shared" / "seed" / "seed-architecture.json"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """No test may read or write the real dataset cache."""
    monkeypatch.setenv("AE_DATA_DIR", str(tmp_path / "cache"))


@pytest.fixture
def pair():
    from ae_core import load_pair

    return load_pair("sample", 3, 0)


@pytest.fixture
def target(pair) -> torch.Tensor:
    """The pair's mix as the trainer holds it: images are numpy arrays until something trains."""
    from ae_core import mix

    return torch.from_numpy(mix(pair[0].image, pair[1].image))


def plain_reference_losses(target: torch.Tensor, steps: int, seed: int = 0) -> list[float]:
    from ae_core import reference

    return reference.train(target, steps, seed=seed)[1]


def c_kernel_or_skip():
    """The engine's C kernel (native.py); the calling test is skipped where it cannot be built here."""
    from ae_core import native

    if native.function("low_rank_adam") is None:
        # CI installs a C compiler (.ci/run): there a kernel that cannot be built is a failure.
        (pytest.fail if os.environ.get("CI") else pytest.skip)(f"the C kernel is {native.status()}")
    return native.function("low_rank_adam")


@pytest.fixture(params=["C kernel", "torch ops"])
def engine_path(request):
    """Each way the engine can take a step: with native.py's C kernel, and without it (no compiler)."""
    from ae_core import native

    if request.param == "torch ops":
        with native.turned_off():
            yield request.param
        return
    c_kernel_or_skip()
    yield request.param
