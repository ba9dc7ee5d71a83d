import math

import pytest
import torch

from ae_core.experiment import Experiment
from ae_core.model import initial_autoencoder
from ae_core.progress import FINISHED, STOPPED
from ae_core.study import MAX_PAIRS, SCORES, Study, pick_pairs, summarize
from ae_core.training import BatchTrainer, Trainer


def test_batched_losses_equal_separate_runs_step_by_step():
    targets = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    batch = BatchTrainer(targets, seed=3, device="cpu")
    batch.train(40)
    for k in range(4):
        alone = Trainer(targets[k], seed=3, device="cpu")
        alone.train(40)
        assert torch.allclose(batch.losses[:, k], torch.tensor(alone.loss_history), rtol=1e-5, atol=1e-9)
        assert torch.allclose(batch.reconstructions()[k], alone.reconstruction(), atol=1e-5)


def test_a_diverging_model_keeps_finite_weights_while_the_others_train_on():
    targets = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    targets[1] = math.nan  # its loss is NaN from the first epoch
    trainer = BatchTrainer(targets, device="cpu")
    assert trainer.train(50) == FINISHED
    assert trainer.diverged == {1: 0} and "1 of 3" in trainer.message
    assert torch.isnan(trainer.losses[:, 1]).all() and torch.isfinite(trainer.losses[:, [0, 2]]).all()
    kept = trainer.engine.state_dict(1)
    assert all(torch.equal(kept[name], weight) for name, weight in initial_autoencoder(0).state_dict().items())
    assert torch.isfinite(trainer.engine.params).all()
    assert trainer.losses[-1, 0] < trainer.losses[0, 0]


def test_a_model_that_diverges_later_keeps_the_weights_of_the_last_checkpoint_before_it():
    """Checkpoints after the first are copied into one reused buffer: the weights kept for a model
    that diverges must be that checkpoint's, not overwritten by a later copy."""
    targets = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    trainer = BatchTrainer(targets, device="cpu")
    weights_at = {0: trainer.engine.params[1].clone()}

    def record_then_break_model_1(progress):
        weights_at[progress.epoch] = trainer.engine.params[1].clone()
        if len(weights_at) == 4:
            trainer.engine.params[1].fill_(math.nan)

    assert trainer.train(400, on_progress=record_then_break_model_1, report_every_s=0.0) == FINISHED
    kept_epoch = trainer.diverged[1]
    assert kept_epoch > 0 and kept_epoch in weights_at
    assert torch.equal(trainer.engine.params[1], weights_at[kept_epoch])
    assert torch.isnan(trainer.losses[kept_epoch:, 1]).all() and torch.isfinite(trainer.losses[:, 0]).all()


def test_pairs_are_distinct_reproducible_and_follow_the_seed():
    assert pick_pairs("sample", 50, seed=1) == pick_pairs("sample", 50, seed=1)
    assert pick_pairs("sample", 50, seed=1) != pick_pairs("sample", 50, seed=2)
    pairs = pick_pairs("sample", 256, seed=0)
    assert len(set(pairs)) == 256 and all(0 <= m < 200 and 0 <= c < 20 for m, c in pairs)


@pytest.mark.parametrize("pairs", [0, 257, 2.0, True])
def test_bad_pair_counts_are_refused(pairs):
    with pytest.raises(ValueError, match="number of pairs"):
        pick_pairs("sample", pairs, seed=0)


def test_a_study_pair_scores_what_a_single_experiment_on_it_scores():
    study = Study("sample", pairs=3, alpha=0.4, seed=7)
    study.train(80)
    results = study.results()
    mnist, cifar = study.samples[2]
    single = Experiment(mnist, cifar, alpha=0.4, seed=7)
    single.train(80)
    expected = single.result().quality
    for key in ("mnist", "cifar", "mixed"):
        assert results[2].quality[key].psnr == pytest.approx(expected[key].psnr, abs=1e-3)
        assert results[2].quality[key].ssim == pytest.approx(expected[key].ssim, abs=1e-5)


