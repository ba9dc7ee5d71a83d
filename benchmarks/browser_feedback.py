"""How fast Mix & Train answers in a real browser, with the bare engine timed side by side.

Each round starts a fresh `streamlit run` on a loopback port and drives it with Debian's Chromium:
  * first visit: from the page's request to an interactive Train (the Epochs input shown);
  * first update: from the Train click to the first live images (the reconstruction shown);
  * results: from the Train click to the results of the seed's 10,000 epochs, live images included;
both timed in the page, from the click it receives to the change entering it. Each round comes
between two runs of `Experiment.train` alone on the same pair in this process. The bars: a first
visit within 4 s, a first update within 1 s, results within 1.2 times `Experiment.train`.

Run from the repository root: `python -m benchmarks.browser_feedback [--rounds 5] [--epochs 10000]`.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from ae_core import Experiment, load_pair
from tests.browser import CHROMIUM, FLAGS, set_number, streamlit_server
from tests.browser import main as app_area

FIRST_VISIT_BAR_S, FIRST_UPDATE_BAR_S, RESULTS_BAR_RATIO = 4.0, 1.0, 1.2

# Records, in the page, when the Train click arrives and when the frame that first shows the
# reconstruction, and then the results, is drawn (the next animation frame after the change enters the
# page): Playwright's polling from Python noticed the results 0.3 to 0.6 s after they entered a page
# busy redrawing its live view, and its checks before a click take a while on such a page too.
# textContent, not innerText, which would lay the page out at every change.
WATCH = """results => {
    const stamps = window.stamps = {}, seen = {};
    const stamp = (name, shown) => {
        if (!seen[name] && shown()) {
            seen[name] = true;
            requestAnimationFrame(() => { stamps[name] = performance.now(); });
        }
    };
    document.addEventListener("click", () => { stamps.clicked ??= performance.now(); }, {capture: true});
    new MutationObserver((_, observer) => {
        stamp("first update", () => [...document.querySelectorAll('[data-testid="stImage"]')]
            .some(element => element.textContent.includes("Reconstructed mix")));
        stamp("results", () => document.body.textContent.includes(results));
        if (seen.results) observer.disconnect();
    }).observe(document.body, {childList: true, subtree: true, characterData: true});
}"""


def app_round(epochs: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as folder,
        streamlit_server(Path(folder)) as (url, _, _),
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1800})
        started = time.perf_counter()
        page.goto(url)
        page.get_by_role("spinbutton", name="Epochs", exact=True).wait_for(timeout=120_000)
        first_visit = time.perf_counter() - started
        set_number(page, "Epochs", epochs)
        page.wait_for_timeout(2000)  # the fork server's start, in the background, is not part of a click
        results_text = f"Results after {epochs:,} epochs"
        page.evaluate(WATCH, results_text)
        app_area(page).get_by_role("button", name="Train", exact=True).click()
        stamps = page.wait_for_function("window.stamps.results && window.stamps", timeout=600_000).json_value()
        browser.close()
    after_click = {name: (stamps[name] - stamps["clicked"]) / 1000 for name in ("first update", "results")}
    return {"first visit": first_visit, **after_click}


def core_seconds(epochs: int) -> float:
    experiment = Experiment(*load_pair("sample", 0, 0))
    started = time.perf_counter()
    experiment.train(epochs)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    # This machine's speed drifts within a minute (Experiment.train took 2.9 to 4.5 s in one run), so
    # each round's app is set against the mean of the engine's runs just before and just after it.
    rounds, before = [], core_seconds(args.epochs)
    for number in range(1, args.rounds + 1):
        measured = app_round(args.epochs)
        after = core_seconds(args.epochs)
        measured["Experiment.train"], before = (before + after) / 2, after
        rounds.append(measured)
        print(f"round {number}: " + ", ".join(f"{name} {s:.2f} s" for name, s in measured.items()), flush=True)
    median = {name: statistics.median(r[name] for r in rounds) for name in rounds[0]}
    ratio = statistics.median(r["results"] / r["Experiment.train"] for r in rounds)
    print(
        f"medians over {args.rounds} rounds: first visit {median['first visit']:.2f} s (bar {FIRST_VISIT_BAR_S:g}), "
        f"first update {median['first update']:.2f} s (bar {FIRST_UPDATE_BAR_S:g}), results of {args.epochs:,} "
        f"epochs {median['results']:.2f} s against Experiment.train {median['Experiment.train']:.2f} s: "
        f"{ratio:.2f}x (bar {RESULTS_BAR_RATIO:g}x)"
    )


if __name__ == "__main__":
    main()
