"""Plotly figures for the app: loss curves (one run, or a study's median and spread), scores against
epoch, and score plots."""

import math

import numpy as np

# Plotly imports pandas lazily on first use; two sessions drawing their first chart at once raced on
# that import ("partially initialized module 'pandas'"), so it happens here, under Python's import lock.
import pandas  # noqa: F401
import plotly.graph_objects as go

from .metrics import Quality
from .reporting import DATASET_TITLES, METRIC_TITLES, SEED_KEYS, SEED_RESULTS

INDIGO, INDIGO_BAND, SEED_RED, MARKER_GREY = "#4f46e5", "rgba(79, 70, 229, 0.18)", "#dc2626", "#6b7280"
DATASET_COLOURS = {"mnist": INDIGO, "cifar": "#0d9488"}
COMPARED_COLOURS = (INDIGO, "#0d9488", "#d97706", "#db2777")  # the Runs page compares four at most
DATASET_BANDS = {INDIGO: INDIGO_BAND, "#0d9488": "rgba(13, 148, 136, 0.18)"}
BOTH_DATASETS = "MNIST and CIFAR-10"
BAND = "25th to 75th percentile"  # a study's loss band, one legend entry
# Under the plot at the figure's foot, where plotly.js makes room for it: placed on the plot's own
# scale (y -0.2), a legend sat on the epoch axis's title in a 200-pixel-wide column.
LEGEND_BELOW = {"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"}
# Mix & Train's two charts, redrawn live, start with margins their labels fit: from 10 pixels,
# plotly.js's automatic margins measured the labels, widened the margins and drew each chart again.
# In a bare page (plotly.js, 20 draws a run, 3 runs) the loss chart took 9 to 11 ms a draw against 24
# to 33, the score chart 14 to 16 against 33 to 37. A label that needs more room still gets it.
PAIR_LOSS_MARGIN = {"l": 90, "r": 30, "t": 30, "b": 70}
PAIR_SCORE_MARGIN = {"l": 70, "r": 30, "t": 30, "b": 165}
# The score chart's legend below its epoch axis, at a fixed distance since its plot's height is fixed
# by the margins above; anchored to the figure's foot instead (LEGEND_BELOW), plotly.js adds its height
# to the margin after measuring it, and so draws again.
SCORE_LEGEND = {"orientation": "h", "yref": "paper", "y": -0.27, "yanchor": "top"}
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


def _across(value: float, vertical: bool = False, axis: str = "", **style) -> dict:
    """A line shape at `value` across the whole subplot of axes x`axis` and y`axis` ("" or "2")."""
    if vertical:
        ends = {"x0": value, "x1": value, "xref": f"x{axis}", "y0": 0, "y1": 1, "yref": f"y{axis} domain"}
    else:
        ends = {"x0": 0, "x1": 1, "xref": f"x{axis} domain", "y0": value, "y1": value, "yref": f"y{axis}"}
    return {"type": "line", **ends, **style}


def _marker_shapes(epoch: int | None, axes: tuple[str, ...] = ("",)) -> list[dict]:
    """A grey line at the epoch a timeline slider shows, on each of the subplots `axes`."""
    line = {"color": MARKER_GREY, "width": 1.5}
    return [] if epoch is None else [_across(epoch, vertical=True, axis=axis, line=line) for axis in axes]


# The live view's two figures are redrawn about twice a second while a run trains, so they are built
# as one dict: 1.0 ms for the score figure's skeleton against 5 to 6 for make_subplots and its lines
# added one by one (an ad-hoc timing, 20 builds each), 19 and 7 ms a draw for the two figures before.
def loss_figure(
    history: list[float], target_epochs: int | None = None, max_points: int = 2000, marker: int | None = None
) -> go.Figure:
    epochs = sampled_epochs(len(history), max_points)
    trace = {
        "type": "scatter",
        "x": epochs,
        "y": [history[e - 1] for e in epochs],
        "mode": "lines",
        "name": "MSE loss",
        "line": {"color": INDIGO, "width": 2},
        "hovertemplate": "epoch %{x}<br>loss %{y:.3e}<extra></extra>",
    }
    layout = {
        "title": {"text": "Training loss (MSE)"},
        "height": LOSS_LAYOUT["height"],
        "margin": PAIR_LOSS_MARGIN,
        "hovermode": LOSS_LAYOUT["hovermode"],
        "xaxis": {"title": {"text": "epoch"}, **({"range": [0, target_epochs]} if target_epochs else {})},
        # no losses yet (the chart before a training): no made-up scale either
        "yaxis": {"title": {"text": "loss"}, "type": "log", "showticklabels": bool(history)},
        "shapes": _marker_shapes(marker),
    }
    return go.Figure({"data": [trace], "layout": layout})


