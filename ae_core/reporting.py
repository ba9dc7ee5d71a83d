"""What a trained pair gives back, in the forms people read and save: tables, JSON, CSV, PNG, npz."""

import io
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .experiment import Experiment, PairResult
from .probe import ALONE, OTHER_ALPHA, TRAINED, UNSEEN
from .progress import STOPPED
from .study import SCORES, Study, score_lists, summarize
from .sweep import SWEEPABLE, Sweep

SEED_ARCHITECTURE = json.loads(Path(__file__).with_name("seed_architecture.json").read_text())
SEED_RESULTS = {
    "mnist": SEED_ARCHITECTURE["reported_results"]["MNIST"],
    "cifar": SEED_ARCHITECTURE["reported_results"]["CIFAR-10"],
}
ROW_TITLES = {"mnist": "MNIST", "cifar": "CIFAR-10", "mixed": "Mixed input"}
IMAGE_TITLES = {
    "mnist": "Original MNIST",
    "cifar": "Original CIFAR-10",
    "mixed": "Mixed input",
    "reconstruction": "Reconstructed mix",
    "unmixed_mnist": "Un-mixed MNIST",
    "unmixed_cifar": "Un-mixed CIFAR-10",
}


def table_rows(result: PairResult) -> list[dict]:
    """The seed's table (plus the mix itself), this run beside the seed's reported numbers."""
    rows = []
    for key, title in ROW_TITLES.items():
        seed = SEED_RESULTS.get(key, {})
        rows.append(
            {
                "Dataset": title,
                "SSIM": result.quality[key].ssim,
                "SSIM (Gaussian)": result.quality[key].ssim_gaussian,
                "PSNR (dB)": result.quality[key].psnr,
                "Seed SSIM": seed.get("ssim"),
                "Seed PSNR (dB)": seed.get("psnr_db"),
            }
        )
    return rows


