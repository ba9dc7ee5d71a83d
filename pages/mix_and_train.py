"""Mix & Train: pick a pair, watch the autoencoder learn their mix, compare what comes back."""

import hashlib
import random
from collections.abc import Callable

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from ae_core import charts, data, probe, reporting, store
from ae_core.data import CIFAR10, MNIST, DataUnavailable
from ae_core.experiment import Experiment, PairResult
from ae_core.mixing import mix
from ae_core.progress import DIVERGED, Progress
from ae_core.settings import SEED_EPOCHS
from ae_core.worker import TrainingFailed
from app_widgets import (
    ALPHA_IN_A_LINK,
    EPOCHS_IN_A_LINK,
    LATENT_IN_A_LINK,
    LR_IN_A_LINK,
    SEED_IN_A_LINK,
    WIDTH_IN_A_LINK,
    LinkSetting,
    Run,
    as_sentence,
    chart_pair,
    download_panel,
    download_row,
    forget_steps,
    network_choice,
    one_of,
    open_stored,
    picture_row,
    settings_from_link,
    settings_to_link,
    shown_run,
    step_buttons,
    stepped_target,
    stop_button,
    stored_caption,
    through_the_app_navigation,
    train_run,
    training_settings,
    whole_number,
)

SOURCES = {**data.SOURCES, "upload": "Uploaded images"}
LIVE_POINTS = 300  # a live loss curve's points, at most
INDEX_KEYS = {MNIST: "mnist_index", CIFAR10: "cifar_index"}


def index_in_a_link(dataset: str):
    def parse(text: str) -> int:
        source = st.session_state.get("source", "sample")
        if source == "upload":
            raise ValueError("uploaded images are never put in a link")
        return whole_number(0, data.collection_size(dataset, source) - 1)(text)

    return parse


# The page's address is its experiment: these settings are read from it and written back to it.
LINK = {
    "source": LinkSetting("source", one_of(list(SOURCES))),
    "mnist": LinkSetting(INDEX_KEYS[MNIST], index_in_a_link(MNIST)),
    "cifar": LinkSetting(INDEX_KEYS[CIFAR10], index_in_a_link(CIFAR10)),
    "epochs": LinkSetting("epochs", EPOCHS_IN_A_LINK),
    "lr": LinkSetting("lr", LR_IN_A_LINK),
    "alpha": LinkSetting("alpha", ALPHA_IN_A_LINK),
    "seed": LinkSetting("seed", SEED_IN_A_LINK),
    "latent": LinkSetting("latent_channels", LATENT_IN_A_LINK),
    "width": LinkSetting("width", WIDTH_IN_A_LINK),
}