def _sampled_rows(losses, epochs: list[int]) -> np.ndarray:
    """The rows of (epochs, pairs) losses (a tensor or an array) of the given epochs, in float64."""
    return np.asarray(losses, dtype=np.float64)[[epoch - 1 for epoch in epochs]]


def _band_traces(epochs: list[int], rows: np.ndarray, name: str, colour: str, number: str) -> list[go.Scatter]:
    """The median of each row of `rows` (epochs, pairs) as a line in the band between the 25th and
    75th percentiles; `number` formats a value in the hover text."""
    low, median, high = np.nanquantile(rows, [0.25, 0.5, 0.75], axis=1).tolist()
    band = f"{name}: {BAND}" if name else BAND
    return [
        # The band's two edges are one legend entry (its upper edge alone has nothing to show there)
        # and one click hides both.
        go.Scatter(
            x=epochs,
            y=high,
            mode="lines",
            line={"width": 0},
            name=band,
            legendgroup=band,
            showlegend=False,
            hovertemplate=f"75th percentile %{{y:{number}}}<extra></extra>",
        ),
        go.Scatter(
            x=epochs,
            y=low,
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor=DATASET_BANDS[colour],
            name=band,
            legendgroup=band,
            hovertemplate=f"25th percentile %{{y:{number}}}<extra></extra>",
        ),
        go.Scatter(
            x=epochs,
            y=median,
            mode="lines",
            line={"color": colour, "width": 2},
            name=f"{name} median" if name else "median",
            hovertemplate=f"%{{y:{number}}}",
        ),
    ]


