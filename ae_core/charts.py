"""Plotly figures for the app: loss curves (one run, or a study's median and spread) and score plots."""
# Plotly imports pandas lazily on first use; two sessions drawing their first chart at once raced on
# that import ("partially initialized module 'pandas'"), so it happens here, under Python's import lock.
import pandas  # noqa: F401
import plotly.graph_objects as go
import torch

from .reporting import DATASET_TITLES, METRIC_TITLES, SEED_KEYS, SEED_RESULTS

INDIGO, INDIGO_BAND, SEED_RED = "#4f46e5", "rgba(79, 70, 229, 0.18)", "#dc2626"
DATASET_COLOURS = {"mnist": INDIGO, "cifar": "#0d9488"}
LOSS_LAYOUT = {"height": 320, "margin": {"l": 10, "r": 10, "t": 30, "b": 10}, "xaxis_title": "epoch",
               "yaxis_title": "loss", "yaxis_type": "log", "hovermode": "x unified"}


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
    figure = go.Figure(go.Scatter(x=epochs, y=[history[e - 1] for e in epochs], mode="lines", name="MSE loss",
                                  line={"color": INDIGO, "width": 2},
                                  hovertemplate="epoch %{x}<br>loss %{y:.3e}<extra></extra>"))
    return _loss_layout(figure, "Training loss (MSE)", target_epochs)


def study_loss_figure(losses: torch.Tensor, target_epochs: int | None = None, max_points: int = 2000) -> go.Figure:
    """Median loss across pairs with the band between the 25th and 75th percentiles."""
    epochs = sampled_epochs(len(losses), max_points)
    rows = losses[[e - 1 for e in epochs]]
    low, median, high = torch.nanquantile(rows, torch.tensor([0.25, 0.5, 0.75]), dim=1).tolist()
    figure = go.Figure([
        go.Scatter(x=epochs, y=high, mode="lines", line={"width": 0}, name="75th percentile",
                   hovertemplate="%{y:.3e}"),
        go.Scatter(x=epochs, y=low, mode="lines", line={"width": 0}, fill="tonexty", fillcolor=INDIGO_BAND,
                   name="25th percentile", hovertemplate="%{y:.3e}"),
        go.Scatter(x=epochs, y=median, mode="lines", line={"color": INDIGO, "width": 2}, name="median",
                   hovertemplate="%{y:.3e}"),
    ])
    return _loss_layout(figure, "Training loss across pairs (median, interquartile band)", target_epochs)


def _points_box(name: str, colour: str, y: list[float], x: list[str] | None = None, size: int = 5) -> go.Box:
    """A box with every value drawn as a point on it."""
    return go.Box(x=x, y=y, name=name, boxpoints="all", jitter=0.4, pointpos=0, marker={"color": colour, "size": size},
                  line={"color": colour})


def score_figures(rows: list[dict], metric: str) -> tuple[go.Figure, go.Figure]:
    """A box plot (every pair a point) and overlaid histograms of `metric` for both datasets, each
    with the seed's reported value as a dashed line."""
    boxes, histograms = go.Figure(), go.Figure()
    for dataset, colour in DATASET_COLOURS.items():
        values = [row[f"{dataset}_{metric}"] for row in rows]
        name = DATASET_TITLES[dataset]
        boxes.add_trace(_points_box(name, colour, values))
        histograms.add_trace(go.Histogram(x=values, name=name, opacity=0.6, marker={"color": colour}))
    title = METRIC_TITLES[metric]
    for dataset, position in (("mnist", "top left"), ("cifar", "bottom right")):
        seed = SEED_RESULTS[dataset][SEED_KEYS[metric]]
        label = f"seed {DATASET_TITLES[dataset]} {seed:g}"
        boxes.add_hline(y=seed, line_dash="dash", line_color=SEED_RED, annotation_text=label,
                        annotation_position=position)
        histograms.add_vline(x=seed, line_dash="dash", line_color=SEED_RED, annotation_text=label,
                             annotation_position=position)
    margin = {"l": 10, "r": 10, "t": 40, "b": 10}
    boxes.update_layout(title=f"{title} per pair", yaxis_title=title, height=360, margin=margin, showlegend=False)
    histograms.update_layout(title=f"{title} histogram", xaxis_title=title, yaxis_title="pairs", height=360,
                             margin=margin, barmode="overlay")
    return boxes, histograms


def sweep_figures(points: list, setting: str) -> tuple[go.Figure, go.Figure]:
    """Box plots of PSNR and of SSIM against the swept value (`setting` names it), one box per value
    (and dataset, for SSIM; the two datasets' PSNRs are equal), the seed's values dashed."""
    labels = [f"{point.value:g}" for point in points]

    def boxes(dataset: str, metric: str, name: str) -> go.Box:
        x = [label for label, point in zip(labels, points) for _ in point.scores[dataset][metric]]
        y = [value for point in points for value in point.scores[dataset][metric]]
        return _points_box(name, DATASET_COLOURS[dataset], y, x, size=4)

    psnr = go.Figure(boxes("mnist", "psnr", "both datasets"))
    ssim = go.Figure([boxes(dataset, "ssim", DATASET_TITLES[dataset]) for dataset in DATASET_COLOURS])
    # The two seed SSIMs (0.9954, 0.9988) are too close for labels on the plot: the legend names them.
    for dataset, dash in (("mnist", "dash"), ("cifar", "dot")):
        seed = SEED_RESULTS[dataset][SEED_KEYS["ssim"]]
        ssim.add_hline(y=seed, line_dash=dash, line_color=SEED_RED, showlegend=True,
                       name=f"seed {DATASET_TITLES[dataset]} {seed:g}")
    seed_psnr = SEED_RESULTS["mnist"][SEED_KEYS["psnr"]]
    psnr.add_hline(y=seed_psnr, line_dash="dash", line_color=SEED_RED, annotation_text=f"seed {seed_psnr:g} dB")
    margin = {"l": 10, "r": 10, "t": 40, "b": 10}
    for figure, metric in ((psnr, "psnr"), (ssim, "ssim")):
        figure.update_layout(title=f"{METRIC_TITLES[metric]} against {setting}", xaxis_title=setting,
                             yaxis_title=METRIC_TITLES[metric], height=400, margin=margin, boxmode="group",
                             xaxis_type="category", legend={"orientation": "h", "y": -0.25})
    return psnr, ssim
