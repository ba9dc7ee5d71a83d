"""Real-browser smoke test: `streamlit run` on a free loopback port, driven by Debian's Chromium."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]
if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path_factory.mktemp("streamlit") / "server.log"
    env = {**os.environ, "AE_DATA_DIR": str(log.parent / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1"],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    yield url, log
    process.terminate()
    process.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def page(server, tmp_path):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 2400})
        tab.goto(server[0])
        tab.get_by_role("spinbutton", name="Epochs").wait_for(timeout=60_000)
        yield tab
        tab.screenshot(path=str(tmp_path / "last.png"))
        browser.close()


def main(page):
    """The app's own area: Streamlit's header has a Stop button of its own."""
    return page.get_by_test_id("stMainBlockContainer")


def set_epochs(page, epochs: int) -> None:
    field = page.get_by_role("spinbutton", name="Epochs")
    field.fill(str(epochs))
    field.press("Enter")
    page.wait_for_timeout(1000)


def test_train_renders_images_chart_and_metrics(page):
    set_epochs(page, 400)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Results after 400 epochs").wait_for(timeout=60_000)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(5).wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)   # Plotly draws after the text
    assert images.count() >= 6
    page.get_by_test_id("stMetricLabel").nth(11).wait_for(timeout=30_000)
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    assert sum("PSNR" in label for label in labels) == 6 and sum("SSIM" in label for label in labels) == 6
    assert page.locator('[data-testid="stException"]').count() == 0


def test_stop_halts_training_and_keeps_what_was_learned(page):
    set_epochs(page, 100_000)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("epochs/s").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    clicked = time.monotonic()
    main(page).get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Stopped at epoch").wait_for(timeout=10_000)
    assert time.monotonic() - clicked < 10
    assert page.locator('[data-testid="stImage"] img').count() >= 6
    assert page.locator('[data-testid="stException"]').count() == 0


def test_batch_study_runs_live_and_stop_keeps_every_pairs_results(page, server):
    page.goto(server[0] + "/batch_study")
    for name, value in (("Pairs", 4), ("Epochs", 100_000)):
        field = page.get_by_role("spinbutton", name=name)
        field.fill(str(value))
        field.press("Enter")
    page.wait_for_timeout(1000)
    main(page).get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("pair-epochs/s").wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)   # the live loss band
    page.wait_for_timeout(2500)
    main(page).get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("every pair keeps what it learned").wait_for(timeout=10_000)
    page.get_by_text("4 pairs after").wait_for(timeout=30_000)
    page.locator('[data-testid="stImage"] img').nth(11).wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").nth(4).wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Results read after a Stop must be those of the trained weights (a race once gave ~14 dB here).
    best = page.locator("p", has_text="Best pair").inner_text()
    assert float(best.split("PSNR ")[1].split(" dB")[0]) > 25, best