through_the_app_navigation()
settings_from_link("mix", LINK)
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
    row = st.container(horizontal=True, vertical_alignment="bottom")  # the input gives way to the button
    index = row.number_input(
        f"{dataset} index",
        value=0,
        step=1,
        key=INDEX_KEYS[dataset],
        help=f"0 to {size - 1} in the {SOURCES[source].lower()}",
    )
    row.button(
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
    st.caption(f"{'Digit' if dataset == MNIST else 'Class'}: **{sample.label_name}**")
    return sample


# -- results -----------------------------------------------------------------------------------------
def score_names(label: str) -> tuple[str, str]:
    """The two score names with what they compare ("(mix)", "(fit)"; nothing for an un-mixed image)."""
    return f"PSNR {label}".strip(), f"SSIM {label}".strip()


def badges(col, label: str, q, help_text: str, baseline=None) -> None:
    psnr_name, ssim_name = score_names(label)
    col.metric(
        psnr_name,
        f"{q.psnr:.2f} dB",
        help=help_text,
        delta=None if baseline is None else f"{q.psnr - baseline.psnr:+.1f} dB vs mix",
    )
    col.metric(
        ssim_name,
        f"{q.ssim:.4f}",
        help=f"{help_text} scikit-image's default SSIM (7 x 7 uniform window); with Wang et al.'s Gaussian "
        f"window (σ 1.5): {q.ssim_gaussian:.4f}. The seed does not say which it reports.",
        delta=None if baseline is None else f"{q.ssim - baseline.ssim:+.3f} vs mix",
    )


def pair_view(
    result: PairResult,
    history: list[float],
    scored: list[tuple[int, PairResult]],
    target_epochs: int | None,
    marker: int | None,
    key_prefix: str,
    live: bool = False,
) -> None:
    """The six images and their scores at one epoch, over the loss chart and the scores against epoch
    (`scored`: (epoch, results) of the timeline's frames), a line at `marker`. A `live` view is drawn
    again at each report, lighter: its scores are a caption under each picture instead of two badges
    (Chromium redraws ten badges about as slowly as both charts: over 2,500 epochs the training waited
    for a core 0.27 and 0.28 s without the badges, 0.32 and 0.41 s without the charts, 0.39 to 0.64 s
    with both; an ad-hoc script reading the child's /proc schedstat), its loss curve has at most
    LIVE_POINTS points, so what a redraw sends stays bounded, and its charts no hover, which the next
    redraw would take away anyway."""
    picture_row(result.images(), under=(score_captions if live else score_badges)(result))
    figures = {
        f"{key_prefix}loss_chart": charts.loss_figure(
            history, target_epochs, max_points=LIVE_POINTS if live else 2000, marker=marker
        ),
        f"{key_prefix}score_chart": charts.score_figure(
            [epoch for epoch, _ in scored], [r.quality for _, r in scored], target_epochs, marker
        ),
    }
    chart_pair(key_prefix, figures, **({"config": {"staticPlot": True}} if live else {}))


def draw_live(run: Run, progress: Progress, key_prefix: str) -> None:
    """What the network gives back at the epoch of `progress`, while it trains. It shows the pair
    again, so it takes the place of the pair's pictures drawn above it before the training."""
    inputs.empty()
    result = run.job.result(progress.outputs[0])
    scored = [(epoch, r) for epoch, r in run.frame_results() if epoch < progress.epoch] + [(progress.epoch, result)]
    pair_view(result, run.trainer.loss_history, scored, progress.target_epochs, None, key_prefix, live=True)


def charts_to_come(target_epochs: int) -> None:
    """The two charts a training fills in, empty, with the seed's values marked: what the run is
    aiming at, in the place where it will show. Drawing them before the first Train also loads the
    page's chart library then rather than in the training's first second, when Chromium's 0.7 s of
    evaluating it held the training back (the training waited 0.39 to 0.64 s for a core over 2,500
    epochs against 0.69 to 0.75 s without them; an ad-hoc script reading the child's /proc schedstat)."""
    chart_pair(
        "to_come_",
        {
            "to_come_loss_chart": charts.loss_figure([], target_epochs),
            "to_come_score_chart": charts.score_figure([], [], target_epochs),
        },
        config={"staticPlot": True},
    )


SCORE_NAMES = {  # picture: (its scores in PairResult.quality, their label, what they say)
    "mnist": (
        "mix_vs_mnist",
        "(mix)",
        "The mixed input scored against this original: what you would get without un-mixing.",
    ),
    "cifar": ("mix_vs_cifar", "(mix)", "The mixed input scored against this original."),
    # the mixed input itself has no score of its own
    "reconstruction": ("mixed", "(fit)", "Reconstruction against the mixed input it was trained on."),
    "unmixed_mnist": ("mnist", "", "Un-mixed MNIST against the original digit."),
    "unmixed_cifar": ("cifar", "", "Un-mixed CIFAR-10 against the original photo."),
}


def score_badges(result: PairResult) -> Callable[[str, DeltaGenerator], None]:
    """What `picture_row` draws under each picture in the results: two badges, an un-mixed image's
    with its gain over the mixed input."""

    def under(name: str, cell: DeltaGenerator) -> None:
        if name in SCORE_NAMES:
            scores, label, help_text = SCORE_NAMES[name]
            baseline = result.quality[f"mix_vs_{scores}"] if name.startswith("unmixed_") else None
            badges(cell, label, result.quality[scores], help_text, baseline)

    return under


def score_captions(result: PairResult) -> Callable[[str, DeltaGenerator], None]:
    """What `picture_row` draws under each picture in a live view: its two scores in a caption."""

    def under(name: str, cell: DeltaGenerator) -> None:
        if name in SCORE_NAMES:
            scores, label, _ = SCORE_NAMES[name]
            quality, (psnr_name, ssim_name) = result.quality[scores], score_names(label)
            cell.caption(f"{psnr_name} **{quality.psnr:.2f} dB**  \n{ssim_name} **{quality.ssim:.4f}**")

    return under


@st.fragment
def timeline_view(run: Run) -> None:
    """The results at the epoch a slider picks among the timeline's frames (its newest at first): a
    fragment, so that scrubbing redraws this part of the page alone."""
    frames = run.frame_results()
    epochs = [epoch for epoch, _ in frames]
    shown_epoch = epochs[-1]
    if len(epochs) > 1:
        shown_epoch = st.select_slider(
            "Timeline: the epoch shown",
            options=epochs,
            value=epochs[-1],
            format_func="{:,}".format,
            key=f"timeline_{id(run)}_{epochs[-1]}",  # a new slider, at its end, whenever the run grew
            help=f"{len(epochs)} frames at log-spaced epochs; the images, badges and the lines on both charts follow",
        )
    result = dict(frames)[shown_epoch]
    pair_view(result, run.trainer.loss_history, frames, None, shown_epoch, "final_")
    if st.toggle("Show error heat maps |original − reconstruction|", key="heatmaps"):
        st.caption("Each map is scaled so its own largest error is white.")
        picture_row(
            {
                "Error of un-mixed MNIST": reporting.error_map(result.mnist.image, result.unmixed_mnist),
                "Error of un-mixed CIFAR-10": reporting.error_map(result.cifar.image, result.unmixed_cifar),
                "Error of the fit": reporting.error_map(result.mixed, result.reconstruction),
            }
        )
    st.markdown("**This run beside the seed's table**")
    st.dataframe(
        reporting.table_rows(result),
        hide_index=True,
        column_config={
            name: st.column_config.NumberColumn(format="%.4f")
            for name in ("SSIM", "SSIM (Gaussian)", "PSNR (dB)", "Seed SSIM", "Seed PSNR (dB)")
        },
    )


@st.fragment
def probe_view(run: Run) -> None:
    """The trained network, without training, on images it never saw: a fragment, so that changing
    what it is shown redraws this part of the page alone."""
    st.subheader("Does it generalize?")
    st.caption(
        "The seed scores the network on the one image it trained on. Here the same weights, without any "
        "more training, take the mixes of other pairs, each original alone, and this pair mixed at another α."
    )
    if not st.toggle("Try the trained network on other images", key="probe_on"):
        return
    count_column, alpha_column, draw_column = st.columns(3)
    count = count_column.number_input("Unseen pairs", min_value=1, max_value=8, value=3, step=1, key="probe_unseen")
    other_alpha = alpha_column.number_input("Another α", value=0.3, step=0.05, format="%.2f", key="probe_alpha")
    draw = draw_column.number_input(
        "Draw", value=0, step=1, key="probe_draw", help="Which unseen pairs: another number draws others"
    )
    typed = st.text_input(
        "Or these pairs",
        key="probe_pairs",
        placeholder="5/3, 12/7",
        help="MNIST index/CIFAR-10 index, separated by commas",
    )
    experiment = run.job
    source = experiment.mnist.source if experiment.mnist.source in data.SOURCES else "sample"
    trained = [(experiment.mnist.index, experiment.cifar.index)] if source == experiment.mnist.source else []
    try:
        if typed.strip():
            unseen = probe.chosen_pairs(typed, source)
        else:
            unseen = probe.unseen_pairs(source, int(count), int(draw), trained)
        rows = probe.probe_pair(experiment, unseen, other_alpha)
    except (ValueError, DataUnavailable, TrainingFailed) as error:  # the last: its process died
        st.error(as_sentence(error) if isinstance(error, ValueError) else str(error), icon=":material/error:")
        return
    table = reporting.probe_rows(rows)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            name: st.column_config.NumberColumn(format="%.2f" if "PSNR" in name else "%.4f")
            for name in table[0]
            if "PSNR" in name or "SSIM" in name
        },
    )
    for row in rows:
        pictures = {f"{row.kind}: input": row.input, "reconstruction": row.reconstruction}
        if row.pair is not None:
            quality = row.pair.quality
            pictures[f"un-mixed MNIST, {quality['mnist'].psnr:.1f} dB"] = row.pair.unmixed_mnist
            pictures[f"un-mixed CIFAR-10, {quality['cifar'].psnr:.1f} dB"] = row.pair.unmixed_cifar
        st.markdown(f"**{row.label}** · fit {row.fit.psnr:.2f} dB")
        picture_row(pictures)


