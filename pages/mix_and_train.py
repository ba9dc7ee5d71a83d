"""Mix & Train: pick a pair, watch the autoencoder learn their mix, compare what comes back."""

import hashlib
import io
import json
import random

import streamlit as st
import torch

from ae_core import charts, data, reporting
from ae_core.data import CIFAR10, MNIST, DataUnavailable
from ae_core.experiment import Experiment
from ae_core.mixing import mix
from ae_core.reference import SEED_EPOCHS
from ae_core.training import DIVERGED
from app_widgets import (
    Run,
    download_panel,
    picture_row,
    shown_run,
    through_the_app_navigation,
    train_run,
    training_settings,
)

SOURCES = {**data.SOURCES, "upload": "Uploaded images"}
INDEX_KEYS = {MNIST: "mnist_index", CIFAR10: "cifar_index"}

through_the_app_navigation()
st.title("Mix & Train")
st.caption(
    "An MNIST digit and a CIFAR-10 photo are averaged; a small autoencoder learns to reproduce "
    "that one mixed image; then each original is taken back out as 2 x reconstruction - the other."
)


# -- inputs ------------------------------------------------------------------------------------------
def randomize(dataset: str, source: str) -> None:
    st.session_state[INDEX_KEYS[dataset]] = random.randrange(data.collection_size(dataset, source))


def pick(dataset: str, source: str, problems: list[str]) -> data.Sample | None:
    """The index input of one dataset (or its uploader) and the chosen sample."""
    if source == "upload":
        upload = st.file_uploader(
            f"{'Digit' if dataset == MNIST else 'Photo'} image ({dataset} style)", key=f"{INDEX_KEYS[dataset]}_upload"
        )
        if upload is None:
            problems.append(f"Upload an image for {dataset}.")
            return None
        try:
            return data.sample_from_upload(upload.getvalue(), dataset, upload.name)
        except ValueError as error:
            problems.append(f"{upload.name} was refused: {error}")
            return None
    try:
        size = data.collection_size(dataset, source)
    except DataUnavailable as error:
        problems.append(str(error))
        return None
    field, button = st.columns([3, 1], vertical_alignment="center")
    index = field.number_input(
        f"{dataset} index",
        value=0,
        step=1,
        key=INDEX_KEYS[dataset],
        help=f"0 to {size - 1} in the {SOURCES[source].lower()}",
    )
    button.button(
        "Random",
        icon=":material/casino:",
        key=f"{INDEX_KEYS[dataset]}_random",
        help=f"A random {dataset} image",
        on_click=randomize,
        args=(dataset, source),
    )
    try:
        sample = data.load_sample(dataset, source, int(index))
    except IndexError as error:
        problems.append(str(error))
        return None
    field.caption(f"{'Digit' if dataset == MNIST else 'Class'}: **{sample.label_name}**")
    return sample


# -- results -----------------------------------------------------------------------------------------
def badges(col, label: str, q, help_text: str, baseline=None) -> None:
    col.metric(
        f"PSNR {label}".strip(),
        f"{q.psnr:.2f} dB",
        help=help_text,
        delta=None if baseline is None else f"{q.psnr - baseline.psnr:+.1f} dB vs mix",
    )
    col.metric(
        f"SSIM {label}".strip(),
        f"{q.ssim:.4f}",
        help=help_text,
        delta=None if baseline is None else f"{q.ssim - baseline.ssim:+.3f} vs mix",
    )


