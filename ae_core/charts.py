"""Plotly figures for the app: loss curves (one run, or a study's median and spread) and score plots."""

import math

# Plotly imports pandas lazily on first use; two sessions drawing their first chart at once raced on
# that import ("partially initialized module 'pandas'"), so it happens here, under Python's import lock.
import pandas  # noqa: F401
import plotly.graph_objects as go
import torch

from .reporting import DATASET_TITLES, METRIC_TITLES, SEED_KEYS, SEED_RESULTS

INDIGO, INDIGO_BAND, SEED_RED = "#4f46e5", "rgba(79, 70, 229, 0.18)", "#dc2626"
DATASET_COLOURS = {"mnist": INDIGO, "cifar": "#0d9488"}
BOTH_DATASETS = "MNIST and CIFAR-10"
BAND = "25th to 75th percentile"  # a study's loss band, one legend entry
LOSS_LAYOUT = {
    "height": 320,
    "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
    "xaxis_title": "epoch",
    "yaxis_title": "loss",
    "yaxis_type": "log",
    "hovermode": "x unified",
}


def sampled_epochs(epochs_done: int, max_points: int = 2000) -> list[int]:
    """Every n-th epoch (1-based) and always the last, so a chart never carries more than max_points."""
    stride = max(1, -(-epochs_done // max_points))
    epochs = list(range(1, epochs_done + 1, stride))
    if epochs and epochs[-1] != epochs_done:
        epochs[-1] = epochs_done
    return epochs


def _loss_layout(figure: go.Figure, title: str, target_epochs: int | None) -> go.Figure:
    figure.update_layout(title=title, **LOSS_LAYOUT)
    if target_epochs:
        figure.update_xaxes(range=[0, target_epochs])
    return figure


def loss_figure(history: list[float], target_epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    epochs = sampled_epochs(len(history), max_points)
    figure = go.Figure(
        go.Scatter(
            x=epochs,
            y=[history[e - 1] for e in epochs],
            mode="lines",
            name="MSE loss",
            line={"color": INDIGO, "width": 2},
            hovertemplate="epoch %{x}<br>loss %{y:.3e}<extra></extra>",
        )
    )
    return _loss_layout(figure, "Training loss (MSE)", target_epochs)


def study_loss_figure(losses: torch.Tensor, target_epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    """Median loss across pairs with the band between the 25th and 75th percentiles."""
    epochs = sampled_epochs(len(losses), max_points)
    rows = losses[[e - 1 for e in epochs]]
    low, median, high = torch.nanquantile(rows, torch.tensor([0.25, 0.5, 0.75]), dim=1).tolist()
    figure = go.Figure(
        [
            # The band's two edges are one legend entry (its upper edge alone has nothing to show there)
            # and one click hides both.
            go.Scatter(
                x=epochs,
                y=high,
                mode="lines",
                line={"width": 0},
                name=BAND,
                legendgroup=BAND,
                showlegend=False,
                hovertemplate="75th percentile %{y:.3e}<extra></extra>",
            ),
            go.Scatter(
                x=epochs,
                y=low,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=INDIGO_BAND,
                name=BAND,
                legendgroup=BAND,
                hovertemplate="25th percentile %{y:.3e}<extra></extra>",
            ),
            go.Scatter(
                x=epochs,
                y=median,
                mode="lines",
                line={"color": INDIGO, "width": 2},
                name="median",
                hovertemplate="%{y:.3e}",
            ),
        ]
    )
    return _loss_layout(figure, "Training loss across pairs (median, interquartile band)", target_epochs)


def _points_box(name: str, colour: str, y: list[float], x: list[str] | None = None, size: int = 5) -> go.Box:
    """A box with every value drawn as a point on it."""
    return go.Box(
        x=x,
        y=y,
        name=name,
        boxpoints="all",
        jitter=0.4,
        pointpos=0,
        marker={"color": colour, "size": size},
        line={"color": colour},
    )


def _dataset_traces(values_of) -> list[tuple[str, str, list[float]]]:
    """(name, colour, values) for each dataset, `values_of(dataset)` giving the values; one trace for
    both where they are the same, as the PSNRs are at α = 0.5 (the two un-mixing errors are one
    image with opposite signs), so that a plot neither doubles its boxes nor hides a difference."""
    mnist, cifar = values_of("mnist"), values_of("cifar")
    if all(math.isclose(a, b, rel_tol=1e-5) for a, b in zip(mnist, cifar)):
        return [(BOTH_DATASETS, INDIGO, mnist)]
    return [
        (DATASET_TITLES["mnist"], DATASET_COLOURS["mnist"], mnist),
        (DATASET_TITLES["cifar"], DATASET_COLOURS["cifar"], cifar),
    ]


def _seed_lines(figure: go.Figure, metric: str, vertical: bool = False) -> None:
    """The seed's reported values of `metric` as red lines named in the legend (its two SSIMs, 0.9954
    and 0.9988, are too close for labels on the plot); one line where both datasets report one value."""
    datasets_at = {}
    for dataset, title in DATASET_TITLES.items():
        datasets_at.setdefault(SEED_RESULTS[dataset][SEED_KEYS[metric]], []).append(title)
    add_line = figure.add_vline if vertical else figure.add_hline
    for (value, titles), dash in zip(datasets_at.items(), ("dash", "dot")):
        add_line(
            value, line_dash=dash, line_color=SEED_RED, showlegend=True, name=f"seed {' and '.join(titles)}: {value:g}"
        )


def _score_layout(figure: go.Figure, title: str, height: int, **axes) -> None:
    figure.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
        **axes,
    )


def score_figures(rows: list[dict], metric: str) -> tuple[go.Figure, go.Figure]:
    """A box plot (every pair a point) and overlaid histograms of `metric` per dataset, with the
    seed's reported values as dashed lines."""
    boxes, histograms = go.Figure(), go.Figure()
    for name, colour, values in _dataset_traces(lambda dataset: [row[f"{dataset}_{metric}"] for row in rows]):
        boxes.add_trace(_points_box(name, colour, values))
        histograms.add_trace(go.Histogram(x=values, name=name, opacity=0.6, marker={"color": colour}))
    _seed_lines(boxes, metric)
    _seed_lines(histograms, metric, vertical=True)
    title = METRIC_TITLES[metric]
    _score_layout(boxes, f"{title} per pair", 400, yaxis_title=title)
    _score_layout(histograms, f"{title} histogram", 400, xaxis_title=title, yaxis_title="pairs", barmode="overlay")
    return boxes, histograms


def sweep_figures(points: list, setting: str) -> tuple[go.Figure, go.Figure]:
    """Box plots of PSNR and of SSIM against the swept value (`setting` names it), one box per value
    and dataset, the seed's values dashed."""
    labels = [f"{point.value:g}" for point in points]
    x = [label for label, point in zip(labels, points) for _ in point.scores["mnist"]["psnr"]]
    figures = []
    for metric in ("psnr", "ssim"):
        traces = _dataset_traces(
            lambda dataset, metric=metric: [value for point in points for value in point.scores[dataset][metric]]
        )
        figure = go.Figure([_points_box(name, colour, values, x, size=4) for name, colour, values in traces])
        _seed_lines(figure, metric)
        _score_layout(
            figure,
            f"{METRIC_TITLES[metric]} against {setting}",
            400,
            xaxis_title=setting,
            yaxis_title=METRIC_TITLES[metric],
            boxmode="group",
            xaxis_type="category",
        )
        figures.append(figure)
    return tuple(figures)
