"""Entry point: `streamlit run streamlit_app.py`."""

import contextlib
import importlib
import threading

import streamlit as st

from ae_core import metrics, worker


# What a session's first Train and first scores need, imported on a thread once its first page is
# drawn. The pages import no torch, so a fresh server's first visit is interactive sooner: a median of
# 2.15 s against 3.28 s when the page imported torch (`python -m benchmarks.browser_feedback`, the
# same hour). Left until the first Train, the import took that click's first live images from 0.60
# to 1.91 s after it; it costs the server 260 MB until then (docs/performance.md, server memory).
def import_in_background() -> None:
    def work() -> None:
        # A server stopped mid-import (a test's, or Ctrl-C) breaks it with whatever error the half-torn
        # interpreter gives; a real fault shows again, on the page, where the first Train imports.
        with contextlib.suppress(Exception):
            importlib.import_module("ae_core.training")
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
