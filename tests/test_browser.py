"""Real-browser smoke test: `streamlit run` on a free loopback port, driven by Debian's Chromium."""

import re
import time

import pytest
from browser import CHROMIUM, FLAGS, main, require_chromium, set_number, streamlit_server, training_processes

from ae_core.training import STEPS_CALL_S
from app_widgets import REPORT_EVERY_S

sync_api = require_chromium()
# A Stop click reruns the script, which takes effect at its next progress report: up to one report
# interval away, and the engine call that runs past it. The training process then finishes the call
# under way and hands its state back before it exits (0.1 to 0.2 s measured for that last part, from
# should_stop to train() returning). That is about 0.95 s at worst; 0.25 s more, one engine call's
# worth, for the click's message and the process's turn on two busy cores. Measured from the click to
# the process gone: 0.17 to 0.43 s over 5 stops.
STOP_BOUND_S = (REPORT_EVERY_S + 2 * STEPS_CALL_S + 0.2) + STEPS_CALL_S  # 1.2 s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("streamlit")) as (url, log, process):
        yield url, log, process


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


# Scores, buttons and choices on the page whose text its box cuts short (an ellipsis, or "T." for Train).
CUT_SHORT = """() => [...document.querySelectorAll(['stMetricValue', 'stButton', 'stSelectbox']
        .map(id => `[data-testid="stMain"] [data-testid="${id}"]`).join(', '))]
    .filter(element => [element, ...element.querySelectorAll("*")]
        .some(part => part.scrollWidth > part.clientWidth + 1))
    .map(element => element.innerText)"""
# How wide each chart on the page is: in two columns a 900-pixel window left each 212 pixels.
CHART_WIDTHS = "() => [...document.querySelectorAll('.js-plotly-plot')].map(chart => chart.clientWidth)"
# How tall each input's label is, 24 pixels a line: in a quarter of a 900-pixel window's main area
# "Mix weight α (MNIST share)" took two lines.
LABEL_HEIGHTS = """() => [...document.querySelectorAll('[data-testid="stMain"] [data-testid="stWidgetLabel"]')]
    .map(label => label.getBoundingClientRect().height)"""


def squeezed(page) -> list:
    """What the page squeezes: text cut short, a label over two lines, a chart under 400 pixels."""
    return (
        page.evaluate(CUT_SHORT)
        + [f"a label {height:.0f} px tall" for height in page.evaluate(LABEL_HEIGHTS) if height > 30]
        + [f"a chart {width} px wide" for width in page.evaluate(CHART_WIDTHS) if width < 400]
    )


def train_briefly(page) -> None:
    """Train 400 epochs on Mix & Train and wait for the results' text."""
    set_number(page, "Epochs", 400)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("Results after 400 epochs").wait_for(timeout=60_000)


def test_train_renders_images_chart_and_metrics_and_a_narrow_window_squeezes_nothing(page):
    train_briefly(page)
    images = page.locator('[data-testid="stImage"] img')
    images.nth(5).wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # Plotly draws after the text
    assert images.count() >= 6
    page.get_by_test_id("stMetricLabel").nth(9).wait_for(timeout=30_000)
    labels = page.get_by_test_id("stMetricLabel").all_inner_texts()
    # Each score once: the mixed input against each original, the two un-mixed images, and the fit.
    assert labels == ["PSNR (mix)", "SSIM (mix)"] * 2 + ["PSNR", "SSIM"] * 2 + ["PSNR (fit)", "SSIM (fit)"]
    assert page.locator('[data-testid="stException"]').count() == 0
    assert squeezed(page) == []
    page.set_viewport_size({"width": 900, "height": 2400})  # a laptop's half screen, beside the sidebar
    page.wait_for_timeout(1000)
    assert squeezed(page) == []


# Each chart's margins as drawn against those its figure sets: plotly.js widens one that its labels
# or legend do not fit, after measuring them, and draws the chart a second time.
MARGINS_WIDENED = """() => [...document.querySelectorAll('.js-plotly-plot')].filter(chart =>
    ["l", "r", "t", "b"].some(side => chart._fullLayout._size[side] > chart._fullLayout.margin[side]))
    .map(chart => chart._fullLayout.title.text)"""


def test_mix_and_train_charts_fit_their_set_margins_so_each_is_drawn_once(page):
    train_briefly(page)
    page.locator(".js-plotly-plot .main-svg").nth(1).wait_for(timeout=30_000)
    for width in (1500, 900):
        page.set_viewport_size({"width": width, "height": 2400})
        page.wait_for_timeout(1000)
        assert page.evaluate(MARGINS_WIDENED) == [], width


def start_a_long_training(page) -> None:
    """Train toward 100,000 epochs, and let it run for a moment."""
    set_number(page, "Epochs", 100_000)
    main(page).get_by_role("button", name="Train", exact=True).click()
    page.get_by_text("epochs/s").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)


