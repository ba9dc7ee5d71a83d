"""Sweep: the same random pairs at several learning rates or epoch counts, each value scored over all pairs."""

import json

import streamlit as st

from ae_core import charts, reporting
from ae_core.architecture import SEED_ARCHITECTURE
from ae_core.settings import SEED_EPOCHS, SEED_LR
from ae_core.sweep import SWEEPABLE, Sweep, parse_values
from app_widgets import (
    STUDY_EPOCHS,
    as_sentence,
    chart_pair,
    dataset_source,
    epoch_limit_problems,
    sweep_run,
    through_the_app_navigation,
    training_settings,
)

SWEEP_DEFAULTS = {"lr": "3e-4, 1e-3, 3e-3", "epochs": "500, 1000, 2000, 4000", "latent": "4, 8, 16, 32, 64, 128"}
# The seed's own value of each setting, marked on the charts.
SEED_VALUES = {"lr": SEED_LR, "epochs": SEED_EPOCHS, "latent": SEED_ARCHITECTURE.latent_channels}

through_the_app_navigation()
st.title("Sweep")
st.caption(
    "The same pairs at several learning rates, epoch counts or latent sizes, each value scored over all pairs, "
    "as a Batch study would score them. An epochs sweep trains once and scores at each count; a learning-rate "
    "or latent sweep trains once per value, from the same initial weights, every latent size on the fast "
    "engine. The settings not swept are held at their values below."
)

# -- inputs ------------------------------------------------------------------------------------------
source, problems = dataset_source("sweep_source")
chosen, setting_problems = training_settings(
    "sweep_", STUDY_EPOCHS, seed_help="Draws the pairs and the initial weights", with_pairs=True
)
problems += setting_problems
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
buttons = st.container(horizontal=True)
sweep_clicked = buttons.button("Run sweep", key="sweep_run", type="primary", icon=":material/play_arrow:")
# Any click reruns the page, which interrupts a running sweep between steps; what it learned is kept.
buttons.button("Stop sweep", key="sweep_stop", icon=":material/stop:")
for problem in problems + value_problems:
    st.error(problem, icon=":material/error:")
sweep_ready = not problems and not value_problems

stored = st.session_state.get("sweep")
sweep_key = (
    (
        over,
        tuple(values),
        source,
        int(chosen["pairs"]),
        float(chosen["alpha"]),
        int(chosen["seed"]),
        float(chosen["lr"]),
        int(chosen["epochs"]),
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
        in_child_process=True,
    )


if sweep_clicked and sweep_key is not None:
    stored = sweep_run(
        sweep_key, new_sweep, lambda points: charts.sweep_figures(points, SWEEPABLE[over], SEED_VALUES[over])[0]
    )

if stored is not None and stored.sweep.points:
    sweep = stored.sweep
    if not sweep.done:
        st.info(
            f"Stopped after {len(sweep.points)} of {len(sweep.values)} values; press Run sweep to go on.",
            icon=":material/pause:",
        )
    if sweep_key != stored.key:
        st.caption("This sweep belongs to the settings run earlier; press Run sweep to sweep the current ones.")
    setting = SWEEPABLE[sweep.over]
    psnr_figure, ssim_figure = charts.sweep_figures(sweep.points, setting, SEED_VALUES[sweep.over])
    chart_pair("sweep", {"sweep_psnr": psnr_figure, "sweep_ssim": ssim_figure})
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
