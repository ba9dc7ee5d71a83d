"""The app server's memory: its process tree's PSS after one visit, and while eight sessions train.

Streamlit Community Cloud gives an app roughly 690 MB to 2.7 GB. The bars: at most 800 MB after one
visit and at most 2 GB with eight sessions training. Memory is the proportional set size (shared
pages split among their users) of `streamlit run` and every process under it: the training process
server and its children. Chromium's own processes are not counted.

Run from the repository root: `python -m benchmarks.server_memory` (Debian's /usr/bin/chromium).
"""

import argparse
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.browser import CHROMIUM, FLAGS, memory_mb, set_number, streamlit_server
from tests.browser import main as app_area

VISIT_BAR_MB, EIGHT_BAR_MB = 800, 2000


def open_tab(browser, url: str):
    tab = browser.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    tab.goto(url)
    tab.get_by_role("spinbutton", name="Epochs", exact=True).wait_for(timeout=120_000)
    return tab


def settled_mb(pid: int, settle_s: float = 4.0) -> float:
    """The tree's memory once it has been left alone for `settle_s` (the fork server starts in the background)."""
    time.sleep(settle_s)
    return memory_mb(pid)


def measure(sessions: int, epochs: int) -> dict:
    with (
        tempfile.TemporaryDirectory() as folder,
        streamlit_server(Path(folder)) as (url, _, server),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        figures = {"fresh server": settled_mb(server.pid, 1.0)}
        visitor = open_tab(browser, url)
        figures["after one visit"] = settled_mb(server.pid)
        set_number(visitor, "Epochs", epochs)
        app_area(visitor).get_by_role("button", name="Train", exact=True).click()
        visitor.get_by_text(f"Results after {epochs:,} epochs").wait_for(timeout=300_000)
        figures[f"after that visit trained {epochs:,} epochs"] = settled_mb(server.pid)
        visitor.context.close()
        tabs = [open_tab(browser, url) for _ in range(sessions)]
        for tab in tabs:
            set_number(tab, "Epochs", 100_000)
        for tab in tabs:
            app_area(tab).get_by_role("button", name="Train", exact=True).click()
        for tab in tabs:
            tab.get_by_text("epochs/s").wait_for(timeout=120_000)
        figures[f"{sessions} sessions training (most of 5 samples)"] = max(
            settled_mb(server.pid, 1.0) for _ in range(5)
        )
        browser.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2000, help="what the first visit trains")
    args = parser.parse_args()
    figures = measure(args.sessions, args.epochs)
    for what, mb in figures.items():
        print(f"{what:<45} {mb:7.0f} MB")
    visit = figures["after one visit"]
    training = figures[f"{args.sessions} sessions training (most of 5 samples)"]
    print(f"bars: after one visit {visit:.0f} <= {VISIT_BAR_MB} MB: {'met' if visit <= VISIT_BAR_MB else 'NOT met'}; ")
    print(
        f"      {args.sessions} training {training:.0f} <= {EIGHT_BAR_MB} MB: "
        f"{'met' if training <= EIGHT_BAR_MB else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
