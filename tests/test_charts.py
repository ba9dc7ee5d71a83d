"""The score plots must show each dataset's values and the seed's, without doubling or hiding any."""

import math

import pytest
import torch

from ae_core import charts, reporting
from ae_core.reporting import SEED_RESULTS
from ae_core.study import Study
from ae_core.sweep import Sweep

SEED_PSNR = SEED_RESULTS["mnist"]["psnr_db"]
DATASET_OF = {"MNIST": "mnist", "CIFAR-10": "cifar", charts.BOTH_DATASETS: "mnist"}


def study_rows(alpha: float) -> list[dict]:
    study = Study("sample", 3, alpha=alpha, seed=0)
    study.train(20)
    return reporting.pair_rows(study, study.results())


@pytest.mark.parametrize("alpha, psnr_traces", [(0.5, [charts.BOTH_DATASETS]), (0.3, ["MNIST", "CIFAR-10"])])
def test_psnr_is_one_trace_for_both_datasets_only_where_their_psnrs_are_equal(alpha, psnr_traces):
    rows = study_rows(alpha)
    box, histogram = charts.score_figures(rows, "psnr")
    assert [trace.name for trace in box.data] == [trace.name for trace in histogram.data] == psnr_traces
    for box_trace, histogram_trace in zip(box.data, histogram.data):
        values = [row[f"{DATASET_OF[box_trace.name]}_psnr"] for row in rows]
        assert list(box_trace.y) == list(histogram_trace.x) == values
    for figure in charts.score_figures(rows, "ssim"):  # SSIMs differ at any α
        assert [trace.name for trace in figure.data] == ["MNIST", "CIFAR-10"]

    sweep = Sweep("epochs", [10, 20], pairs=2, alpha=alpha, seed=0)
    sweep.run()
    psnr, ssim = charts.sweep_figures(sweep.points, "epochs")
    assert [trace.name for trace in psnr.data] == psnr_traces
    for trace in psnr.data:
        scores = [point.scores[DATASET_OF[trace.name]]["psnr"] for point in sweep.points]
        assert list(trace.y) == [value for values in scores for value in values]
    assert list(psnr.data[0].x) == ["10", "10", "20", "20"]
    assert [trace.name for trace in ssim.data] == ["MNIST", "CIFAR-10"]


def test_the_seeds_values_are_one_line_each_named_in_the_legend():
    rows = study_rows(0.5)
    box, histogram = charts.score_figures(rows, "psnr")
    # The seed reports one PSNR for both datasets: one line, not two on top of each other.
    assert [(line.y0, line.name) for line in box.layout.shapes] == [
        (SEED_PSNR, f"seed MNIST and CIFAR-10: {SEED_PSNR:g}")
    ]
    assert [line.x0 for line in histogram.layout.shapes] == [SEED_PSNR]
    box, _ = charts.score_figures(rows, "ssim")
    assert [(line.y0, line.name) for line in box.layout.shapes] == [
        (SEED_RESULTS["mnist"]["ssim"], "seed MNIST: 0.9954"),
        (SEED_RESULTS["cifar"]["ssim"], "seed CIFAR-10: 0.9988"),
    ]
    assert all(line.showlegend for line in box.layout.shapes) and not box.layout.annotations


def test_the_study_loss_band_is_one_legend_entry_between_the_quartiles():
    losses = torch.rand(50, 8, generator=torch.Generator().manual_seed(0))
    figure = charts.study_loss_figure(losses)
    assert [trace.name for trace in figure.data if trace.showlegend is not False] == [charts.BAND, "median"]
    high, low, median = figure.data
    assert high.legendgroup == low.legendgroup == charts.BAND and low.fill == "tonexty"
    expected = torch.nanquantile(losses, torch.tensor([0.75, 0.25, 0.5]), dim=1)
    for trace, values in zip((high, low, median), expected):
        assert torch.allclose(torch.tensor(trace.y), values)


@pytest.mark.parametrize("epochs", [2_000, 2_001, 4_000, 25_001])
def test_a_long_runs_charts_keep_at_most_2000_epochs_evenly_and_always_the_last(epochs):
    losses = torch.rand(epochs, 3, generator=torch.Generator().manual_seed(epochs))  # every value distinct
    stride = math.ceil(epochs / 2000)  # the smallest that fits: 1 up to 2,000 epochs, 2 up to 4,000, ...
    shown = charts.sampled_epochs(epochs)
    assert len(shown) <= 2000 and shown[0] == 1 and shown[-1] == epochs
    # Every stride-th epoch; the last one takes the place of the last of those, so it is one point
    # away from the one before, up to two strides.
    assert shown[:-1] == list(range(1, epochs + 1, stride))[: len(shown) - 1] and 0 < shown[-1] - shown[-2] < 2 * stride

    (line,) = charts.loss_figure(losses[:, 0].tolist()).data
    assert list(line.x) == shown and list(line.y) == [losses[epoch - 1, 0].item() for epoch in shown]
    high, low, median = charts.study_loss_figure(losses).data
    rows = losses[[epoch - 1 for epoch in shown]]
    assert list(high.x) == list(low.x) == list(median.x) == shown
    assert list(median.y) == rows.sort(dim=1).values[:, 1].tolist()  # the middle of three pairs
    quartiles = torch.quantile(rows, torch.tensor([0.25, 0.75]), dim=1)
    assert torch.allclose(torch.tensor(low.y), quartiles[0]) and torch.allclose(torch.tensor(high.y), quartiles[1])