def show_result(run: Run) -> None:
    (result,) = run.results()
    st.subheader(f"Results after {run.trainer.epochs_done:,} epochs")
    timeline_view(run)
    download_row(reporting.pair_files(run.job, result, run.target_epochs, run.frame_results))


# -- page --------------------------------------------------------------------------------------------
problems: list[str] = []
source = st.radio("Data source", list(SOURCES), format_func=SOURCES.get, key="source", horizontal=True)
if source in ("train", "test"):
    download_panel(key="download")
if source == "upload":
    st.caption(
        ":material/lock: Runs on uploaded images stay in this browser session: they are never written to "
        "the run store, and the images are never put in the page's link."
    )
left, right = st.columns(2)
with left:
    mnist = pick(MNIST, source, problems)
with right:
    cifar = pick(CIFAR10, source, problems)
chosen, setting_problems = training_settings("", SEED_EPOCHS, seed_help="Initial weights")
problems += setting_problems
architecture = network_choice("")
settings_to_link(LINK, leave_out=("mnist", "cifar") if source == "upload" else ())
buttons = st.container(horizontal=True)
train_clicked = buttons.button("Train", key="train", type="primary", icon=":material/play_arrow:")
step_buttons(buttons, "run")
stop_button(buttons, "run", key="stop")

