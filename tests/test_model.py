import json

import pytest
import torch
from conftest import SHARED_SEED

from ae_core.model import Autoencoder, initial_autoencoder
from ae_core.reporting import SEED_ARCHITECTURE


def test_state_dict_names_and_shapes_equal_the_seed_listing():
    expected = SEED_ARCHITECTURE["state_dict"]
    actual = {name: list(t.shape) for name, t in Autoencoder().state_dict().items()}
    assert list(actual) == list(expected)
    assert actual == expected


@pytest.mark.skipif(not SHARED_SEED.exists(), reason="../shared/seed not beside this checkout")
def test_embedded_seed_copy_equals_the_shared_seed_file():
    assert SEED_ARCHITECTURE == json.loads(SHARED_SEED.read_text())


def test_maps_32x32_rgb_to_32x32_rgb_inside_the_sigmoid_range():
    out = Autoencoder()(torch.rand(2, 3, 32, 32) * 4 - 2)
    assert out.shape == (2, 3, 32, 32)
    assert 0 <= out.min() and out.max() <= 1


def test_initial_weights_follow_the_seed_and_leave_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a, b, c = initial_autoencoder(5), initial_autoencoder(5), initial_autoencoder(6)
    assert torch.rand(1) == before
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.state_dict()["encoder.0.weight"], c.state_dict()["encoder.0.weight"])