def study_loss_figure(losses, target_epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    """Median loss across pairs (losses: (epochs, pairs)) with the band between the 25th and 75th percentiles."""
    epochs = sampled_epochs(len(losses), max_points)
    figure = go.Figure(_band_traces(epochs, _sampled_rows(losses, epochs), "", INDIGO, ".3e"))
    return _loss_layout(figure, "Training loss across pairs (median, interquartile band)", target_epochs)


def study_psnr_figure(losses, alpha: float, target_epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    """Each un-mixed image's PSNR across pairs (median, interquartile band) against epoch, from the
    losses: un-mixed MNIST is off its original by (reconstruction - mix) / α, so its mean squared
    error is loss / α² and its PSNR 10 log10(α² / loss) (CIFAR-10's: (1 - α)² in place of α²); the
    loss of epoch e is that of the network after e - 1 steps."""
    epochs = sampled_epochs(len(losses), max_points)
    rows = _sampled_rows(losses, epochs)
    share = {"mnist": alpha, "cifar": 1 - alpha}
    traces = _dataset_traces(lambda dataset: [share[dataset]])  # one band where the two are equal
    figure = go.Figure()
    for name, colour, (dataset_share,) in traces:
        figure.add_traces(_band_traces(epochs, 10 * np.log10(dataset_share**2 / rows), name, colour, ".2f"))
    _seed_lines(figure, "psnr")
    _loss_layout(figure, "PSNR of the un-mixed images across pairs, from the loss", target_epochs)
    return figure.update_layout(yaxis_type="linear", yaxis_title=METRIC_TITLES["psnr"], legend=LEGEND_BELOW)


def compare_figures(curves: dict[str, tuple[object, float]], max_points: int = 2000) -> tuple[go.Figure, go.Figure]:
    """Runs overlaid: {name: (losses (epochs, pairs), alpha)} -> the loss against epoch, and the
    un-mixed MNIST's PSNR from it (study_psnr_figure's formula); a study's line is its median."""
    loss, psnr = go.Figure(), go.Figure()
    for (name, (losses, alpha)), colour in zip(curves.items(), COMPARED_COLOURS):
        epochs = sampled_epochs(len(losses), max_points)
        median = np.nanmedian(_sampled_rows(losses, epochs), axis=1)
        for figure, values, number in ((loss, median, ".3e"), (psnr, 10 * np.log10(alpha**2 / median), ".2f")):
            figure.add_scatter(
                x=epochs,
                y=values.tolist(),
                mode="lines",
                name=name,
                line={"color": colour, "width": 2},
                hovertemplate=f"%{{y:{number}}}<extra>{name}</extra>",
            )
    _loss_layout(loss, "Training loss (MSE; a study's median)", None)
    _loss_layout(psnr, "PSNR of the un-mixed MNIST, from the loss", None)
    _seed_lines(psnr, "psnr")
    for figure in (loss, psnr):
        figure.update_layout(legend=LEGEND_BELOW, height=360)
    psnr.update_layout(yaxis_type="linear", yaxis_title=METRIC_TITLES["psnr"])
    return loss, psnr


def score_figure(
    epochs: list[int], qualities: list[dict[str, Quality]], target_epochs: int | None = None, marker: int | None = None
) -> go.Figure:
    """PSNR (above) and SSIM (below) of each un-mixed image against epoch on a log axis, from
    `qualities` (a PairResult's `quality` at each epoch), the seed's values as red lines."""
    shown = [(epoch, quality) for epoch, quality in zip(epochs, qualities) if epoch > 0]  # a log axis has no 0
    traces, shapes, axes = [], [], ("", "2")  # the upper subplot's axes are x and y, the lower's x2 and y2
    for axis, metric in zip(axes, ("psnr", "ssim")):
        for name, colour, values in _dataset_traces(
            lambda dataset, metric=metric: [getattr(quality[dataset], metric) for _, quality in shown]
        ):
            traces.append(
                {
                    "type": "scatter",
                    "x": [epoch for epoch, _ in shown],
                    "y": values,
                    "xaxis": f"x{axis}",
                    "yaxis": f"y{axis}",
                    "mode": "lines+markers",
                    "name": name,
                    "legendgroup": name,
                    "showlegend": not axis or name != BOTH_DATASETS,
                    "line": {"color": colour, "width": 2},
                    "marker": {"size": 4},
                    "hovertemplate": f"epoch %{{x}}<br>{METRIC_TITLES[metric]} %{{y:.4g}}<extra>{name}</extra>",
                }
            )
        shapes += _seed_line_shapes(metric, axis=axis)
    epoch_axis = {"type": "log", **({"range": [0, math.log10(target_epochs)]} if target_epochs else {})}
    layout = {
        "title": {"text": "Un-mixed images' scores"},
        "height": LOSS_LAYOUT["height"] + 80,
        "margin": PAIR_SCORE_MARGIN,
        "legend": SCORE_LEGEND,
        "hovermode": "closest",
        # make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06), written out
        "xaxis": {**epoch_axis, "anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        "xaxis2": {**epoch_axis, "anchor": "y2", "domain": [0, 1], "title": {"text": "epoch"}},
        "yaxis": {"anchor": "x", "domain": [0.53, 1], "title": {"text": METRIC_TITLES["psnr"]}},
        "yaxis2": {"anchor": "x2", "domain": [0, 0.47], "title": {"text": METRIC_TITLES["ssim"]}},
        "shapes": shapes + _marker_shapes(marker, axes),
    }
    return go.Figure({"data": traces, "layout": layout})


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


def _seed_line_shapes(metric: str, vertical: bool = False, standing: dict | None = None, axis: str = "") -> list[dict]:
    """The seed's reported values of `metric` as red lines across the subplot of axes x`axis` and
    y`axis`, named in the legend (its two SSIMs, 0.9954 and 0.9988, are too close for labels on the
    plot); one line where both datasets report one value. With a study's `standing`
    (reporting.seed_standing) each name says the value's percentile there."""
    datasets_at = {}
    for dataset, title in DATASET_TITLES.items():
        datasets_at.setdefault(SEED_RESULTS[dataset][SEED_KEYS[metric]], []).append((dataset, title))
    shapes = []
    for (value, datasets), dash in zip(datasets_at.items(), ("dash", "dot")):
        name = f"seed {' and '.join(title for _, title in datasets)}: {value:g}"
        if standing is not None:
            percentiles = " and ".join(
                f"{standing[f'{dataset}_{metric}']['percentile']:.1f}" for dataset, _ in datasets
            )
            name += f", percentile {percentiles} here"
        line = {"dash": dash, "color": SEED_RED}
        shapes.append(_across(value, vertical, axis, line=line, showlegend=True, name=name))
    return shapes


def _seed_lines(figure: go.Figure, metric: str, vertical: bool = False, standing: dict | None = None) -> None:
    for shape in _seed_line_shapes(metric, vertical, standing):
        figure.add_shape(shape)


def _score_layout(figure: go.Figure, title: str, height: int, **axes) -> None:
    figure.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend=LEGEND_BELOW,
        **axes,
    )


def score_figures(rows: list[dict], metric: str, standing: dict | None = None) -> tuple[go.Figure, go.Figure]:
    """A box plot (every pair a point) and overlaid histograms of `metric` per dataset, with the
    seed's reported values as dashed lines (named with their percentiles in a study's `standing`)."""
    boxes, histograms = go.Figure(), go.Figure()
    for name, colour, values in _dataset_traces(lambda dataset: [row[f"{dataset}_{metric}"] for row in rows]):
        boxes.add_trace(_points_box(name, colour, values))
        histograms.add_trace(go.Histogram(x=values, name=name, opacity=0.6, marker={"color": colour}))
    _seed_lines(boxes, metric, standing=standing)
    _seed_lines(histograms, metric, vertical=True, standing=standing)
    title = METRIC_TITLES[metric]
    _score_layout(boxes, f"{title} per pair", 400, yaxis_title=title)
    _score_layout(histograms, f"{title} histogram", 400, xaxis_title=title, yaxis_title="pairs", barmode="overlay")
    return boxes, histograms


def sweep_figures(points: list, setting: str, seed_value: float | None = None) -> tuple[go.Figure, go.Figure]:
    """Box plots of PSNR and of SSIM against the swept value (`setting` names it), one box per value
    and dataset, the seed's values dashed and, where swept, the seed's own value of the setting
    marked."""
    labels = [f"{point.value:g}" for point in points]
    x = [label for label, point in zip(labels, points) for _ in point.scores["mnist"]["psnr"]]
    figures = []
    for metric in ("psnr", "ssim"):
        traces = _dataset_traces(
            lambda dataset, metric=metric: [value for point in points for value in point.scores[dataset][metric]]
        )
        figure = go.Figure([_points_box(name, colour, values, x, size=4) for name, colour, values in traces])
        _seed_lines(figure, metric)
        if seed_value is not None and f"{seed_value:g}" in labels:
            figure.add_vline(
                labels.index(f"{seed_value:g}"),
                line_color=MARKER_GREY,
                line_dash="dot",
                showlegend=True,
                name=f"the seed's {setting}: {seed_value:g}",
            )
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


def probe_figure(trained_psnr: list[float], unseen_medians: list[float]) -> go.Figure:
    """Each network's un-mixed MNIST PSNR on the pair it trained on beside its median on pairs it
    never saw, every network a point, with the seed's PSNR."""
    figure = go.Figure(
        [
            _points_box("the pair it trained on", INDIGO, trained_psnr),
            _points_box("pairs it never saw (its median)", DATASET_COLOURS["cifar"], unseen_medians),
        ]
    )
    _seed_lines(figure, "psnr")
    _score_layout(figure, "Un-mixed MNIST PSNR of each network", 400, yaxis_title=METRIC_TITLES["psnr"])
    return figure
