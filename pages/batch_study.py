"""Batch study: the seed's experiment over many random pairs, trained side by side."""

import statistics

import streamlit as st

from ae_core import charts, data, probe, reporting, store
from ae_core.data import DataUnavailable
from ae_core.progress import Progress
from ae_core.study import MAX_PAIRS, METRICS, Study, summarize
from ae_core.worker import TrainingFailed
from app_widgets import (
    ALPHA_IN_A_LINK,
    EPOCHS_IN_A_LINK,
    LR_IN_A_LINK,
    SEED_IN_A_LINK,
    STUDY_EPOCHS,
    LinkSetting,
    Run,
    chart_pair,
    dataset_source,
    download_row,
    one_of,
    open_stored,
    picture_row,
    settings_from_link,
    settings_to_link,
    shown_run,
    stop_button,
    stored_caption,
    through_the_app_navigation,
    train_run,
    training_settings,
    whole_number,
)

LIVE_PICTURE_PX = 88  # the WATCHED pairs side by side in a 1,400-pixel window, two by two in a 900-pixel one

# The page's address is its study: these settings are read from it and written back to it.
LINK = {
    "source": LinkSetting("study_source", one_of(list(data.SOURCES))),
    "pairs": LinkSetting("study_pairs", whole_number(1, MAX_PAIRS)),
    "epochs": LinkSetting("study_epochs", EPOCHS_IN_A_LINK),
    "lr": LinkSetting("study_lr", LR_IN_A_LINK),
    "alpha": LinkSetting("study_alpha", ALPHA_IN_A_LINK),
    "seed": LinkSetting("study_seed", SEED_IN_A_LINK),
}

through_the_app_navigation()
settings_from_link("study", LINK)
st.title("Batch study")
st.caption(
    "One pair says little. Here K random (MNIST, CIFAR-10) pairs each get their own autoencoder, "
    "all trained side by side, and the seed's table becomes a distribution."
)

# -- inputs ------------------------------------------------------------------------------------------
source, problems = dataset_source("study_source")
chosen, setting_problems = training_settings(
    "study_", STUDY_EPOCHS, seed_help="Draws the pairs and the initial weights", with_pairs=True
)
problems += setting_problems
settings_to_link(LINK)
buttons = st.container(horizontal=True)
run_clicked = buttons.button("Run", key="study_run", type="primary", icon=":material/play_arrow:")
stop_button(buttons, "study", key="study_stop")
for problem in problems:
    st.error(problem, icon=":material/error:")


# -- results -----------------------------------------------------------------------------------------
def draw_live(run: Run, progress: Progress, key_prefix: str) -> None:
    """The loss and the un-mixed PSNR across pairs, and the first pairs' reconstructions, as they learn."""
    study, losses = run.job, run.trainer.losses
    chart_pair(
        key_prefix,
        {
            f"{key_prefix}loss": charts.study_loss_figure(losses, progress.target_epochs),
            f"{key_prefix}psnr": charts.study_psnr_figure(losses, study.alpha, progress.target_epochs),
        },
    )
    st.caption(
        f"The first {len(progress.outputs)} pairs at epoch {progress.epoch:,}: each mixed input, then its output"
    )
    pictures = {}
    for number, ((mnist, cifar), mixed, output) in enumerate(zip(study.samples, study.mixed, progress.outputs), 1):
        pictures[f"{number} · {mnist.label_name} + {cifar.label_name}"] = mixed
        pictures[f"{number} · output"] = output
    picture_row(pictures, per_group=2, cell_px=LIVE_PICTURE_PX)  # a pair's two pictures never apart


@st.fragment
def probe_view(run: Run) -> None:
    """Every trained network, without training, on the same pairs none of them saw."""
    st.subheader("Does it generalize?")
    if not st.toggle("Score every network on pairs it never saw", key="study_probe_on"):
        return
    count = st.columns(3)[0].number_input(
        "Unseen pairs per network", min_value=1, max_value=probe.MAX_UNSEEN, value=16, step=1, key="study_probe_unseen"
    )
    try:
        probed = probe.probe_study(run.job, int(count), seed=run.job.seed)
    except (ValueError, DataUnavailable, TrainingFailed) as error:  # the last: its process died
        st.error(str(error), icon=":material/error:")
        return
    st.plotly_chart(charts.probe_figure(probed.trained_psnr, probed.unseen_medians), key="study_probe")
    st.markdown(
        f"On the pair it trained on, the median network's un-mixed MNIST scores "
        f"**{statistics.median(probed.trained_psnr):.2f} dB**; on {int(count)} pairs it never saw, "
        f"**{statistics.median(probed.unseen_medians):.2f} dB**: a gap of **{probed.gap_db:.1f} dB**. "
        "A network that had learned to encode images would do nearly as well on both."
    )


