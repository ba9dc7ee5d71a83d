"""Runs: every run the run store keeps, from the app and the CLI; open one, or compare two to four."""

import os
from urllib.parse import urlencode

import streamlit as st

from ae_core import charts, reporting
from ae_core.architecture import Architecture
from ae_core.data import DataUnavailable
from ae_core.store import StoredRun
from app_widgets import chart_pair, download_row, picture_row, run_store, through_the_app_navigation

MAX_COMPARED = 4
DELETE_SWITCH = "AE_ALLOW_RUN_DELETE"  # "1": this page may delete stored runs (the CLI always can)
KINDS = {"pair": "Mix & Train", "study": "Batch study"}
SCORE_COLUMNS = {
    f"{dataset}_{metric}": f"{metric.upper()} {reporting.DATASET_TITLES[dataset]}"
    for dataset in ("mnist", "cifar")
    for metric in ("psnr", "ssim")
}

through_the_app_navigation()
st.title("Runs")
runs = run_store()
st.caption(
    f"Every run trained on dataset images, here or with `python -m ae_core run|study`, is kept in "
    f"`{runs.path}` (at most {runs.cap_bytes / 1e6:,.0f} MB; the least recently used go first). "
    "Runs on uploaded images never are."
)


def link(run: StoredRun) -> str:
    """The run's page with its settings in the address: opening it shows the run from the store."""
    settings = run.settings
    names = ("source", "mnist_index", "cifar_index") if run.kind == "pair" else ("source", "pairs")
    shown = {name.removesuffix("_index"): settings[name] for name in names}
    query = urlencode({**shown, "epochs": run.target_epochs, **{k: settings[k] for k in ("lr", "alpha", "seed")}})
    if run.kind == "pair":  # Mix & Train offers other networks; the Batch study trains the seed's
        query += "&" + urlencode({"latent": settings["latent_channels"], "width": settings["width"]})
    return f"./{'batch_study' if run.kind == 'study' else ''}?{query}"


def network_name(settings: dict) -> str:
    architecture = Architecture(settings["latent_channels"], settings["width"])
    return (
        "the seed's"
        if architecture.is_seed
        else f"latent {architecture.latent_channels}, width {architecture.width:g}x"
    )


def table_rows(stored: list[StoredRun]) -> list[dict]:
    return [
        {
            "Open": link(run),
            "Kind": KINDS[run.kind],
            "Data": reporting.run_what(run.settings),
            "Network": network_name(run.settings),
            "Epochs": run.epochs,
            "Stopped": run.epochs < run.target_epochs,
            "Learning rate": run.settings["lr"],
            "α": run.settings["alpha"],
            "Seed": run.settings["seed"],
            **{title: run.scores[key] for key, title in SCORE_COLUMNS.items()},
            "Trained": reporting.when(run.trained_at),
            "MB": run.bytes / 1e6,
            "Id": run.id,
        }
        for run in stored
    ]


@st.cache_resource(show_spinner=False, max_entries=2 * MAX_COMPARED)
def loaded(run: StoredRun):
    """A stored run's job, read once for each time it was trained (`trained_at` is part of the key)."""
    return runs.load(run, in_child_process=True)


def compare(chosen: list[StoredRun]) -> None:
    compared = []  # (run, its job, its name)
    for run in chosen:
        try:
            job = loaded(run)
        except DataUnavailable as error:
            st.warning(f"Run {run.id} cannot be shown here: {error}", icon=":material/warning:")
            continue
        if job is not None:
            name = f"{reporting.run_what(run.settings)}, lr {run.settings['lr']:g}, seed {run.settings['seed']}"
            compared.append((run, job, name))
    if not compared:
        return
    st.subheader(f"{len(compared)} runs side by side")
    seed = reporting.SEED_RESULTS
    seed_row = {
        "Run": "The seed's table",
        "Epochs": 10_000,
        **{
            title: seed[key.split("_")[0]][reporting.SEED_KEYS[key.split("_")[1]]]
            for key, title in SCORE_COLUMNS.items()
        },
    }
    st.dataframe(
        [
            {"Run": name, "Epochs": run.epochs, **{title: run.scores[key] for key, title in SCORE_COLUMNS.items()}}
            for run, _, name in compared
        ]
        + [seed_row],
        hide_index=True,
        column_config={title: st.column_config.NumberColumn(format="%.4f") for title in SCORE_COLUMNS.values()},
    )
    st.caption("A study's scores are the medians over its pairs.")
    loss, psnr = charts.compare_figures({name: (job.trainer.losses, job.alpha) for _, job, name in compared})
    chart_pair("compare", {"compare_loss": loss, "compare_psnr": psnr})
    for run, job, name in compared:
        results = job.results()
        title = name if run.kind == "pair" else f"{name}: its first of {len(results)} pairs"
        st.markdown(f"**{title}** · {run.epochs:,} epochs · [open]({link(run)})")
        picture_row(results[0].images())
        files = (
            reporting.study_files(job, results, run.target_epochs)
            if run.kind == "study"
            else reporting.pair_files(job, results[0], run.target_epochs)
        )
        download_row(files, key_prefix=str(run.id))


stored = runs.runs()
if not stored:
    st.info(
        "No runs stored yet. Train one on Mix & Train or the Batch study (or with the CLI) and it appears here.",
        icon=":material/info:",
    )
    st.stop()

kinds = st.pills(
    "Show", list(KINDS), format_func=KINDS.get, selection_mode="multi", default=list(KINDS), key="runs_kinds"
)
sources = sorted({run.settings["source"] for run in stored})
chosen_sources = (
    st.multiselect("Data source", sources, default=sources, key="runs_sources") if len(sources) > 1 else sources
)
shown = [run for run in stored if run.kind in kinds and run.settings["source"] in chosen_sources]
st.caption(
    f"{len(shown)} of {len(stored)} runs. Click a column's title to sort; tick two to {MAX_COMPARED} rows "
    "to compare them."
)
table = st.dataframe(
    table_rows(shown),
    hide_index=True,
    on_select="rerun",
    selection_mode="multi-row",
    key="runs_table",
    column_config={
        "Open": st.column_config.LinkColumn("Open", display_text="Open", help="The run on its page, from its link"),
        "Stopped": st.column_config.CheckboxColumn(help="Stopped short of the epochs it was asked to train"),
        "Learning rate": st.column_config.NumberColumn(format="%.4g"),
        "α": st.column_config.NumberColumn(format="%.2f"),
        **{title: st.column_config.NumberColumn(format="%.4f") for title in SCORE_COLUMNS.values()},
        "MB": st.column_config.NumberColumn(format="%.1f"),
    },
)
selected = [shown[row] for row in table.selection.rows if row < len(shown)]

if os.environ.get(DELETE_SWITCH) == "1":
    if selected and st.button(f"Delete the {len(selected)} selected runs", icon=":material/delete:", key="runs_delete"):
        for run in selected:
            runs.delete(run)
        st.rerun()
else:
    st.caption(
        f"Deleting runs from this page is off on this server ({DELETE_SWITCH}=1 turns it on); "
        "`python -m ae_core runs delete ID` always can."
    )

if len(selected) > MAX_COMPARED:
    st.warning(
        f"Choose at most {MAX_COMPARED} runs to compare ({len(selected)} are ticked).", icon=":material/warning:"
    )
elif len(selected) == 1:
    st.info("Tick one more run to compare it with.", icon=":material/info:")
elif selected:
    compare(selected)