def show_result(run: Run) -> None:
    experiment, (result,) = run.job, run.results()
    trainer = run.trainer
    st.subheader(f"Results after {trainer.epochs_done:,} epochs")
    picture_row(result.images())
    baselines = {"mnist": result.quality["mix_vs_mnist"], "cifar": result.quality["mix_vs_cifar"]}
    cols = st.columns(6)
    badges(
        cols[0],
        "(mix)",
        baselines["mnist"],
        "The mixed input scored against this original: what you would get without un-mixing.",
    )
    badges(cols[1], "(mix)", baselines["cifar"], "The mixed input scored against this original.")
    # Under the picture each score is about; the mixed input itself (cols[2]) has none of its own.
    badges(cols[3], "(fit)", result.quality["mixed"], "Reconstruction against the mixed input it was trained on.")
    badges(cols[4], "", result.quality["mnist"], "Un-mixed MNIST against the original digit.", baselines["mnist"])
    badges(cols[5], "", result.quality["cifar"], "Un-mixed CIFAR-10 against the original photo.", baselines["cifar"])
    if st.toggle("Show error heat maps |original − reconstruction|", key="heatmaps"):
        st.caption("Each map is scaled so its own largest error is white.")
        picture_row(
            {
                "mnist": None,
                "cifar": None,
                "mixed": None,
                "Error of the fit": reporting.error_map(result.mixed, result.reconstruction),
                "Error of un-mixed MNIST": reporting.error_map(result.mnist.image, result.unmixed_mnist),
                "Error of un-mixed CIFAR-10": reporting.error_map(result.cifar.image, result.unmixed_cifar),
            }
        )
    st.markdown("**This run beside the seed's table**")
    st.dataframe(
        reporting.table_rows(result),
        hide_index=True,
        column_config={
            name: st.column_config.NumberColumn(format="%.4f")
            for name in ("SSIM", "PSNR (dB)", "Seed SSIM", "Seed PSNR (dB)")
        },
    )
    history = trainer.loss_history  # a list built from the trainer's tensor: build it once
    st.plotly_chart(charts.loss_figure(history), key="final_loss_chart")
    weights = io.BytesIO()
    torch.save(trainer.state_dict(), weights)
    report = reporting.report(experiment, result, run.target_epochs)
    cols = st.columns(4)
    cols[0].download_button("Images (PNG)", reporting.image_row_png(result), "images.png", "image/png")
    cols[1].download_button("Loss history (CSV)", reporting.loss_csv(history), "loss.csv", "text/csv")
    cols[2].download_button("Report (JSON)", json.dumps(report, indent=1), "report.json", "application/json")
    cols[3].download_button(
        "Weights (.pt)", weights.getvalue(), "autoencoder_state_dict.pt", "application/octet-stream"
    )


# -- page --------------------------------------------------------------------------------------------
problems: list[str] = []
source = st.radio("Data source", list(SOURCES), format_func=SOURCES.get, key="source", horizontal=True)
if source in ("train", "test"):
    download_panel(key="download")
left, right = st.columns(2)
with left:
    mnist = pick(MNIST, source, problems)
with right:
    cifar = pick(CIFAR10, source, problems)
chosen, setting_problems = training_settings("", SEED_EPOCHS, seed_help="Initial weights")
problems += setting_problems
go, stop, _ = st.columns([1, 1, 4])
train_clicked = go.button("Train", key="train", type="primary", icon=":material/play_arrow:")
# A click reruns the page, which interrupts a running training between steps; what it learned is kept.
stop.button("Stop", key="stop", icon=":material/stop:")

for problem in problems:
    st.error(problem, icon=":material/error:")

run = shown_run("run")
ready = not problems and mnist is not None and cifar is not None
pair_key = None
if ready:
    uploads = [
        hashlib.sha1(s.image.numpy().tobytes()).hexdigest() if s.source == "upload" else s.index for s in (mnist, cifar)
    ]
    pair_key = (source, *uploads, float(chosen["lr"]), int(chosen["seed"]), float(chosen["alpha"]))
    if run is None or run.key != pair_key:
        picture_row(
            {"mnist": mnist.image, "cifar": cifar.image, "mixed": mix(mnist.image, cifar.image, chosen["alpha"])}
        )


def new_experiment() -> Experiment:
    return Experiment(mnist, cifar, alpha=chosen["alpha"], lr=chosen["lr"], seed=int(chosen["seed"]))


if train_clicked and ready:
    run = train_run(
        "run",
        pair_key,
        new_experiment,
        int(chosen["epochs"]),
        lambda trainer, target: charts.loss_figure(trainer.loss_history, target),
        rate_unit="epochs",
        loss_label="loss",
    )

if run is not None:
    trainer = run.trainer
    if trainer.status == DIVERGED:
        st.warning(trainer.message, icon=":material/warning:")
    elif run.interrupted:
        st.info(
            f"Stopped at epoch {trainer.epochs_done:,} of {run.target_epochs:,}; everything learned so "
            f"far is kept. Press Train to continue from here.",
            icon=":material/pause:",
        )
    if pair_key != run.key:
        st.caption(
            "These results belong to the pair and settings trained earlier; press Train to train the current choice."
        )
    show_result(run)