def test_a_study_of_the_most_pairs_trains_each_as_a_single_run_would():
    """256 pairs span many lanes of models over the cores; the last pair must still learn alone."""
    study = Study("sample", pairs=MAX_PAIRS, seed=0)
    assert study.train(6) == FINISHED
    assert (study.trainer.losses[-1] < study.trainer.losses[0]).all()
    alone = Trainer(study.mixed[-1], seed=0, device="cpu")
    alone.train(6)
    assert torch.allclose(study.trainer.losses[:, -1], torch.tensor(alone.loss_history), rtol=1e-5, atol=1e-9)
    results = study.results()
    assert len(results) == MAX_PAIRS
    assert all(
        math.isfinite(getattr(result.quality[dataset], metric)) for result in results for dataset, metric in SCORES
    )


def test_a_stopped_study_keeps_its_pairs_results_and_continues():
    study = Study("sample", pairs=4, seed=0)
    reports = []
    assert (
        study.train(2000, on_progress=reports.append, report_every_s=0.0, should_stop=lambda: len(reports) >= 3)
        == STOPPED
    )
    stopped_at = study.trainer.epochs_done
    assert 0 < stopped_at < 2000 and reports[-1].epoch == stopped_at and len(study.results()) == 4
    assert study.train(stopped_at + 20) == FINISHED and study.trainer.epochs_done == stopped_at + 20


def test_summary_holds_each_metrics_distribution():
    study = Study("sample", pairs=5, seed=1)
    study.train(30)
    results = study.results()
    summary = summarize(results)
    assert {(dataset, metric) for dataset in summary for metric in summary[dataset]} == set(SCORES)
    for dataset, metric in SCORES:
        values = torch.tensor([getattr(result.quality[dataset], metric) for result in results], dtype=torch.float64)
        ordered = values.sort().values.tolist()
        stats = summary[dataset][metric]
        assert (stats["min"], stats["median"], stats["max"]) == (ordered[0], ordered[2], ordered[-1]), (dataset, metric)
        assert stats["mean"] == pytest.approx(values.mean().item(), rel=1e-12), (dataset, metric)
        assert stats["std"] == pytest.approx(values.std().item(), rel=1e-12), (dataset, metric)  # n - 1, as torch
        assert ordered[0] < ordered[-1]  # five different pairs: a spread to get wrong


def test_the_seeds_standing_gives_each_numbers_percentile_and_the_share_reaching_them_all():
    from types import SimpleNamespace

    from ae_core.metrics import Quality
    from ae_core.reporting import seed_standing

    def pair(psnr, mnist_ssim, cifar_ssim, gaussian=0.5):
        return SimpleNamespace(
            quality={"mnist": Quality(psnr, mnist_ssim, gaussian), "cifar": Quality(psnr, cifar_ssim, gaussian)}
        )

    # The seed: PSNR 44.5539 for both, SSIM 0.9954 (MNIST) and 0.9988 (CIFAR-10).
    results = [pair(40.0, 0.990, 0.999), pair(44.5539, 0.996, 0.999), pair(46.0, 0.996, 0.998), pair(47.0, 0.999, 1.0)]
    standing = seed_standing(results)
    assert standing["mnist_psnr"] == {"seed": 44.5539, "percentile": 50.0, "reaching": 75.0}  # the tie counts both ways
    assert standing["mnist_ssim"]["percentile"] == 25.0 and standing["mnist_ssim"]["reaching"] == 75.0
    assert standing["cifar_ssim"]["reaching"] == 75.0
    assert standing["all_reaching"] == 50.0  # pairs 2 and 4; pair 3 misses CIFAR-10's SSIM
    assert standing["all_reaching_gaussian"] == 0.0 and standing["mnist_ssim_gaussian"]["reaching"] == 0.0
