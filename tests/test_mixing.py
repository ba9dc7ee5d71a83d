import pytest
import torch

from ae_core.mixing import mix, unmix


def test_seed_alpha_unmixing_is_twice_the_reconstruction_minus_the_other_image():
    mnist, cifar, recon = torch.rand(3, 3, 32, 32)
    got_mnist, got_cifar = unmix(recon, mnist, cifar, 0.5)
    assert torch.allclose(got_mnist, 2 * recon - cifar)
    assert torch.allclose(got_cifar, 2 * recon - mnist)


@pytest.mark.parametrize("alpha", [0.1, 0.5, 0.73])
def test_unmixing_a_perfect_reconstruction_gives_back_both_originals(alpha):
    mnist, cifar = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    mixed = mix(mnist, cifar, alpha)
    assert torch.allclose(mixed, alpha * mnist + (1 - alpha) * cifar)
    got_mnist, got_cifar = unmix(mixed, mnist, cifar, alpha)
    assert torch.allclose(got_mnist, mnist) and torch.allclose(got_cifar, cifar)


@pytest.mark.parametrize("alpha", [0, 1, -0.2, 1.5, float("nan"), float("inf")])
def test_alpha_outside_the_open_unit_interval_is_refused(alpha):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        mix(torch.zeros(3), torch.zeros(3), alpha)
