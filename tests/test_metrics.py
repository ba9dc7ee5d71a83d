import math

import torch

from ae_core.metrics import quality


def test_identical_images_score_ssim_one_and_infinite_psnr():
    image = torch.rand(3, 32, 32)
    q = quality(image, image.clone())
    assert q.ssim == 1.0 and math.isinf(q.psnr)


def test_psnr_is_ten_log_of_one_over_mse_on_unit_range():
    image = torch.full((3, 32, 32), 0.5)
    q = quality(image, image + 0.1)
    assert math.isclose(q.psnr, 10 * math.log10(1 / 0.01), rel_tol=1e-6)


def test_metrics_score_values_outside_the_unit_range_as_they_are():
    original = torch.zeros(3, 32, 32)
    overshoot = torch.full((3, 32, 32), -0.2)  # clamping would hide this error entirely
    q = quality(original, overshoot)
    assert math.isclose(q.psnr, 10 * math.log10(1 / 0.04), rel_tol=1e-6)


def test_ssim_drops_when_structure_is_lost():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    blurred = torch.nn.functional.avg_pool2d(image.unsqueeze(0), 3, 1, 1).squeeze(0)
    assert quality(image, blurred).ssim < 0.8 < quality(image, image * 0.99 + 0.005).ssim


def test_both_ssims_score_a_copy_one_and_weigh_the_same_error_differently():
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert quality(image, image.clone()).ssim_gaussian == 1.0
    blurred = torch.nn.functional.avg_pool2d(image.unsqueeze(0), 3, 1, 1).squeeze(0)
    q = quality(image, blurred)
    assert 0 < q.ssim_gaussian < 1 and abs(q.ssim - q.ssim_gaussian) > 1e-3  # another window, another number
