"""Entry point: `streamlit run streamlit_app.py`."""

import contextlib
import threading
from pathlib import Path

import streamlit as st

from ae_core import metrics, worker

STYLESHEET = Path(__file__).parent / ".streamlit" / "style.css"  # what the theme cannot say


# What a session's first scores need (scikit-image's metrics bring scipy.stats: 0.5 s), imported on a
# thread once its first page is drawn. The server imports no torch at all: the training process
# server does, started below (ae_core/worker.py).
def import_in_background() -> None:
    def work() -> None:
        # A server stopped mid-import (a test's, or Ctrl-C) breaks it with whatever error the half-torn
        # interpreter gives; a real fault shows again, on the page, where the first scores import.
        with contextlib.suppress(Exception):
            metrics.scikit_image_metrics()

    threading.Thread(target=work, name="imports after the first page", daemon=True).start()


def main() -> None:
    st.set_page_config(page_title="Autoencoder: mix & un-mix", page_icon="🧩", layout="wide")
    navigation = st.navigation(
        [
            st.Page("pages/mix_and_train.py", title="Mix & Train", icon=":material/model_training:", default=True),
            st.Page("pages/batch_study.py", title="Batch study", icon=":material/stacked_bar_chart:"),
            st.Page("pages/sweep.py", title="Sweep", icon=":material/tune:"),
            st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
            st.Page("pages/architecture.py", title="Architecture", icon=":material/account_tree:"),
            st.Page("pages/method.py", title="Method", icon=":material/functions:"),
        ]
    )
    st.html(STYLESHEET)  # style alone: Streamlit puts it where it takes no room on the page
    worker.warm_up()  # the first Train then finds the training process server ready
    navigation.run()
    if not st.session_state.get("imports_started"):
        import_in_background()
        st.session_state["imports_started"] = True


# Streamlit runs this file as `__main__`. A training process started just as another session's run
# installs it as `__main__` again re-runs it as `__mp_main__` (see ae_core.worker); there it must neither
# draw a page nor start a process server of its own.
if __name__ == "__main__":
    main()