def show_results(run: Run) -> None:
    study, results, trainer = run.job, run.results(), run.trainer
    rows = reporting.pair_rows(study, results)
    summary = summarize(results)
    st.subheader(f"{len(results)} pairs after {trainer.epochs_done:,} epochs")
    st.dataframe(
        reporting.study_rows(summary),
        hide_index=True,
        column_config={
            name: st.column_config.NumberColumn(format="%.4f")
            for name in ("Mean", "Std", "Median", "Min", "Max", "Seed")
        },
    )
    standing = reporting.seed_standing(results)
    st.markdown("**Where the seed falls** among these pairs")
    st.dataframe(
        reporting.seed_standing_rows(standing),
        hide_index=True,
        column_config={
            "Value": st.column_config.NumberColumn(format="%.4f"),
            "Percentile here": st.column_config.NumberColumn(format="%.1f"),
            "Pairs reaching it (%)": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    st.caption(
        "The seed does not say which SSIM it reports: scikit-image's default (a 7 x 7 uniform window, the "
        "headline here) or Wang et al.'s Gaussian window (σ 1.5); both are set against its values."
    )
    for metric in METRICS:
        box, histogram = charts.score_figures(rows, metric, standing)
        chart_pair(f"study_{metric}", {f"study_box_{metric}": box, f"study_hist_{metric}": histogram})
    chart_pair(
        "study_final",
        {
            "study_final_loss": charts.study_loss_figure(trainer.losses),
            "study_final_psnr": charts.study_psnr_figure(trainer.losses, study.alpha),
        },
    )
    # The CIFAR-10 PSNRs differ from MNIST's by one constant of alpha, so either ranks the pairs alike.
    ranking = sorted(range(len(results)), key=lambda k: results[k].quality["mnist"].psnr)
    for title, k in (("Best pair", ranking[-1]), ("Worst pair", ranking[0])):
        result = results[k]
        mnist, cifar = result.quality["mnist"], result.quality["cifar"]
        st.markdown(
            f"**{title}**: {result.mnist.caption} with {result.cifar.caption}, PSNR MNIST "
            f"{mnist.psnr:.2f} dB, CIFAR-10 {cifar.psnr:.2f} dB, SSIM MNIST {mnist.ssim:.4f}, CIFAR-10 "
            f"{cifar.ssim:.4f} (Gaussian: {mnist.ssim_gaussian:.4f}, {cifar.ssim_gaussian:.4f})"
        )
        picture_row(result.images())
    probe_view(run)
    files = reporting.study_files(study, results, run.target_epochs)
    download_row(files)


# -- page --------------------------------------------------------------------------------------------
run = shown_run("study")
settings_key = (
    None
    if problems
    else (source, int(chosen["pairs"]), float(chosen["lr"]), float(chosen["alpha"]), int(chosen["seed"]))
)


if settings_key is not None and (run is None or run.key != settings_key):
    settings = store.study_settings(source, chosen["pairs"], chosen["alpha"], chosen["lr"], chosen["seed"])
    run = open_stored("study", settings_key, settings) or run


def new_study() -> Study:
    return Study(
        source,
        int(chosen["pairs"]),
        alpha=chosen["alpha"],
        lr=chosen["lr"],
        seed=int(chosen["seed"]),
        in_child_process=True,
    )


if run_clicked and settings_key is not None:
    run = train_run(
        "study",
        settings_key,
        new_study,
        int(chosen["epochs"]),
        draw_live,
        rate_unit="pair-epochs",
        loss_label="median loss",
    )

if run is not None:
    trainer = run.trainer
    if trainer.message:
        st.warning(trainer.message, icon=":material/warning:")
    if run.interrupted:
        st.info(
            f"Stopped at epoch {trainer.epochs_done:,} of {run.target_epochs:,}; every pair keeps what it "
            f"learned. Press Run to continue from here.",
            icon=":material/pause:",
        )
    if settings_key != run.key:
        st.caption("These results belong to the settings run earlier; press Run to study the current ones.")
    stored_caption(run, "Run")
    show_results(run)
else:
    st.info(
        f"Press **Run** to train {int(chosen['pairs']) if not problems else 'the'} pairs. Each pair trains "
        "from the same initial weights (the seed), so every row equals a single Mix & Train run.",
        icon=":material/info:",
    )