def format_table(result: PairResult) -> str:
    def cell(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [f"{'Dataset':<12} {'SSIM':>7} {'SSIM G':>7} {'PSNR':>8}   {'seed SSIM':>9} {'seed PSNR':>9}"]
    for row in table_rows(result):
        lines.append(
            f"{row['Dataset']:<12} {cell(row['SSIM'], 4):>7} {cell(row['SSIM (Gaussian)'], 4):>7} "
            f"{cell(row['PSNR (dB)'], 4):>8}   "
            f"{cell(row['Seed SSIM'], 4):>9} {cell(row['Seed PSNR (dB)'], 4):>9}"
        )
    return "\n".join(lines)


def report(experiment: Experiment, result: PairResult, epochs: int) -> dict:
    trainer = experiment.trainer
    history = trainer.loss_history
    return {
        "settings": {
            "source": result.mnist.source,
            "mnist_index": result.mnist.index,
            "cifar_index": result.cifar.index,
            "mnist_label": result.mnist.label_name,
            "cifar_label": result.cifar.label_name,
            "epochs": epochs,
            "lr": trainer.lr,
            "seed": trainer.seed,
            "alpha": result.alpha,
            "device": str(trainer.engine.device),
            "engine": trainer.engine.name,
            "architecture": trainer.architecture.as_dict(),
        },
        "status": trainer.status,
        "stopped": trainer.status == STOPPED,  # by a Stop or Ctrl-C, short of `epochs`
        "message": trainer.message,
        "epochs_done": trainer.epochs_done,
        "metrics": {key: q.as_dict() for key, q in result.quality.items()},
        "seed_reported": SEED_RESULTS,
        "final_loss": history[-1] if history else None,
        "train_seconds": trainer.train_seconds,
        "loss_history": history,
    }


def save_images(path: str | Path, result: PairResult) -> None:
    arrays = {name: np.asarray(image, dtype=np.float32) for name, image in result.images().items()}
    np.savez(path, **arrays)


def loss_csv(history: list[float]) -> str:
    return "epoch,loss\n" + "".join(f"{epoch},{loss:.9g}\n" for epoch, loss in enumerate(history, 1))


def to_picture(image, scale: int = 8) -> Image.Image:
    """A (3, H, W) image (an array or a CPU tensor) clamped to [0, 1] for the eye and enlarged without
    smoothing, so pixels stay pixels; a diverged network's NaNs are black."""
    array = (np.clip(np.nan_to_num(np.asarray(image), nan=0.0), 0, 1).transpose(1, 2, 0) * 255).round()
    array = array.astype(np.uint8)
    picture = Image.fromarray(array)
    return picture.resize((picture.width * scale, picture.height * scale), Image.Resampling.NEAREST)


def error_map(original: np.ndarray, reconstructed: np.ndarray) -> np.ndarray:
    """|original - reconstructed| averaged over channels, scaled so the largest error is white."""
    error = np.abs(np.asarray(original) - np.asarray(reconstructed)).mean(0, keepdims=True)
    return np.repeat(error / max(float(error.max()), 1e-12), 3, axis=0)


def _image_row(result: PairResult, scale: int, gap: int, top: int = 0) -> Image.Image:
    """The six images left to right on white, `top` pixels of white above them."""
    pictures = [to_picture(image, scale) for image in result.images().values()]
    width = sum(p.width for p in pictures) + gap * (len(pictures) - 1)
    row = Image.new("RGB", (width, top + pictures[0].height), "white")
    for i, picture in enumerate(pictures):
        row.paste(picture, (i * (picture.width + gap), top))
    return row


def image_row_png(result: PairResult, scale: int = 8, gap: int = 8) -> bytes:
    buffer = io.BytesIO()
    _image_row(result, scale, gap).save(buffer, format="PNG")
    return buffer.getvalue()


def timeline_gif(frames: list[tuple[int, PairResult]], scale: int = 4, gap: int = 6) -> bytes:
    """An animated GIF of (epoch, result) frames, each the six images under "epoch N" and the un-mixed
    images' PSNR; the last frame stays three seconds, the others a fifth of one."""
    font = ImageFont.load_default(size=14)
    pictures = []
    for epoch, result in frames:
        picture = _image_row(result, scale, gap, top=22)
        caption = f"epoch {epoch:,}   PSNR MNIST {result.quality['mnist'].psnr:.2f} dB, CIFAR-10 " + (
            f"{result.quality['cifar'].psnr:.2f} dB"
        )
        ImageDraw.Draw(picture).text((2, 3), caption, fill="black", font=font)
        pictures.append(picture)
    buffer = io.BytesIO()
    durations = [200] * (len(pictures) - 1) + [3000]
    pictures[0].save(buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0)
    return buffer.getvalue()


@dataclass(frozen=True)
class FileToSave:
    """A file the app offers and `runs export` writes, made only when asked for."""

    label: str
    name: str
    mime: str
    make: Callable[[], bytes | str]


def frame_results(experiment: Experiment) -> list[tuple[int, PairResult]]:
    """(epoch, results) at each frame of the experiment's timeline."""
    return [(frame.epoch, experiment.result(frame.outputs[0])) for frame in experiment.trainer.timeline.frames]


def weights_file(trainer) -> bytes:
    """The first network's state_dict in torch.save's format, as `Autoencoder.load_state_dict` takes it
    (made through the trainer's `call`: for the app's trainers, in a child process with torch)."""
    import torch

    buffer = io.BytesIO()
    torch.save(trainer.state_dict(), buffer)
    return buffer.getvalue()


def pair_files(
    experiment: Experiment,
    result: PairResult,
    target_epochs: int,
    scored_frames: Callable[[], list[tuple[int, PairResult]]] | None = None,
) -> list[FileToSave]:
    """A run's images, timeline, losses, report and weights; `scored_frames` gives the timeline's
    frames scored, where the caller keeps them scored already."""
    trainer = experiment.trainer
    return [
        FileToSave("Images (PNG)", "images.png", "image/png", lambda: image_row_png(result)),
        FileToSave(
            "Timeline (GIF)",
            "timeline.gif",
            "image/gif",
            lambda: timeline_gif((scored_frames or (lambda: frame_results(experiment)))()),
        ),
        FileToSave("Loss history (CSV)", "loss.csv", "text/csv", lambda: loss_csv(trainer.loss_history)),
        FileToSave(
            "Report (JSON)",
            "report.json",
            "application/json",
            lambda: json.dumps(report(experiment, result, target_epochs), indent=1),
        ),
        FileToSave(
            "Weights (.pt)", "autoencoder_state_dict.pt", "application/octet-stream", lambda: trainer.call(weights_file)
        ),
    ]


# -- studies -------------------------------------------------------------------------------------------
DATASET_TITLES = {"mnist": "MNIST", "cifar": "CIFAR-10"}
METRIC_TITLES = {"psnr": "PSNR (dB)", "ssim": "SSIM", "ssim_gaussian": "SSIM (Gaussian)"}
# The seed reports one SSIM without saying which: both are set beside it.
SEED_KEYS = {"psnr": "psnr_db", "ssim": "ssim", "ssim_gaussian": "ssim"}


def study_rows(summary: dict) -> list[dict]:
    """The seed's table as distributions: one row per dataset and metric, the seed's value beside."""
    return [
        {
            "Dataset": DATASET_TITLES[dataset],
            "Metric": METRIC_TITLES[metric],
            **{name.capitalize(): value for name, value in summary[dataset][metric].items()},
            "Seed": SEED_RESULTS[dataset][SEED_KEYS[metric]],
        }
        for dataset, metric in SCORES
    ]


def seed_standing(results: list[PairResult]) -> dict:
    """Where each of the seed's numbers falls among the pairs: {"mnist_psnr": {"seed", "percentile"
    (the share of pairs at or below it, in %), "reaching" (the share at or above it, in %)}, ...},
    and "all_reaching": the % of pairs that reach every one of the seed's PSNRs and SSIMs (with the
    headline SSIM), "all_reaching_gaussian" (with the Gaussian one)."""
    lists = score_lists(results)
    pairs = len(results)
    standing: dict = {}
    for dataset, metric in SCORES:
        seed, values = SEED_RESULTS[dataset][SEED_KEYS[metric]], lists[dataset][metric]
        standing[f"{dataset}_{metric}"] = {
            "seed": seed,
            "percentile": 100 * sum(value <= seed for value in values) / pairs,
            "reaching": 100 * sum(value >= seed for value in values) / pairs,
        }
    for name, ssim in (("all_reaching", "ssim"), ("all_reaching_gaussian", "ssim_gaussian")):
        reaching = [
            all(
                lists[dataset][metric][k] >= SEED_RESULTS[dataset][SEED_KEYS[metric]]
                for dataset in DATASET_TITLES
                for metric in ("psnr", ssim)
            )
            for k in range(pairs)
        ]
        standing[name] = 100 * sum(reaching) / pairs
    return standing


def seed_standing_rows(standing: dict) -> list[dict]:
    """`seed_standing` as a table: one row per seed number, then the share reaching them all."""
    rows = [
        {
            "The seed's": f"{DATASET_TITLES[dataset]} {METRIC_TITLES[metric]}",
            "Value": standing[f"{dataset}_{metric}"]["seed"],
            "Percentile here": standing[f"{dataset}_{metric}"]["percentile"],
            "Pairs reaching it (%)": standing[f"{dataset}_{metric}"]["reaching"],
        }
        for dataset, metric in SCORES
    ]
    for name, title in (
        ("all_reaching", "every number (SSIM)"),
        ("all_reaching_gaussian", "every number (SSIM Gaussian)"),
    ):
        rows.append(
            {"The seed's": title, "Value": None, "Percentile here": None, "Pairs reaching it (%)": standing[name]}
        )
    return rows


def format_seed_standing(standing: dict) -> str:
    lines = [f"{'Where the seed falls':<28} {'seed':>7} {'percentile':>12} {'pairs reaching it':>18}"]
    for row in seed_standing_rows(standing):
        value = "" if row["Value"] is None else f"{row['Value']:.4f}"
        percentile = "" if row["Percentile here"] is None else f"{row['Percentile here']:.1f}"
        number, reaching = row["The seed's"], row["Pairs reaching it (%)"]
        lines.append(f"{number:<28} {value:>7} {percentile:>12} {reaching:>17.1f}%")
    return "\n".join(lines)


def format_study_table(summary: dict, pairs: int) -> str:
    lines = [f"{pairs} pairs      {'mean ± std':>17} {'median':>8} {'min':>8} {'max':>8}   {'seed':>7}"]
    for row in study_rows(summary):
        digits = 2 if row["Metric"].startswith("PSNR") else 4
        metric = {"SSIM (Gaussian)": "SSIM G"}.get(row["Metric"], row["Metric"].split()[0])
        lines.append(
            f"{row['Dataset']:<8} {metric:<6} {row['Mean']:>8.{digits}f} ± "
            f"{row['Std']:<6.{digits}f} {row['Median']:>8.{digits}f} {row['Min']:>8.{digits}f} "
            f"{row['Max']:>8.{digits}f}   {row['Seed']:>7.{digits}f}"
        )
    return "\n".join(lines)


def pair_rows(study: Study, results: list[PairResult]) -> list[dict]:
    """One flat row per pair: indices, labels, scores and, for a diverged pair, the epoch it kept."""
    return [
        {
            "mnist_index": result.mnist.index,
            "cifar_index": result.cifar.index,
            "mnist_label": result.mnist.label_name,
            "cifar_label": result.cifar.label_name,
            **{f"{dataset}_{metric}": getattr(result.quality[dataset], metric) for dataset, metric in SCORES},
            "final_loss": float(study.trainer.losses[-1, k]) if study.trainer.epochs_done else None,
            "diverged_keeps_epoch": study.trainer.diverged.get(k),
        }
        for k, result in enumerate(results)
    ]


def study_csv(rows: list[dict]) -> str:
    header = list(rows[0])
    return (
        ",".join(header)
        + "\n"
        + "".join(
            ",".join(
                "" if row[key] is None else f"{row[key]:.9g}" if isinstance(row[key], float) else str(row[key])
                for key in header
            )
            + "\n"
            for row in rows
        )
    )


def study_report(study: Study, results: list[PairResult], summary: dict, epochs: int) -> dict:
    trainer = study.trainer
    return {
        "settings": {
            "source": study.source,
            "pairs": len(results),
            "epochs": epochs,
            "lr": trainer.lr,
            "seed": study.seed,
            "alpha": study.alpha,
            "device": str(trainer.engine.device),
            "engine": trainer.engine.name,
            "architecture": trainer.architecture.as_dict(),
        },
        "status": trainer.status,
        "stopped": trainer.status == STOPPED,
        "message": trainer.message,
        "epochs_done": trainer.epochs_done,
        "train_seconds": trainer.train_seconds,
        "pairs": [
            {
                "mnist_index": result.mnist.index,
                "cifar_index": result.cifar.index,
                **{key: result.quality[key].as_dict() for key in ("mnist", "cifar", "mixed")},
                "diverged_keeps_epoch": trainer.diverged.get(k),
            }
            for k, result in enumerate(results)
        ],
        "summary": summary,
        "seed_reported": SEED_RESULTS,
        "seed_standing": seed_standing(results),
    }


def sweep_rows(sweep: Sweep) -> list[dict]:
    """One row per value done: each dataset's PSNR (mean, std, median) and SSIM mean over the pairs.
    The two PSNRs are equal only at alpha = 0.5, so each dataset has its own."""
    rows = []
    for point in sweep.points:
        row = {SWEEPABLE[sweep.over].capitalize(): point.value}
        for dataset, title in DATASET_TITLES.items():
            psnr = point.summary[dataset]["psnr"]
            row |= {
                f"PSNR {title} mean (dB)": psnr["mean"],
                f"PSNR {title} std": psnr["std"],
                f"PSNR {title} median": psnr["median"],
            }
        for dataset, title in DATASET_TITLES.items():
            row[f"SSIM {title} mean"] = point.summary[dataset]["ssim"]["mean"]
        rows.append(row | {"Diverged": point.diverged})
    return rows


def format_sweep_table(sweep: Sweep) -> str:
    lines = [
        f"{SWEEPABLE[sweep.over]:>14}"
        + "".join(f" {f'PSNR {title} mean ± std, median':>34}" for title in DATASET_TITLES.values())
        + "".join(f" {f'SSIM {title}':>13}" for title in DATASET_TITLES.values())
        + f" {'diverged':>8}"
    ]
    for point in sweep.points:
        psnr = [point.summary[dataset]["psnr"] for dataset in DATASET_TITLES]
        ssim = [point.summary[dataset]["ssim"]["mean"] for dataset in DATASET_TITLES]
        cells = [f"{p['mean']:.2f} ± {p['std']:.2f}, {p['median']:.2f}" for p in psnr]
        lines.append(
            f"{point.value:>14g}"
            + "".join(f" {cell:>34}" for cell in cells)
            + "".join(f" {value:>13.4f}" for value in ssim)
            + f" {point.diverged:>8}"
        )
    return "\n".join(lines)


def sweep_report(sweep: Sweep) -> dict:
    return {
        "settings": {
            "over": sweep.over,
            "values": sweep.values,
            "epochs": sweep.epochs,
            "lr": sweep.lr,
            "architecture": sweep.architecture.as_dict(),  # held, unless the sweep is over latent channels
            **sweep.study_settings,
        },
        "seed_reported": SEED_RESULTS,
        "stopped": not sweep.done,  # the points of the values done so far
        "points": [asdict(point) for point in sweep.points],
    }


def study_files(study: Study, results: list[PairResult], target_epochs: int) -> list[FileToSave]:
    """A study's table of pairs and its report."""
    return [
        FileToSave("Pairs (CSV)", "study_pairs.csv", "text/csv", lambda: study_csv(pair_rows(study, results))),
        FileToSave(
            "Report (JSON)",
            "study_report.json",
            "application/json",
            lambda: json.dumps(study_report(study, results, summarize(results), target_epochs), indent=1),
        ),
    ]


# -- the run store -------------------------------------------------------------------------------------
def when(unix_time: float) -> str:
    """A time as people read it here: local, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(unix_time))


def run_what(settings: dict) -> str:
    """A stored run's data in a few words: "sample 3 + 0" or "16 pairs of sample"."""
    if settings["kind"] == "study":
        return f"{settings['pairs']} pairs of {settings['source']}"
    return f"{settings['source']} {settings['mnist_index']} + {settings['cifar_index']}"


def format_runs_table(runs: list) -> str:
    """Stored runs as a plain-text table, one line each (PSNR and SSIM: a study's medians)."""
    lines = [
        f"{'id':<12}  {'kind':<5}  {'data':<22} {'epochs':>7} {'lr':>8} {'alpha':>5} {'seed':>5}  "
        f"{'PSNR M':>7} {'SSIM M':>7} {'PSNR C':>7} {'SSIM C':>7}  trained"
    ]
    for run in runs:
        settings, scores = run.settings, run.scores
        lines.append(
            f"{run.id:<12}  {run.kind:<5}  {run_what(settings):<22} {run.epochs:>7} {settings['lr']:>8.3g} "
            f"{settings['alpha']:>5.2f} {settings['seed']:>5}  {scores['mnist_psnr']:>7.2f} "
            f"{scores['mnist_ssim']:>7.4f} {scores['cifar_psnr']:>7.2f} {scores['cifar_ssim']:>7.4f}  "
            f"{when(run.trained_at)}"
        )
    return "\n".join(lines)


# -- the probe -----------------------------------------------------------------------------------------
def probe_rows(rows: list) -> list[dict]:
    """One flat row per probe input: its fit and, for a pair's mix, both un-mixed images' scores."""
    flat = []
    for row in rows:
        scores = {"Fit PSNR (dB)": row.fit.psnr, "Fit SSIM": row.fit.ssim}
        for dataset, title in DATASET_TITLES.items():
            scored = row.pair.quality[dataset] if row.pair is not None else None
            scores[f"{title} PSNR (dB)"] = scored.psnr if scored else None
            scores[f"{title} SSIM"] = scored.ssim if scored else None
        flat.append({"Input": row.kind, "Images": row.label, **scores})
    return flat


def format_probe(rows: list) -> str:
    """The probe as a table, then the trained pair's un-mixed PSNR against the unseen pairs'."""
    lines = [f"{'Input':<15} {'images':<50} {'fit dB':>7} {'MNIST dB':>9} {'CIFAR dB':>9}"]
    for row in probe_rows(rows):
        cells = [row["Fit PSNR (dB)"], row["MNIST PSNR (dB)"], row["CIFAR-10 PSNR (dB)"]]
        numbers = " ".join(f"{'-' if c is None else f'{c:.2f}':>{w}}" for c, w in zip(cells, (7, 9, 9)))
        lines.append(f"{row['Input']:<15} {row['Images'][:50]:<50} {numbers}")
    trained, unseen = _probe_psnrs(rows)
    lines.append(
        f"Un-mixed MNIST PSNR: trained pair {trained:.2f} dB; {len(unseen)} unseen pairs mean "
        f"{statistics.fmean(unseen):.2f}, median {statistics.median(unseen):.2f}, range {min(unseen):.2f} to "
        f"{max(unseen):.2f} dB: {trained - statistics.median(unseen):.1f} dB better on the pair it trained on."
    )
    return "\n".join(lines)


def _probe_psnrs(rows: list) -> tuple[float, list[float]]:
    """The un-mixed MNIST's PSNR on the trained pair, and on each unseen one."""
    (trained,) = [row.pair.quality["mnist"].psnr for row in rows if row.kind == TRAINED]
    return trained, [row.pair.quality["mnist"].psnr for row in rows if row.kind == UNSEEN]


def probe_report(experiment: Experiment, rows: list) -> dict:
    def metrics(row) -> dict:
        return {key: q.as_dict() for key, q in row.pair.quality.items()}

    (trained,) = [row for row in rows if row.kind == TRAINED]
    return {
        "settings": report(experiment, trained.pair, experiment.trainer.epochs_done)["settings"],
        "epochs_done": experiment.trainer.epochs_done,
        "trained": metrics(trained),
        "unseen": [
            {"mnist_index": row.pair.mnist.index, "cifar_index": row.pair.cifar.index, **metrics(row)}
            for row in rows
            if row.kind == UNSEEN
        ],
        "other_alpha": [{"alpha": row.pair.alpha, **metrics(row)} for row in rows if row.kind == OTHER_ALPHA],
        "alone": [{"input": row.label, "fit": row.fit.as_dict()} for row in rows if row.kind == ALONE],
    }
