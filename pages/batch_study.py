"""Batch study: the seed's experiment over many random pairs, trained side by side."""

import json

import streamlit as st

from ae_core import charts, data, reporting
from ae_core.data import DataUnavailable
from ae_core.mixing import SEED_ALPHA
from ae_core.study import MAX_PAIRS, Study, check_pairs, summarize
from ae_core.sweep import SWEEPABLE, Sweep, parse_values
from ae_core.training import DIVERGED, SEED_LR
from app_widgets import (
    MAX_EPOCHS,
    as_sentence,
    download_panel,
    epoch_limit_problems,
    picture_row,
    settings_problems,
    shown_run,
    sweep_run,
    through_the_app_navigation,
    train_run,
)

DEFAULT_EPOCHS = 2_000  # about half a minute for 16 pairs on a laptop CPU; the seed trains 10,000

through_the_app_navigation()
st.title("Batch study")
st.caption(
    "One pair says little. Here K random (MNIST, CIFAR-10) pairs each get their own autoencoder, "
    "all trained side by side, and the seed's table becomes a distribution."
)

# -- inputs ------------------------------------------------------------------------------------------
problems: list[str] = []
source = st.radio("Data source", list(data.SOURCES), format_func=data.SOURCES.get, key="study_source", horizontal=True)
if source != "sample":
    download_panel(key="study_download")
cols = st.columns(5)
chosen = {
    "pairs": cols[0].number_input("Pairs", value=16, step=1, key="study_pairs", help=f"1 to {MAX_PAIRS}"),
    "epochs": cols[1].number_input(
        "Epochs",
        value=DEFAULT_EPOCHS,
        step=1000,
        key="study_epochs",
        help=f"The seed trains 10,000 epochs; at most {MAX_EPOCHS:,} here.",
    ),
    "lr": cols[2].number_input("Learning rate", value=SEED_LR, step=1e-4, format="%.4g", key="study_lr"),
    "alpha": cols[3].number_input(
        "Mix weight α (MNIST share)", value=SEED_ALPHA, step=0.05, format="%.2f", key="study_alpha"
    ),
    "seed": cols[4].number_input(
        "Seed", value=0, step=1, key="study_seed", help="Draws the pairs and the initial weights"
    ),
}
try:
    check_pairs(int(chosen["pairs"]))
except ValueError as error:
    problems.append(as_sentence(error))
problems.extend(settings_problems(chosen["epochs"], chosen["lr"], chosen["alpha"]))
if source != "sample":
    try:
        data.collection_size(data.MNIST, source), data.collection_size(data.CIFAR10, source)
    except DataUnavailable as error:
        problems.append(str(error))
go, stop, _ = st.columns([1, 1, 4])
run_clicked = go.button("Run", key="study_run", type="primary", icon=":material/play_arrow:")
# A click reruns the page, which interrupts a running study between steps; what it learned is kept.
stop.button("Stop", key="study_stop", icon=":material/stop:")
for problem in problems:
    st.error(problem, icon=":material/error:")


# -- results -----------------------------------------------------------------------------------------
def show_results(run: dict) -> None:
    study, results, rows = run["study"], run["results"], run["rows"]
    trainer = study.trainer
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
    for metric in ("psnr", "ssim"):
        box, histogram = charts.score_figures(rows, metric)
        left, right = st.columns(2)
        left.plotly_chart(box, key=f"study_box_{metric}")
        right.plotly_chart(histogram, key=f"study_hist_{metric}")
    st.plotly_chart(charts.study_loss_figure(trainer.losses), key="study_final_loss")
    # The CIFAR-10 PSNRs differ from MNIST's by one constant of alpha, so either ranks the pairs alike.
    ranking = sorted(range(len(results)), key=lambda k: results[k].quality["mnist"].psnr)
    for title, k in (("Best pair", ranking[-1]), ("Worst pair", ranking[0])):
        result = results[k]
        mnist, cifar = result.quality["mnist"], result.quality["cifar"]
        st.markdown(
            f"**{title}**: {result.mnist.caption} with {result.cifar.caption}, PSNR MNIST "
            f"{mnist.psnr:.2f} dB, CIFAR-10 {cifar.psnr:.2f} dB, SSIM MNIST {mnist.ssim:.4f}, CIFAR-10 "
            f"{cifar.ssim:.4f}"
        )
        picture_row(result.images())
    report = reporting.study_report(study, results, summary, run["target_epochs"])
    left, right, _ = st.columns([1, 1, 3])
    left.download_button("Pairs (CSV)", reporting.study_csv(rows), "study_pairs.csv", "text/csv")
    right.download_button("Report (JSON)", json.dumps(report, indent=1), "study_report.json", "application/json")


# -- page --------------------------------------------------------------------------------------------
run = shown_run("study")
settings_key = (
    None
    if problems
    else (source, int(chosen["pairs"]), float(chosen["lr"]), float(chosen["alpha"]), int(chosen["seed"]))
)


def new_study() -> dict:
    study = Study(source, int(chosen["pairs"]), alpha=chosen["alpha"], lr=chosen["lr"], seed=int(chosen["seed"]))
    return {"study": study, "trainer": study.trainer, "results_epochs": None}


