"""Streamlit pieces shared by the pages: entering through the app's navigation, settings read from and
written to the page's link, the settings form, image rows, the full-dataset download panel, noticing
that a browser session has gone away, and the runs and sweeps the pages keep (one typed shape each)
trained live, with the step buttons that continue them, and kept in the run store.

Nothing here imports torch, nor does the server: its trainers train and compute in child processes
(ae_core/worker.py)."""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st
from streamlit import runtime
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import StopException, get_script_run_ctx

from ae_core import data, reporting, store
from ae_core.architecture import LATENT_CHANNELS, SEED_ARCHITECTURE, WIDTHS, Architecture
from ae_core.data import DataUnavailable
from ae_core.experiment import Experiment, PairResult
from ae_core.mixing import SEED_ALPHA, check_alpha
from ae_core.progress import DIVERGED, STOPPED, Progress
from ae_core.settings import SEED_EPOCHS, SEED_LR, check_epochs, check_lr, engine_for
from ae_core.study import MAX_PAIRS, Study, check_pairs
from ae_core.sweep import SWEEPABLE, Sweep
from ae_core.worker import TrainingFailed

if TYPE_CHECKING:
    from plotly.graph_objects import Figure
    from streamlit.delta_generator import DeltaGenerator

    from ae_core.worker import RemoteTrainer

MAX_EPOCHS = 100_000
STUDY_EPOCHS = 2_000  # a study's default: about half a minute for 16 pairs on a laptop CPU; the seed trains 10,000
# How often a live training reports (its progress bar, and the moment a Stop click takes effect) and
# how often it redraws its images and charts, which the browser draws on the same cores as the training
# on a laptop: redrawn every 0.45 s, the seed's 10,000 epochs took 1.58 times as long as in place; every
# 0.75 s, 1.37 (`python -m benchmarks.browser_feedback`, 5 and 3 rounds, both with training at nice 19).
REPORT_EVERY_S = 0.25
LIVE_VIEW_EVERY_S = 0.75
STEPS = (100, 1_000)  # the step buttons: continue the run by this many epochs
MAX_LIVE_VIEWS = 2  # sessions of one server drawing their live views at once (_LiveViews)


def through_the_app_navigation() -> None:
    """Each page calls this first. Until something in a server process has run streamlit_app.py,
    Streamlit (1.67) serves a page link by running that page file alone, under navigation made from
    the `pages/` folder (file names, no page config): what a shared link opened after a restart
    would show. `st.navigation` clears that class-wide flag; clearing it here and rerunning runs the
    page through the app's own navigation, which finds it by the same URL path. Only a session's
    first run does this: a rerun would drop a click, and AppTest sets the flag again before every
    run, while a real server sets it once."""
    if getattr(PagesManager, "uses_pages_directory", False) and not st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def as_sentence(error: ValueError) -> str:
    """An ae_core check's message ("epochs must be ...") as a sentence for the page; only the first
    letter changes, since the message may quote what the user typed."""
    text = str(error)
    return text[:1].upper() + text[1:] + "."


def epoch_limit_problems(epochs) -> list[str]:
    """The app's own cap on epochs, below what ae_core accepts, as a sentence when it is passed."""
    return [f"Epochs must be at most {MAX_EPOCHS:,} here (got {int(epochs):,})."] if epochs > MAX_EPOCHS else []


# -- the page's link ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkSetting:
    """A setting carried in the page's address: the widget it fills, and how its text is read (raising
    ValueError, in words, for a value that is malformed or out of range)."""

    key: str
    parse: Callable[[str], object]


def whole_number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("not a whole number") from None
        if not low <= value <= high:
            raise ValueError(f"not between {low:,} and {high:,}")
        return value

    return parse


