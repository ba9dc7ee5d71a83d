"""Real-browser smoke test: `streamlit run` on a free loopback port, driven by Debian's Chromium."""

import re
import time

import pytest
from browser import CHROMIUM, FLAGS, main, require_chromium, set_number, streamlit_server

sync_api = require_chromium()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("streamlit")) as (url, log, _):
        yield url, log


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


def test_train_renders_images_chart_and_metrics(page):
    set_number(page, "Epochs", 400)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Results after 400 epochs").wait_for(timeout=60_000)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(5).wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # Plotly draws after the text
    assert images.count() >= 6
    page.get_by_test_id("stMetricLabel").nth(11).wait_for(timeout=30_000)
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    assert sum("PSNR" in label for label in labels) == 6 and sum("SSIM" in label for label in labels) == 6
    assert page.locator('[data-testid="stException"]').count() == 0


def test_stop_halts_training_and_keeps_what_was_learned(page):
    set_number(page, "Epochs", 100_000)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("epochs/s").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)
    clicked = time.monotonic()
    main(page).get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("Stopped at epoch").wait_for(timeout=10_000)
    # The results are drawn under that message once the interrupted training has handed its state
    # back (within one engine call); the images must have come within the same 10 s of the click.
    page.locator('[data-testid="stImage"] img').nth(5).wait_for(timeout=10_000)
    assert time.monotonic() - clicked < 10
    assert page.locator('[data-testid="stImage"] img').count() >= 6
    assert page.locator('[data-testid="stException"]').count() == 0


def test_batch_study_runs_live_and_stop_keeps_every_pairs_results(page, server):
    page.goto(server[0] + "/batch_study")
    set_number(page, "Pairs", 4)
    set_number(page, "Epochs", 100_000)
    main(page).get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("pair-epochs/s").wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # the live loss band
    page.wait_for_timeout(2500)
    main(page).get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("every pair keeps what it learned").wait_for(timeout=10_000)
    page.get_by_text("4 pairs after").wait_for(timeout=30_000)
    page.locator('[data-testid="stImage"] img').nth(11).wait_for(timeout=30_000)
    page.locator(".js-plotly-plot").nth(4).wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0
    # Results read after a Stop must be those of the trained weights (a race once gave ~14 dB here).
    best = page.locator("p", has_text="Best pair").inner_text()
    psnrs = re.search(r"PSNR MNIST ([\d.]+) dB, CIFAR-10 ([\d.]+) dB", best)
    assert psnrs and min(map(float, psnrs.groups())) > 25, best


def test_a_fresh_servers_first_visit_to_a_page_link_gets_the_apps_own_navigation(tmp_path):
    """Streamlit runs a linked page file on its own, with navigation made from the `pages/` folder,
    while nothing has run streamlit_app.py yet in that server: a shared link opened after a restart."""
    with streamlit_server(tmp_path) as (url, _, _), sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        tab = browser.new_page(viewport={"width": 1500, "height": 1200})
        tab.goto(url + "/batch_study")
        tab.get_by_role("spinbutton", name="Pairs").wait_for(timeout=60_000)
        navigation = tab.get_by_test_id("stSidebarNav")
        navigation.get_by_text("Mix & Train").wait_for(timeout=30_000)
        assert "streamlit app" not in navigation.inner_text()
        assert tab.get_by_role("heading", name="Batch study").count() == 1
        browser.close()