for problem in problems:
    st.error(problem, icon=":material/error:")


def pair_pictures() -> DeltaGenerator:
    """The chosen pair and its mix, in `inputs`."""
    drawn = inputs.container()
    with drawn:
        picture_row(
            {"mnist": mnist.image, "cifar": cifar.image, "mixed": mix(mnist.image, cifar.image, chosen["alpha"])}
        )
    return drawn


run = shown_run("run")
inputs = st.empty()  # the pair's pictures, until a live view or the results show them again
ready = not problems and mnist is not None and cifar is not None
pair_key = untrained_pair = None
if ready:
    uploads = [hashlib.sha1(s.image.tobytes()).hexdigest() if s.source == "upload" else s.index for s in (mnist, cifar)]
    pair_key = (source, *uploads, float(chosen["lr"]), int(chosen["seed"]), float(chosen["alpha"]), architecture)
    if (run is None or run.key != pair_key) and source != "upload":
        settings = store.pair_settings(
            source, mnist.index, cifar.index, chosen["alpha"], chosen["lr"], chosen["seed"], architecture=architecture
        )
        run = open_stored("run", pair_key, settings) or run
    if run is None or run.key != pair_key:
        untrained_pair = pair_pictures()


def new_experiment() -> Experiment:
    return Experiment(
        mnist,
        cifar,
        alpha=chosen["alpha"],
        lr=chosen["lr"],
        seed=int(chosen["seed"]),
        architecture=architecture,
        in_child_process=True,
    )


target_epochs, step_problems = stepped_target("run", pair_key) if ready else (None, [])
forget_steps("run")  # taken by the training below, or refused: none waits for a later rerun
if train_clicked and ready:
    target_epochs = int(chosen["epochs"])  # Train goes to the Epochs set, whatever steps were asked
for problem in step_problems:
    st.error(problem, icon=":material/error:")
if target_epochs:
    run = train_run("run", pair_key, new_experiment, target_epochs, draw_live, rate_unit="epochs", loss_label="loss")
    if run is not None and run.key == pair_key:
        inputs.empty()
    elif untrained_pair is not None:  # it diverged at once: the earlier results stay, and the pair above them
        pair_pictures()
elif untrained_pair is not None and run is None:
    with untrained_pair:
        charts_to_come(int(chosen["epochs"]))

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
    stored_caption(run, "Train")
    show_result(run)
    probe_view(run)