def checked_number(check: Callable[[float], float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ValueError("not a number") from None
        return check(value)

    return parse


def one_of(choices, convert: Callable[[str], object] = str) -> Callable[[str], object]:
    named = ", ".join(f"{choice:g}" if isinstance(choice, float) else str(choice) for choice in choices)

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value not in choices:
            raise ValueError(f"not one of {named}")
        return value

    return parse


EPOCHS_IN_A_LINK = whole_number(1, MAX_EPOCHS)
SEED_IN_A_LINK = whole_number(-(2**53), 2**53)  # what a number input holds exactly
LR_IN_A_LINK = checked_number(check_lr)
ALPHA_IN_A_LINK = checked_number(check_alpha)
LATENT_IN_A_LINK = one_of(list(LATENT_CHANNELS), int)
WIDTH_IN_A_LINK = one_of(list(WIDTHS), float)


def settings_from_link(page: str, link: dict[str, LinkSetting]) -> None:
    """On this page's first run in a session, put each setting of its address into its widget, in
    the order of `link` (a parser may read what an earlier one set), and say in one message what was
    ignored: unknown names, malformed or out-of-range values; those widgets keep their defaults."""
    done_key = f"{page}_link_read"
    if st.session_state.get(done_key):
        return
    st.session_state[done_key] = True
    given = st.query_params.to_dict()
    ignored = [f"“{name}” (not a setting of this page)" for name in given if name not in link]
    for name, setting in link.items():
        if name not in given:
            continue
        try:
            st.session_state[setting.key] = setting.parse(given[name])
        except (ValueError, DataUnavailable) as error:
            ignored.append(f"{name}={given[name]!r} ({str(error).split(' (got')[0].rstrip('.')})")
    if ignored:
        st.warning(
            f"Ignored in this link: {'; '.join(ignored)}. Those settings keep their defaults.",
            icon=":material/link_off:",
        )


def settings_to_link(link: dict[str, LinkSetting], leave_out=()) -> None:
    """Write the page's settings into its address (only when they changed: each write is a message to
    the browser), so that the address bar is always a link to this experiment."""
    wanted = {
        name: repr(value) if isinstance(value, float) else str(value)
        for name, setting in link.items()
        if name not in leave_out and (value := st.session_state.get(setting.key)) is not None
    }
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


# ae_core's own check of each setting (the seed needs none): what the app refuses, it refuses with its words.
_SETTING_CHECKS = {
    "pairs": lambda pairs: check_pairs(int(pairs)),
    "epochs": lambda epochs: check_epochs(int(epochs)),
    "lr": check_lr,
    "alpha": check_alpha,
}


def training_settings(key_prefix: str, default_epochs: int, seed_help: str, with_pairs: bool = False) -> tuple:
    """The training settings in one row of number inputs, keyed `{key_prefix}epochs` and so on, the
    seed's values as defaults; returns (chosen, problems), a sentence for each setting that is wrong."""
    row = st.container(horizontal=True, key=f"settings_row_{key_prefix}")  # see the stylesheet
    chosen, problems = {}, []
    if with_pairs:
        chosen["pairs"] = row.number_input(
            "Pairs", value=16, step=1, key=f"{key_prefix}pairs", help=f"1 to {MAX_PAIRS}"
        )
    chosen["epochs"] = row.number_input(
        "Epochs",
        value=default_epochs,
        step=1000,
        key=f"{key_prefix}epochs",
        help=f"The seed trains {SEED_EPOCHS:,} epochs; at most {MAX_EPOCHS:,} here.",
    )
    chosen["lr"] = row.number_input("Learning rate", value=SEED_LR, step=1e-4, format="%.4g", key=f"{key_prefix}lr")
    chosen["alpha"] = row.number_input(
        "Mix weight α (MNIST share)", value=SEED_ALPHA, step=0.05, format="%.2f", key=f"{key_prefix}alpha"
    )
    chosen["seed"] = row.number_input("Seed", value=0, step=1, key=f"{key_prefix}seed", help=seed_help)
    for name, check in _SETTING_CHECKS.items():
        try:
            if name in chosen:
                check(chosen[name])
        except ValueError as error:
            problems.append(as_sentence(error))
    return chosen, problems + epoch_limit_problems(chosen["epochs"])


SELECT_PX = 180  # "64 (the seed's)" whole: a quarter of a 900-pixel window's main area showed "64 (the s"


def network_choice(key_prefix: str) -> Architecture:
    """The network's latent channels and width, keyed `{key_prefix}latent_channels` and `{key_prefix}width`:
    at first the last one chosen on any page (st.session_state["network"]), else the seed's. Says so when
    the choice is not the seed's network."""
    latest = st.session_state.get("network", SEED_ARCHITECTURE)
    st.session_state.setdefault(f"{key_prefix}latent_channels", latest.latent_channels)
    st.session_state.setdefault(f"{key_prefix}width", latest.width)
    row = st.container(horizontal=True, vertical_alignment="bottom")  # in a narrow window the note goes under
    latent = row.selectbox(
        "Latent channels",
        LATENT_CHANNELS,
        format_func=lambda channels: (
            f"{channels} (the seed's)" if channels == SEED_ARCHITECTURE.latent_channels else str(channels)
        ),
        key=f"{key_prefix}latent_channels",
        help="The bottleneck holds this many channels of 2 x 2 numbers",
        width=SELECT_PX,
    )
    width = row.selectbox(
        "Width",
        WIDTHS,
        format_func=lambda width: f"{width:g}x (the seed's)" if width == SEED_ARCHITECTURE.width else f"{width:g}x",
        key=f"{key_prefix}width",
        help="x the seed's 16 and 32 channels of the outer layers",
        width=SELECT_PX,
    )
    architecture = st.session_state["network"] = Architecture(latent, width)
    if not architecture.is_seed:
        how = (
            "It trains on the fast engine"
            if engine_for("fast", architecture) == "fast"
            else "It trains as grouped convolutions with autograd (the fast engine is written for the seed's "
            "16 and 32 outer channels)"
        )
        row.caption(
            f":material/info: Not the seed's network: {architecture.describe()}. {how}, and its results are not "
            "the seed's experiment."
        )
    return architecture


def dataset_source(key: str) -> tuple[str, list[str]]:
    """The radio choosing where a study's pairs come from, with the download panel for the full
    datasets; returns (source, problems)."""
    source = st.radio("Data source", list(data.SOURCES), format_func=data.SOURCES.get, key=key, horizontal=True)
    problems = []
    if source != "sample":
        download_panel(key=f"{key}_download")
        try:
            data.collection_size(data.MNIST, source), data.collection_size(data.CIFAR10, source)
        except DataUnavailable as error:
            problems.append(str(error))
    return source, problems


PICTURE_PX = 136  # six cells and their gaps fit the main area of a 1,400-pixel window beside the sidebar


def picture_row(
    images: dict[str, np.ndarray],
    under: Callable[[str, DeltaGenerator], None] | None = None,
    per_group: int = 3,
    cell_px: int = PICTURE_PX,
) -> None:
    """Left to right in groups of `per_group` cells of `cell_px`, which a narrower window shows one
    over the other, centred (the inputs over what came back), so that no score is cut short; `under(name,
    cell)` draws what belongs under a picture. In six equal columns, a 900-pixel window left each 66
    pixels and cut every score to its first digit."""
    row = st.container(horizontal=True, gap="medium", horizontal_alignment="center")
    named = list(images.items())
    for first in range(0, len(named), per_group):
        group = row.container(horizontal=True, width="content", wrap=False)
        for name, image in named[first : first + per_group]:
            cell = group.container(width=cell_px)
            cell.image(reporting.to_picture(image), caption=reporting.IMAGE_TITLES.get(name, name), width="stretch")
            if under is not None:
                under(name, cell)


def chart_pair(row_key: str, figures: dict[str, Figure], **options) -> None:
    """Two charts (element key: figure) side by side, each at least 400 pixels wide, or one over the
    other, each the main area's width (the stylesheet's rule for `chart_pair_` rows): in two columns a
    900-pixel window left each chart 212 pixels."""
    row = st.container(horizontal=True, key=f"chart_pair_{row_key}")
    for key, figure in figures.items():
        row.plotly_chart(figure, key=key, **options)


def download_row(files: list[reporting.FileToSave], key_prefix: str | None = None) -> None:
    """A download button per file, side by side and wrapping in a narrow window. Each file is made
    when its button is clicked (`file.make`, on a thread of Streamlit's own), not at every rerun:
    together a pair's files took a rerun's time, the weights' torch.save most."""
    row = st.container(horizontal=True)
    for file in files:
        key = None if key_prefix is None else f"{key_prefix}_{file.name}"
        row.download_button(file.label, file.make, file.name, file.mime, on_click="ignore", key=key)


def download_panel(key: str) -> None:
    """Offers the full datasets while they are missing; a failure says why and changes nothing else."""
    missing = [name for name in data.DATASETS if not data.is_downloaded(name)]
    if not missing:
        return
    st.info(
        f"The full {' and '.join(missing)} are not downloaded yet (about 230 MB in all, into "
        f"`{data.data_dir()}`). The sample pack works meanwhile."
    )
    if st.button("Download the full datasets", icon=":material/download:", key=key):
        bar = st.progress(0.0, text="Connecting…")

        def show(what, done, total):
            bar.progress(
                min(done / total, 1.0) if total else 0.0,
                text=f"Downloading {what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB",
            )

        try:
            for name in missing:
                data.download(name, on_progress=show)
        except DataUnavailable as error:
            st.error(f"Download failed: {error}")
        else:
            st.rerun()


def _client_gone() -> Callable[[], bool]:
    """A `should_stop` poll for training: true once no browser is connected to this session.

    Streamlit keeps a disconnected session running for `server.disconnectedSessionTTL` (two minutes)
    in case its tab reconnects, so without this a closed tab would keep training for nobody. A tab
    that does reconnect finds everything learned until then.
    """
    context = get_script_run_ctx()
    if context is None or not runtime.exists():  # AppTest and bare mode have no clients to lose
        return lambda: False
    instance, session_id = runtime.get_instance(), context.session_id
    return lambda: not instance.is_active_session(session_id)


@dataclass(eq=False)
class Run:
    """A training a page shows, the same shape on every page, kept in st.session_state under the
    page's name. It is stored before it trains, so that a rerun (Stop) that starts while the
    interrupted training is still handing its state back already finds it."""

    key: tuple  # the settings it was started with: other settings start another run
    job: Experiment | Study  # what it trains: `trainer`, and `results()` of its pairs
    target_epochs: int = 0  # what the last Train asked for
    previous: Run | None = None  # the run shown before it, until this one has learned something
    stopped: bool = False  # by Stop (the page's or the toolbar's) or a closed tab, not by another click
    loaded_from: store.StoredRun | None = None  # the run store's row, until this session trains it
    not_kept: str = ""  # why the run store did not keep it, where it did not
    _scored: tuple[int, list[PairResult]] | None = None  # (epochs done, results) when last scored
    _frames_scored: dict[int, PairResult] = field(default_factory=dict)  # a timeline frame's epoch -> results

    @property
    def trainer(self) -> RemoteTrainer:
        return self.job.trainer

    @property
    def interrupted(self) -> bool:
        """Short of its target without having diverged: stopped by Stop, a closed tab or a training
        process that died. (Not the trainer's status, which a rerun may read while the interrupted
        training is still handing its state back.)"""
        return self.trainer.status != DIVERGED and self.trainer.epochs_done < self.target_epochs

    def results(self) -> list[PairResult]:
        """Each pair's results at the epochs done, scored once for each number of epochs."""
        if self._scored is None or self._scored[0] != self.trainer.epochs_done:
            self._scored = (self.trainer.epochs_done, self.job.results())
        return self._scored[1]

    def score_new_frames(self) -> None:
        """Score a single pair's timeline frames that came since (a study's are not shown scored)."""
        if isinstance(self.job, Experiment):
            self.frame_results()

    def frame_results(self) -> list[tuple[int, PairResult]]:
        """(epoch, results) of each frame of a single pair's timeline, each frame scored once."""
        frames = list(self.trainer.timeline.frames)  # a copy: a training may add frames meanwhile
        # Only the frames kept: the timeline drops some as it grows, and the results of each hold its images.
        self._frames_scored = {
            frame.epoch: self._frames_scored.get(frame.epoch) or self.job.result(frame.outputs[0]) for frame in frames
        }
        return list(self._frames_scored.items())


# -- the run store -------------------------------------------------------------------------------------
@st.cache_resource(show_spinner=False)
def _run_store(path: str) -> store.RunStore:
    return store.RunStore(path)


def run_store() -> store.RunStore:
    """This server's run store (one per data folder), its notices said once to each session."""
    runs = _run_store(str(store.store_path()))
    said = st.session_state.setdefault("store_messages_said", set())
    for message in (runs.notice, runs.problem):
        if message and message not in said:
            st.warning(message, icon=":material/database:")
            said.add(message)
    return runs


def open_stored(name: str, key: tuple, settings: dict | None) -> Run | None:
    """The run store's run of `settings`, made the page's run kept under `name` (the one shown until
    now becomes its `previous`); None where none is stored or its data cannot be loaded here."""
    runs = run_store()
    found = runs.find(settings) if settings is not None and runs.on else None
    if found is None:
        return None
    try:
        job = runs.load(found, in_child_process=True)
    except DataUnavailable:
        return None
    if job is None:
        return None
    shown = shown_run(name)
    if shown is not None:
        shown.previous = None  # one earlier run is kept, not a chain of them
    run = Run(key, job, found.target_epochs, shown, found.status == STOPPED, loaded_from=found)
    st.session_state[name] = run
    return run


def stored_caption(run: Run, button: str) -> None:
    """Where the shown run came from, when the run store had it (the page's `button` continues it), or
    why the store did not keep it."""
    if run.loaded_from is not None:
        st.caption(
            f":material/database: From the run store: trained on {reporting.when(run.loaded_from.trained_at)} "
            f"(run {run.loaded_from.id}); nothing was trained again. {button} continues it."
        )
    elif run.not_kept:
        st.caption(f":material/database_off: Not kept in the run store: {run.not_kept}.")


def _keep(run: Run, runs: store.RunStore) -> None:
    """Store `run` as it is now: called after every training, also one a Stop interrupted. No call of
    Streamlit's here: after a Stop click each would raise the rerun again, and nothing be stored."""
    run.loaded_from, run.not_kept = None, ""
    if not run.trainer.epochs_done or run.trainer.status == DIVERGED:
        return  # the page says why
    try:
        runs.put(run.job, run.target_epochs, run.results(), in_background=True)
    except store.NotKept as why:
        run.not_kept = str(why)


def shown_run(name: str) -> Run | None:
    """The newest run that learned something: one that diverged or stopped before its first epoch
    leaves the one before it on the page. A training that this rerun interrupted (a click reruns the
    page at once, while the training stops at its next step) hands back what it learned first: read
    before, "Stopped at epoch 4,227" once stood above results of epoch 4,483."""
    newest = st.session_state.get(name)
    if newest is not None:
        newest.trainer.wait_until_idle()
    return newest if newest is None or newest.trainer.epochs_done else newest.previous


def _rerun_after_a_toolbar_stop(run: Run) -> None:
    """Streamlit's toolbar Stop ends a script run where it is, here in the middle of a live training,
    and would leave the page on a frozen progress bar; the training has handed back what it learned
    by the time this is called. Once this script run has ended, unless a click has started another
    meanwhile, this runs the page again with its widgets as they are (no button pressed), as Streamlit
    does itself when a source file changes: the page then shows the results and where training
    stopped. A click stops a run too, but Streamlit (fast reruns) has already made the next run the
    session's current one by then: then that run draws the page, and nothing is done here.

    Streamlit has no public call for either; this reads the session's `_scriptrunner` (and its
    `_script_thread`) and `_client_state`, and does nothing where a version lacks them. The browser
    test of the toolbar Stop fails if that stops working."""
    context = get_script_run_ctx()
    if context is None or not runtime.exists():  # AppTest and bare mode have no toolbar
        return
    session = runtime.get_instance().get_app_session(context.session_id)
    runner, script_thread = getattr(session, "_scriptrunner", None), threading.current_thread()
    if runner is None or getattr(runner, "_script_thread", None) is not script_thread:
        return
    run.stopped = True

    def rerun_once_ended() -> None:
        script_thread.join(timeout=30)
        for _ in range(100):  # until Streamlit has let go of the run that ended: within 5 s
            current = getattr(session, "_scriptrunner", None)
            if current is None:
                session.request_rerun(getattr(session, "_client_state", None))
                return
            if current is not runner:
                return  # a click started another run meanwhile
            time.sleep(0.05)

    threading.Thread(target=rerun_once_ended, name="rerun after the toolbar's Stop", daemon=True).start()


def _continuable(run: Run | None, key: tuple) -> bool:
    return run is not None and run.key == key and run.trainer.status != DIVERGED


def stop_button(row, name: str, key: str) -> None:
    """Stop for the run kept under `name`. The click reruns the page, which interrupts a running
    training between steps; what it learned is kept, and a step then adds to the epochs reached."""

    def stop() -> None:
        if (run := st.session_state.get(name)) is not None:
            run.stopped = True

    row.button("Stop", key=key, icon=":material/stop:", on_click=stop)


def _steps_key(name: str) -> str:
    return f"{name}_steps_requested"


def step_buttons(row, name: str) -> None:
    """One button per STEPS in `row`, each adding its epochs to the steps requested for the run
    kept under `name`. They add up in st.session_state until a training takes them
    (`stepped_target`), so a quick second click, whose rerun stops the first one's, loses nothing."""

    def request(epochs: int) -> None:
        st.session_state[_steps_key(name)] = st.session_state.get(_steps_key(name), 0) + epochs

    for epochs in STEPS:
        row.button(
            f"+{epochs:,} epochs",
            key=f"{name}_step_{epochs}",
            help=f"Continue the run by {epochs:,} epochs",
            on_click=request,
            args=(epochs,),
        )


def stepped_target(name: str, key: tuple) -> tuple[int | None, list[str]]:
    """The epochs to train the run kept under `name` to for the steps requested (None where none are),
    or None and a sentence where that would pass MAX_EPOCHS. Steps continue a
    run with settings `key` from the epochs it reached if it was stopped, else from its target: a
    step clicked while another trains (the click stops it) adds to that training's target."""
    requested = st.session_state.get(_steps_key(name), 0)
    if not requested:
        return None, []
    run = st.session_state.get(name)
    if not _continuable(run, key):
        run = shown_run(name)
    base = 0
    if _continuable(run, key):
        reached = run.trainer.epochs_done
        base = reached if run.stopped else max(reached, run.target_epochs)
    if base + requested > MAX_EPOCHS:
        return None, [f"+{requested:,} epochs would pass the {MAX_EPOCHS:,} epochs allowed here: refused."]
    return base + requested, []


def forget_steps(name: str) -> None:
    """Drop the steps requested for the run under `name`: a training has taken them, or was refused."""
    st.session_state.pop(_steps_key(name), None)


def train_run(
    name: str,
    key: tuple,
    new_job: Callable[[], Experiment | Study],
    target_epochs: int,
    draw_live: Callable[[Run, Progress, str], None],
    rate_unit: str,
    loss_label: str,
) -> Run | None:
    """Continue the shown run if it was started with settings `key` and has not diverged, else start
    `Run(key, new_job())`; train it live, `draw_live(run, progress, key_prefix)` drawing what it has
    learned at each report, and keep it in the run store. Returns the run to show: a run that diverged
    at once says why and leaves the one before it."""
    run = shown_run(name)
    if not _continuable(run, key):
        if run is not None:
            run.previous = None  # one earlier run is kept, not a chain of them
        run = Run(key, new_job(), previous=run)
    st.session_state[name] = run
    runs = run_store()
    try:
        _train_live(run, target_epochs, draw_live, rate_unit, loss_label)
    finally:  # a Stop too: nothing learned is lost to a reload or a restart
        _keep(run, runs)
    shown = shown_run(name)
    if shown is not run:
        st.warning(run.trainer.message, icon=":material/warning:")
    return shown


@contextmanager
def _live(share_done: float):
    """A progress bar and a slot for what is learned while something trains in a child process, both
    cleared afterwards; a training process that dies is reported on the page instead of raising. Stop
    (a rerun) interrupts the training between steps, and everything learned stays where it was."""
    bar = st.progress(min(share_done, 1.0), text="Starting…")
    view = st.empty()
    try:
        yield bar, view
    except TrainingFailed as error:
        st.error(str(error), icon=":material/error:")
    bar.empty()
    view.empty()


class _LiveViews:
    """How many sessions of this server are training live now. Live views are drawn in the server's
    own interpreter (30 ms or so each for Mix & Train's, its charts most of it); past MAX_LIVE_VIEWS
    sessions they pause, the progress bars going on, so that the server keeps answering new visitors.
    With eight sessions training (`pytest -s tests/test_browser_faults.py -k concurrent`), a new tab's
    first load took 4.7 and 7.0 s against 1.4 and 2.0 s idle with every view redrawn twice a second;
    10.4 and 3.3 s (against 2.0 and 2.1) with the views sharing two sessions' redraws, 2.5 and 9.6 s
    (1.8 and 1.7) sharing one session's, and 2.4 and 3.5 s (2.3 and 2.3) with them paused."""

    _lock = threading.Lock()
    training = 0

    @classmethod
    @contextmanager
    def one_more(cls):
        with cls._lock:
            cls.training += 1
        try:
            yield
        finally:
            with cls._lock:
                cls.training -= 1

    @classmethod
    def paused(cls) -> bool:
        return cls.training > MAX_LIVE_VIEWS


def _train_live(run: Run, target_epochs: int, draw_live: Callable, rate_unit: str, loss_label: str) -> None:
    """Train `run` up to `target_epochs` under a progress bar (rate, time left, loss) and a live view
    `draw_live(run, progress, key_prefix)` redrawn every LIVE_VIEW_EVERY_S (paused while more than
    MAX_LIVE_VIEWS sessions of this server train). The steps run in a child process, so that this
    server keeps answering other sessions while many train."""
    trainer = run.trainer
    run.target_epochs, run.stopped = target_epochs, False
    redraws = itertools.count()  # a key prefix per redraw: two identical charts would clash
    drawn_at, pause_said = -math.inf, False  # when the live view was last drawn
    with _live(trainer.epochs_done / target_epochs) as (bar, view), _LiveViews.one_more():

        def show(progress):
            nonlocal drawn_at, pause_said
            bar.progress(
                min(progress.epoch / progress.target_epochs, 1.0),
                text=f"Epoch {progress.epoch:,} / {progress.target_epochs:,} · "
                f"{progress.epochs_per_second * trainer.k:,.0f} {rate_unit}/s · "
                f"{progress.seconds_left:,.0f} s left · {loss_label} {progress.loss:.3e}",
            )
            if _LiveViews.paused():
                if not pause_said:
                    view.caption(
                        f"Live images paused while more than {MAX_LIVE_VIEWS} sessions train on this server, "
                        "so that it keeps answering; the results come as usual."
                    )
                    pause_said = True
            elif progress.epoch >= progress.target_epochs:
                pass  # the last report: the results replace the live view at once, so it is not drawn
            elif time.monotonic() - drawn_at >= LIVE_VIEW_EVERY_S - REPORT_EVERY_S / 2:  # reports come a little late
                drawn_at, pause_said = time.monotonic(), False
                with view.container():
                    draw_live(run, progress, f"live_{next(redraws)}_")
            else:
                run.score_new_frames()  # between redraws, while the training runs, not after it

        try:
            status = trainer.train(
                target_epochs,
                on_progress=show,
                should_stop=_client_gone(),
                report_every_s=REPORT_EVERY_S,
            )
        except StopException:
            _rerun_after_a_toolbar_stop(run)
            raise
        run.stopped = status == STOPPED  # the tab was closed


@dataclass(eq=False)
class SweepRun:
    """A sweep a page shows, kept in st.session_state["sweep"]: the settings it was started with and
    the sweep, which keeps every value scored when a Stop interrupts it."""

    key: tuple
    sweep: Sweep


def sweep_run(key: tuple, new_sweep: Callable[[], Sweep], figure: Callable) -> SweepRun:
    """Continue the stored sweep if it was started with settings `key`, else start `new_sweep()`; run
    it under a progress bar, with `figure(points)` of the values scored so far."""
    stored = st.session_state.get("sweep")
    if stored is None or stored.key != key:
        stored = st.session_state["sweep"] = SweepRun(key, new_sweep())
    sweep = stored.sweep
    title = SWEEPABLE[sweep.over].capitalize()
    with _live(len(sweep.points) / len(sweep.values)) as (bar, chart):
        drawn = 0  # values in the chart

        def show(index, progress):
            nonlocal drawn
            if drawn != index and sweep.points:
                chart.plotly_chart(figure(sweep.points), key=f"sweep_live_{index}")
                drawn = index
            share = (index + progress.epoch / progress.target_epochs) / len(sweep.values)
            bar.progress(
                min(share, 1.0),
                text=f"{title} {sweep.values[index]:g} ({index + 1} of "
                f"{len(sweep.values)}) · epoch {progress.epoch:,} / {progress.target_epochs:,} · "
                f"median loss {progress.loss:.3e}",
            )

        sweep.run(on_progress=show, should_stop=_client_gone())
    return stored