def test_stop_halts_training_and_keeps_what_was_learned(page, server):
    start_a_long_training(page)
    assert len(training_processes(server[2].pid)) == 1
    # From the click as the page receives it: Playwright's own checks before it clicks (the button
    # stable over two frames of a page redrawing its live view) took 0.3 to 1.7 s on a slow day.
    page.evaluate("document.addEventListener('click', () => { window.clickedAt = Date.now() }, {capture: true})")
    main(page).get_by_role("button", name="Stop", exact=True).click()
    clicked = page.evaluate("window.clickedAt") / 1000  # the same wall clock as time.time() here
    while training_processes(server[2].pid) and time.time() - clicked < 10:
        time.sleep(0.01)
    halted_s = time.time() - clicked
    print(f"Stop: the training process ended {halted_s:.2f} s after the click")
    assert halted_s < STOP_BOUND_S
    page.get_by_text("Stopped at epoch").wait_for(timeout=10_000)
    page.locator('[data-testid="stImage"] img').nth(5).wait_for(timeout=10_000)  # the results, kept
    assert page.locator('[data-testid="stException"]').count() == 0


# Animations running in the progress bar: its track's transition, if it glides to each new value.
PROGRESS_ANIMATIONS = """() => document.getAnimations()
    .filter(animation => animation.effect?.target?.closest('[data-testid="stProgress"]')).length"""


def test_the_progress_bar_steps_at_each_report_instead_of_gliding_all_along(page):
    start_a_long_training(page)
    running = []
    for _ in range(10):  # a second: four reports
        running.append(page.evaluate(PROGRESS_ANIMATIONS))
        page.wait_for_timeout(100)
    main(page).get_by_role("button", name="Stop", exact=True).click()
    assert running == [0] * 10  # gliding, it moved in 9 of 10 such samples
    page.get_by_text("Stopped at epoch").wait_for(timeout=10_000)


def reconstruction_source(page) -> str | None:
    image = page.locator('[data-testid="stImage"]', has_text="Reconstructed mix").locator("img").first
    return image.get_attribute("src") if image.count() else None


# How many pictures on the page are the original digit.
ORIGINALS_SHOWN = """() => [...document.querySelectorAll('[data-testid="stImage"]')]
    .filter(element => element.textContent.includes("Original MNIST")).length"""


def test_the_reconstruction_changes_live_and_the_slider_scrubs_through_the_timeline(page, tmp_path):
    set_number(page, "Epochs", 15000)
    main(page).get_by_role("button", name="Train", exact=True).click()
    results = page.get_by_text("Results after 15,000 epochs")
    seen, originals_shown = [], set()
    while not results.count():
        source = reconstruction_source(page)
        if source and source not in seen:
            seen.append(source)
        if source:
            originals_shown.add(page.evaluate(ORIGINALS_SHOWN))
        page.wait_for_timeout(50)
    live_sources = len(seen)
    print(f"the live reconstruction changed {live_sources - 1} times before the results")
    assert live_sources >= 4  # drawn, then changed at least three times
    assert originals_shown == {1}  # the live view took the place of the pair's pictures above it
    page.get_by_role("slider").wait_for(timeout=10_000)
    final = reconstruction_source(page)
    page.get_by_role("slider").focus()
    page.keyboard.press("Home")  # the first frame: the untrained network
    page.wait_for_function(
        """final => {
            const box = [...document.querySelectorAll('[data-testid="stImage"]')]
                .find(element => element.innerText.includes("Reconstructed mix"));
            return box && box.querySelector("img").src !== final;
        }""",
        arg=page.evaluate("src => new URL(src, location.href).href", final),
        timeout=10_000,
    )
    page.screenshot(path=str(tmp_path / "timeline_at_epoch_0.png"), full_page=True)
    assert page.get_by_test_id("stSliderThumbValue").inner_text() == "0"
    assert page.locator('[data-testid="stException"]').count() == 0


def test_the_toolbar_stop_shows_what_was_learned_and_quick_steps_each_count(page, server):
    start_a_long_training(page)
    page.get_by_test_id("stStatusWidget").get_by_role("button", name="Stop").click()  # Streamlit's own
    stopped = page.get_by_text(re.compile(r"Stopped at epoch [\d,]+ of 100,000"))
    stopped.wait_for(timeout=10_000)
    reached = int(re.search(r"epoch ([\d,]+)", stopped.inner_text()).group(1).replace(",", ""))
    page.get_by_text(f"Results after {reached:,} epochs").wait_for(timeout=10_000)
    assert not training_processes(server[2].pid)
    step = main(page).get_by_role("button", name="+100 epochs", exact=True)
    for _ in range(3):
        step.click()
        page.wait_for_timeout(150)
    page.get_by_text(f"Results after {reached + 300:,} epochs").wait_for(timeout=30_000)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_batch_study_runs_live_and_stop_keeps_every_pairs_results(page, server):
    page.goto(server[0] + "/batch_study")
    set_number(page, "Pairs", 4)
    set_number(page, "Epochs", 100_000)
    main(page).get_by_role("button", name="Run", exact=True).click()
    page.get_by_text("pair-epochs/s").wait_for(timeout=30_000)
    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=30_000)  # the live loss band
    page.get_by_text("4 · output", exact=True).wait_for(timeout=10_000)  # the live grid's last picture
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
