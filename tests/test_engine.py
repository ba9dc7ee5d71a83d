"""The hand-written engine must learn exactly what autograd + torch.optim.Adam would."""

import pytest
import torch
import torch.nn.functional as F
from conftest import plain_reference_losses

from ae_core.engine import StackedAutoencoders, _fold_3x3_stride2, _fold_7x7, _fold_target
from ae_core.model import initial_autoencoder
from ae_core.training import one_cpu_thread


def test_gradients_equal_autograd_for_each_stacked_model():
    torch.manual_seed(0)
    models = [initial_autoencoder(seed) for seed in (1, 2, 3)]
    targets = torch.rand(3, 3, 32, 32)
    engine = StackedAutoencoders([m.state_dict() for m in models], lr=1e-3)
    losses = engine.gradients(targets)
    for k, model in enumerate(models):
        loss = F.mse_loss(model(targets[k : k + 1]), targets[k : k + 1])
        loss.backward()
        # Hand-written gradients sum in another order than autograd's kernels: close, not bit for bit.
        assert torch.allclose(losses[k], loss, rtol=1e-6)
        expected = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        assert torch.allclose(engine.grads[k], expected, rtol=1e-4, atol=1e-9)


def test_training_losses_equal_the_plain_model_with_torch_adam(target, engine_path):
    steps = 50
    engine = StackedAutoencoders([initial_autoencoder(0).state_dict()], lr=1e-3)
    ours = [engine.step(target.unsqueeze(0))[0].item() for _ in range(steps)]
    plain = plain_reference_losses(target, steps, seed=0)
    # The reference runs autograd and torch.optim.Adam, whose sums and bias correction round
    # differently (docs/performance.md): the trajectories agree closely, not bit for bit.
    assert torch.allclose(torch.tensor(ours), torch.tensor(plain), rtol=1e-4)
    assert ours[-1] < 0.5 * ours[0]  # and it did learn


def test_k_stacked_models_equal_k_separate_runs(engine_path):
    targets = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    seeds = (4, 5, 6)
    together = StackedAutoencoders([initial_autoencoder(s).state_dict() for s in seeds], lr=1e-3)
    alone = [StackedAutoencoders([initial_autoencoder(s).state_dict()], lr=1e-3) for s in seeds]
    joint = torch.stack([together.step(targets) for _ in range(30)])
    separate = torch.stack(
        [torch.cat([engine.step(targets[k : k + 1]) for k, engine in enumerate(alone)]) for _ in range(30)]
    )
    if engine_path == "C kernel":
        # The kernel sums in an order fixed by its code, whatever the row: bit for bit.
        assert torch.equal(joint, separate)
        for k, engine in enumerate(alone):
            assert all(
                torch.equal(ours[k], its[0]) for ours, its in zip(together.state_tensors(), engine.state_tensors())
            )
        return
    # Torch's ops run over the K rows as one tensor and do not round each row as they round it alone,
    # by how much depends on the CPU. On an AVX2 host one second moment differed from step 3, its
    # weight from step 4, the losses from step 25. On an AVX-512 host (2026-12-03) the second and third models' weights
    # differed from the first step on, after 30 steps 143,871 and 153,281 of 210,947 of them, by at
    # most 2.3e-7 and 3.0e-7: rounding, far under a thousandth of one Adam step (lr 1e-3), where a
    # model trained on another's target or gradient would be a whole step off.
    assert torch.allclose(joint, separate, rtol=1e-5)
    for k, engine in enumerate(alone):
        assert torch.allclose(together.params[k], engine.params[0], rtol=1e-5, atol=1e-6)


def test_state_dict_round_trips_into_the_reference_module(target):
    engine = StackedAutoencoders([initial_autoencoder(0).state_dict()], lr=1e-3)
    for _ in range(5):
        engine.step(target.unsqueeze(0))
    model = initial_autoencoder(99)
    model.load_state_dict(engine.state_dict(0))
    with torch.no_grad():
        assert torch.allclose(model(target.unsqueeze(0)), engine.reconstruct(target.unsqueeze(0)), atol=1e-6)


def test_many_steps_in_one_call_over_lanes_and_threads_equal_single_steps(engine_path):
    """`steps(n)` runs each lane's n steps in a row on whichever thread takes it; the result must not
    depend on that order: bit-identical to n calls of one step."""
    targets = torch.rand(9, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    states = [initial_autoencoder(s).state_dict() for s in range(9)]
    chunked, stepped = StackedAutoencoders(states, lr=1e-3), StackedAutoencoders(states, lr=1e-3)
    losses = torch.cat([chunked.steps(targets, 7), chunked.steps(targets, 5)])
    assert len(chunked._lanes) > 1  # 9 models do not fit one lane
    assert torch.equal(losses, torch.stack([stepped.step(targets) for _ in range(12)]))
    assert all(torch.equal(a, b) for a, b in zip(chunked.state_tensors(), stepped.state_tensors()))
    assert int(chunked.steps_done) == int(stepped.steps_done) == 12


def test_the_7x7_fold_adds_every_window_onto_its_place_in_the_order_of_four_adds():
    """On a CPU the fold is one index_add_; its sums must equal four window adds bit for bit."""
    generator = torch.Generator().manual_seed(0)
    rows, maps = torch.randn(3, 4, 32 * 49, generator=generator), torch.randn(3, 32, 8, 8, generator=generator)
    expected = maps.clone()
    windows = rows.view(3, 2, 2, 32, 7, 7)
    for r in range(2):
        for c in range(2):
            expected[:, :, r : r + 7, c : c + 7] += windows[:, r, c]
    for kernel_call in _fold_7x7(rows, maps):
        kernel_call()
    assert torch.equal(maps, expected)


@pytest.mark.parametrize("models, channels, size", [(1, 3, 32), (3, 16, 16)])
def test_the_3x3_fold_equals_col2im_and_drops_the_taps_on_the_padding(models, channels, size):
    """On a CPU the fold is one index_add_ onto maps with a spare element; it must equal col2im bit for bit."""
    generator = torch.Generator().manual_seed(0)
    columns = torch.randn(models, channels * 9, (size // 2) ** 2, generator=generator)
    maps = _fold_target(models, channels, size, "cpu")
    maps.fill_(float("nan"))  # the fold must write every element, not add onto what was there
    for kernel_call in _fold_3x3_stride2(columns, maps):
        kernel_call()
    assert torch.equal(maps, F.fold(columns, (size, size), 3, padding=1, stride=2))


def test_steps_flush_denormal_moments_to_zero_and_give_the_thread_its_default_back():
    # Adam's moments of weights whose gradients vanish decay below float32's smallest normal number
    # within a couple of thousand steps; Intel CPUs compute on those slowly (engine.py). The flags are
    # a thread's, so the steps run on one thread, as every trainer runs them.
    engine = StackedAutoencoders([initial_autoencoder(0).state_dict()], lr=1e-3)
    with one_cpu_thread():
        engine.steps(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), 2000)
    smallest_normal = torch.finfo(torch.float32).tiny
    for state in engine.state_tensors():
        assert not ((state != 0) & (state.abs() < smallest_normal)).any()
    assert (torch.tensor([1e-39]) * 1.0).item() != 0  # denormals count again outside the steps