if run_clicked and settings_key is not None:
    run = train_run(
        "study",
        settings_key,
        new_study,
        int(chosen["epochs"]),
        lambda trainer, target: charts.study_loss_figure(trainer.losses, target),
        rate_unit="pair-epochs",
        loss_label="median loss",
    )

if run is not None:
    trainer = run["trainer"]
    if run["results_epochs"] != trainer.epochs_done:
        run["results"] = run["study"].results()
        run["rows"] = reporting.pair_rows(run["study"], run["results"])
        run["results_epochs"] = trainer.epochs_done
    if trainer.message:
        st.warning(trainer.message, icon=":material/warning:")
    # Short of its target only when interrupted (see Mix & Train); a study whose every pair diverged ends short.
    if trainer.status != DIVERGED and trainer.epochs_done < run["target_epochs"]:
        st.info(
            f"Stopped at epoch {trainer.epochs_done:,} of {run['target_epochs']:,}; every pair keeps what it "
            f"learned. Press Run to continue from here.",
            icon=":material/pause:",
        )
    if settings_key != run["key"]:
        st.caption("These results belong to the settings run earlier; press Run to study the current ones.")
    show_results(run)
else:
    st.info(
        f"Press **Run** to train {int(chosen['pairs']) if not problems else 'the'} pairs. Each pair trains "
        "from the same initial weights (the seed), so every row equals a single Mix & Train run.",
        icon=":material/info:",
    )


# -- sweep -------------------------------------------------------------------------------------------
SWEEP_DEFAULTS = {"lr": "3e-4, 1e-3, 3e-3", "epochs": "500, 1000, 2000, 4000"}

st.divider()
st.subheader("Sweep")
st.caption(
    "The same pairs at several learning rates or epoch counts, each value scored over all pairs. "
    "An epochs sweep trains once and scores at each count; a learning-rate sweep trains once per rate. "
    "Pairs, seed, mix weight and source are the ones above; so are the epochs (or the learning rate) "
    "held fixed."
)
over = st.radio(
    "Vary",
    list(SWEEPABLE),
    format_func=lambda setting: SWEEPABLE[setting].capitalize(),
    key="sweep_over",
    horizontal=True,
)
text = st.text_input(
    f"{SWEEPABLE[over].capitalize()} values, separated by commas", SWEEP_DEFAULTS[over], key=f"sweep_values_{over}"
)
value_problems = []
try:
    values = parse_values(over, text)
except ValueError as error:
    value_problems.append(as_sentence(error))
else:
    if over == "epochs":
        value_problems.extend(epoch_limit_problems(values[-1]))
go_sweep, stop_sweep, _ = st.columns([1.5, 1.5, 3])
sweep_clicked = go_sweep.button("Run sweep", key="sweep_run", icon=":material/play_arrow:")
# Any click reruns the page, which interrupts a running sweep between steps; what it learned is kept.
stop_sweep.button("Stop sweep", key="sweep_stop", icon=":material/stop:")
for problem in value_problems:
    st.error(problem, icon=":material/error:")
sweep_ready = not problems and not value_problems
if sweep_clicked and not sweep_ready:
    st.error("Fix the settings above to run the sweep.", icon=":material/error:")

stored = st.session_state.get("sweep")
sweep_key = (
    (
        over,
        tuple(values),
        source,
        int(chosen["pairs"]),
        float(chosen["alpha"]),
        int(chosen["seed"]),
        float(chosen["lr"]) if over == "epochs" else int(chosen["epochs"]),
    )
    if sweep_ready
    else None
)


def new_sweep() -> Sweep:
    return Sweep(
        over,
        values,
        source,
        int(chosen["pairs"]),
        epochs=int(chosen["epochs"]),
        lr=float(chosen["lr"]),
        alpha=float(chosen["alpha"]),
        seed=int(chosen["seed"]),
    )


if sweep_clicked and sweep_key is not None:
    stored = sweep_run(sweep_key, new_sweep, lambda points: charts.sweep_figures(points, SWEEPABLE[over])[0])

if stored is not None and stored["sweep"].points:
    sweep = stored["sweep"]
    if not sweep.done:
        st.info(
            f"Stopped after {len(sweep.points)} of {len(sweep.values)} values; press Run sweep to go on.",
            icon=":material/pause:",
        )
    if sweep_key != stored["key"]:
        st.caption("This sweep belongs to the settings run earlier; press Run sweep to sweep the current ones.")
    setting = SWEEPABLE[sweep.over]
    psnr_figure, ssim_figure = charts.sweep_figures(sweep.points, setting)
    left, right = st.columns(2)
    left.plotly_chart(psnr_figure, key="sweep_psnr")
    right.plotly_chart(ssim_figure, key="sweep_ssim")
    table = reporting.sweep_rows(sweep)
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            name: st.column_config.NumberColumn(format="%.4f") for name in table[0] if name.startswith(("PSNR", "SSIM"))
        },
    )
    st.download_button(
        "Sweep (JSON)", json.dumps(reporting.sweep_report(sweep), indent=1), "sweep.json", "application/json"
    )
