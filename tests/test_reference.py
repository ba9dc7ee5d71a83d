"""The plain PyTorch reference is the yardstick: the trainer's reference engine learns exactly what it
learns, and a torch without one of the fast engine's private operators falls back to it."""

import numpy as np
import pytest
import torch

from ae_core import engine, reference
from ae_core.experiment import Experiment
from ae_core.progress import FINISHED
from ae_core.reference_stack import ReferenceStack
from ae_core.training import BatchTrainer, Trainer, choose_engine
from ae_core.worker import RemoteTrainer


def test_the_reference_engine_learns_exactly_what_the_plain_loop_learns(target):
    model, plain = reference.train(target, 40, seed=2)
    trainer = Trainer(target, seed=2, device="cpu", engine="reference")
    assert trainer.train(15) == FINISHED and trainer.train(40) == FINISHED  # continued, not restarted
    assert trainer.loss_history == plain
    for name, weight in model.state_dict().items():
        assert torch.equal(trainer.state_dict()[name], weight), name


def test_the_reference_engine_in_a_child_process_ends_as_in_place(target):
    here = Trainer(target, seed=1, device="cpu", engine="reference")
    there = RemoteTrainer(target[None].numpy(), seed=1, engine="reference")
    here.train(30)
    there.train(30)
    assert there.engine.name == "reference" and np.array_equal(here.losses.numpy(), there.losses)
    ours, theirs = here.saved_state(), there.saved_state()
    for name in ("params", "exp_avg", "exp_avg_sq", "steps_done"):
        assert np.array_equal(ours[name], theirs[name]), name


def test_the_fast_engine_scores_what_the_reference_experiment_scores(pair):
    mnist, cifar = pair
    plain = reference.experiment(mnist, cifar, epochs=200)
    fast = Experiment(mnist, cifar, device="cpu")
    fast.train(200)
    result = fast.result()
    assert torch.allclose(torch.tensor(fast.trainer.loss_history), torch.tensor(plain["losses"]), rtol=1e-4)
    for dataset in ("mnist", "cifar"):
        assert result.quality[dataset].psnr == pytest.approx(plain[dataset].psnr, abs=0.05)
        assert result.quality[dataset].ssim == pytest.approx(plain[dataset].ssim, abs=1e-3)


def test_this_torch_has_every_private_operator_the_fast_engine_calls():
    assert engine.missing_private_ops() == []


def test_a_torch_without_one_of_them_trains_with_the_reference_and_says_which(monkeypatch):
    monkeypatch.setattr(engine, "PRIVATE_OPS", (*engine.PRIVATE_OPS, "ops.aten.no_such_op.out"))
    engine_class, note = choose_engine("fast")
    assert engine_class is ReferenceStack and "torch.ops.aten.no_such_op.out" in note
    trainer = BatchTrainer(torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)), device="cpu")
    assert trainer.engine.name == "reference" and trainer.engine_note == note
    assert trainer.train(5) == FINISHED and (trainer.losses[-1] < trainer.losses[0]).all()


def test_an_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="fast, grouped, reference"):
        choose_engine("turbo")
