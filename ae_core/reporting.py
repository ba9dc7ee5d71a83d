"""What a trained pair gives back, in the forms people read and save: tables, JSON, CSV, PNG, npz."""
import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .experiment import Experiment, PairResult

SEED_ARCHITECTURE = json.loads(Path(__file__).with_name("seed_architecture.json").read_text())
SEED_RESULTS = {"mnist": SEED_ARCHITECTURE["reported_results"]["MNIST"],
                "cifar": SEED_ARCHITECTURE["reported_results"]["CIFAR-10"]}
ROW_TITLES = {"mnist": "MNIST", "cifar": "CIFAR-10", "mixed": "Mixed input"}
IMAGE_TITLES = {"mnist": "Original MNIST", "cifar": "Original CIFAR-10", "mixed": "Mixed input",
                "reconstruction": "Reconstructed mix", "unmixed_mnist": "Un-mixed MNIST",
                "unmixed_cifar": "Un-mixed CIFAR-10"}


def table_rows(result: PairResult) -> list[dict]:
    """The seed's table (plus the mix itself), this run beside the seed's reported numbers."""
    rows = []
    for key, title in ROW_TITLES.items():
        seed = SEED_RESULTS.get(key, {})
        rows.append({"Dataset": title, "SSIM": result.quality[key].ssim, "PSNR (dB)": result.quality[key].psnr,
                     "Seed SSIM": seed.get("ssim"), "Seed PSNR (dB)": seed.get("psnr_db")})
    return rows


def format_table(result: PairResult) -> str:
    def cell(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"
    lines = [f"{'Dataset':<12} {'SSIM':>7} {'PSNR':>8}   {'seed SSIM':>9} {'seed PSNR':>9}"]
    for row in table_rows(result):
        lines.append(f"{row['Dataset']:<12} {cell(row['SSIM'], 4):>7} {cell(row['PSNR (dB)'], 4):>8}   "
                     f"{cell(row['Seed SSIM'], 4):>9} {cell(row['Seed PSNR (dB)'], 4):>9}")
    return "\n".join(lines)


def report(experiment: Experiment, result: PairResult, epochs: int) -> dict:
    trainer = experiment.trainer
    history = trainer.loss_history
    return {
        "settings": {"source": result.mnist.source, "mnist_index": result.mnist.index,
                     "cifar_index": result.cifar.index, "mnist_label": result.mnist.label_name,
                     "cifar_label": result.cifar.label_name, "epochs": epochs, "lr": trainer.lr,
                     "seed": trainer.seed, "alpha": result.alpha, "device": str(trainer.engine.device)},
        "status": trainer.status, "message": trainer.message, "epochs_done": trainer.epochs_done,
        "metrics": {key: q.as_dict() for key, q in result.quality.items()},
        "seed_reported": SEED_RESULTS,
        "final_loss": history[-1] if history else None,
        "train_seconds": trainer.train_seconds,
        "loss_history": history,
    }


def save_images(path: str | Path, result: PairResult) -> None:
    arrays = {name: image.detach().cpu().numpy().astype(np.float32) for name, image in result.images().items()}
    np.savez(path, **arrays)


def loss_csv(history: list[float]) -> str:
    return "epoch,loss\n" + "".join(f"{epoch},{loss:.9g}\n" for epoch, loss in enumerate(history, 1))


def to_picture(image: torch.Tensor, scale: int = 8) -> Image.Image:
    """Clamped to [0, 1] for the eye and enlarged without smoothing, so pixels stay pixels."""
    array = (image.detach().cpu().clamp(0, 1).numpy().transpose(1, 2, 0) * 255).round().astype(np.uint8)
    picture = Image.fromarray(array)
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


def error_map(original: torch.Tensor, reconstructed: torch.Tensor) -> torch.Tensor:
    """|original - reconstructed| averaged over channels, scaled so the largest error is white."""
    error = (original - reconstructed).abs().mean(0, keepdim=True)
    return (error / error.max().clamp_min(1e-12)).repeat(3, 1, 1)


def image_row_png(result: PairResult, scale: int = 8, gap: int = 8) -> bytes:
    pictures = [to_picture(image, scale) for image in result.images().values()]
    row = Image.new("RGB", (sum(p.width for p in pictures) + gap * (len(pictures) - 1), pictures[0].height), "white")
    for i, picture in enumerate(pictures):
        row.paste(picture, (i * (picture.width + gap), 0))
    buffer = io.BytesIO()
    row.save(buffer, format="PNG")
    return buffer.getvalue()


def downsample(history: list[float], max_points: int = 2000) -> tuple[list[int], list[float]]:
    """Every n-th epoch (1-based) and always the last, so a chart never carries more than max_points."""
    stride = max(1, -(-len(history) // max_points))
    epochs = list(range(1, len(history) + 1, stride))
    if epochs and epochs[-1] != len(history):
        epochs[-1] = len(history)
    return epochs, [history[e - 1] for e in epochs]


def loss_figure(history: list[float], target_epochs: int | None = None, max_points: int = 2000):
    import plotly.graph_objects as go   # only the app draws charts

    epochs, losses = downsample(history, max_points)
    figure = go.Figure(go.Scatter(x=epochs, y=losses, mode="lines", name="MSE loss",
                                  line={"color": "#4f46e5", "width": 2},
                                  hovertemplate="epoch %{x}<br>loss %{y:.3e}<extra></extra>"))
    figure.update_layout(height=320, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Training loss (MSE)",
                         xaxis_title="epoch", yaxis_title="loss", yaxis_type="log", hovermode="x unified")
    if target_epochs:
        figure.update_xaxes(range=[0, target_epochs])
    return figure
