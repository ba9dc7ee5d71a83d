"""Streamlit pieces shared by the pages: image rows, the full-dataset download panel, and noticing that
a browser session has gone away."""
import os
import sys
import threading
from typing import Callable

import streamlit as st
import torch
from streamlit import runtime
from streamlit.runtime.scriptrunner import get_script_run_ctx

from ae_core import data, reporting
from ae_core.data import DataUnavailable


def picture_row(images: dict[str, torch.Tensor | None]) -> None:
    """Left to right in six columns; None leaves a column empty so rows line up."""
    for col, (name, image) in zip(st.columns(6), images.items()):
        if image is not None:
            col.image(reporting.to_picture(image), caption=reporting.IMAGE_TITLES.get(name, name), width="stretch")


def download_panel(key: str) -> None:
    """Offers the full datasets while they are missing; a failure says why and changes nothing else."""
    missing = [name for name in data.DATASETS if not data.is_downloaded(name)]
    if not missing:
        return
    st.info(f"The full {' and '.join(missing)} are not downloaded yet (about 230 MB in all, into "
            f"`{data.data_dir()}`). The sample pack works meanwhile.")
    if st.button("Download the full datasets", icon=":material/download:", key=key):
        bar = st.progress(0.0, text="Connecting…")

        def show(what, done, total):
            bar.progress(min(done / total, 1.0) if total else 0.0,
                         text=f"Downloading {what}: {done / 1e6:.1f} of {total / 1e6:.1f} MB")
        try:
            for name in missing:
                data.download(name, on_progress=show)
        except DataUnavailable as error:
            st.error(f"Download failed: {error}")
        else:
            st.rerun()


def client_gone() -> Callable[[], bool]:
    """A `should_stop` poll for training: true once no browser is connected to this session.

    Streamlit keeps a disconnected session running for `server.disconnectedSessionTTL` (two minutes)
    in case its tab reconnects, so without this a closed tab would keep training for nobody. A tab
    that does reconnect finds everything learned until then.
    """
    context = get_script_run_ctx()
    if context is None or not runtime.exists():   # AppTest and bare mode have no clients to lose
        return lambda: False
    instance, session_id = runtime.get_instance(), context.session_id
    return lambda: not instance.is_active_session(session_id)


def lower_this_threads_priority() -> None:
    """Nice the calling thread (Linux), so that while sessions train, the server still answers page
    loads promptly. It is Streamlit's script thread for this one run: an unprivileged process cannot
    raise a priority again, and the thread ends with the run."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass


# A run is a dict in st.session_state with at least "key" (the settings it was started with) and
# "trainer". It is stored before it trains, so a rerun (Stop) that starts while the interrupted run is
# still unwinding already finds it.
def shown_run(name: str) -> dict | None:
    """The newest run that learned something: one that diverged or stopped before its first epoch
    leaves the one before it on the page."""
    newest = st.session_state.get(name)
    if newest is not None and newest["trainer"].epochs_done:
        return newest
    return st.session_state.get(f"{name}_before")


def start_run(name: str, run: dict) -> None:
    st.session_state[f"{name}_before"] = shown_run(name)
    st.session_state[name] = run
