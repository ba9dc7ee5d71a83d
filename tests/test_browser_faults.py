"""Faults and load in a real browser: tabs closed or reloaded mid-training, many sessions at once, uploads."""

import io
import os
import signal
import time
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np
import pytest
from browser import (
    CHROMIUM,
    FLAGS,
    cpu_seconds,
    main,
    memory_mb,
    process_tree,
    require_chromium,
    set_number,
    streamlit_server,
)
from PIL import Image

sync_api = require_chromium()


@pytest.fixture(scope="module")
def playwright():
    with sync_api.sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def chromium(playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield browser
    browser.close()


def open_tab(browser, url: str):
    tab = browser.new_context(viewport={"width": 1500, "height": 2000}).new_page()
    tab.goto(url)
    tab.get_by_role("spinbutton", name="Epochs").wait_for(timeout=60_000)
    return tab


def page_load_s(browser, url: str) -> float:
    """Seconds from a new tab's request to its first input drawn."""
    started = time.monotonic()
    tab = open_tab(browser, url)
    seconds = time.monotonic() - started
    tab.context.close()
    return seconds


def start_long_training(tab) -> None:
    set_number(tab, "Epochs", 100_000)
    main(tab).get_by_role("button", name="Train", exact=True).click()
    tab.get_by_text("epochs/s").wait_for(timeout=30_000)


def server_is_idle(pid: int, settle_s: float = 3.0, window_s: float = 2.0) -> bool:
    """After `settle_s`, the server used under a quarter of one core over `window_s`."""
    time.sleep(settle_s)
    before = cpu_seconds(pid)
    time.sleep(window_s)
    return cpu_seconds(pid) - before < 0.25 * window_s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with streamlit_server(tmp_path_factory.mktemp("faults")) as running:
        yield running


def test_closing_the_tab_during_training_stops_that_training(chromium, server):
    url, _, process = server
    tab = open_tab(chromium, url)
    start_long_training(tab)
    assert not server_is_idle(process.pid, settle_s=0)  # it really was training
    tab.context.close()
    assert server_is_idle(process.pid)


def test_reloading_during_training_leaves_no_training_for_nobody_and_the_page_works(chromium, server):
    url, log, process = server
    tab = open_tab(chromium, url)
    start_long_training(tab)
    tab.reload()
    tab.get_by_role("spinbutton", name="Epochs").wait_for(timeout=30_000)
    tab.wait_for_timeout(1500)
    if tab.get_by_text("epochs/s").count():  # the session survived the reload: its training shows
        main(tab).get_by_role("button", name="Stop", exact=True).click()
        tab.get_by_text("Stopped at epoch").wait_for(timeout=10_000)
    assert server_is_idle(process.pid)
    set_number(tab, "Epochs", 200)
    main(tab).get_by_role("button", name="Train", exact=True).click()
    tab.get_by_text("Results after 200 epochs").wait_for(timeout=60_000)
    assert tab.locator('[data-testid="stException"]').count() == 0
    tab.context.close()


def png_bytes(array: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(tab, label: str, name: str, content: bytes, mime: str) -> None:
    # Found by its label, not by position: while a rerun redraws the uploaders, the n-th file input
    # on the page can for a moment be another uploader's.
    uploader = tab.get_by_test_id("stFileUploader").filter(has_text=label)
    uploader.get_by_test_id("stFileUploaderDropzoneInput").set_input_files(
        files=[{"name": name, "mimeType": mime, "buffer": content}]
    )


def test_uploads_are_converted_or_refused_with_a_reason(chromium, server):
    tab = open_tab(chromium, server[0])
    tab.get_by_text("Uploaded images").click()
    tab.get_by_test_id("stFileUploader").filter(has_text="Photo image").wait_for(timeout=30_000)
    upload(tab, "Digit image", "notes.png", b"this is not an image", "image/png")
    tab.get_by_text("notes.png was refused").wait_for(timeout=30_000)
    gradient = np.tile(np.linspace(0, 255, 40, dtype=np.uint8), (30, 1))
    upload(tab, "Digit image", "digit.png", png_bytes(gradient, "L"), "image/png")  # grayscale
    tab.get_by_text("was refused").wait_for(state="detached", timeout=30_000)  # the rerun is done
    upload(tab, "Photo image", "photo.png", png_bytes(np.dstack([gradient] * 3), "RGBA"), "image/png")  # with alpha
    tab.get_by_text("Mixed input").wait_for(timeout=30_000)
    assert tab.get_by_text("was refused").count() == 0
    set_number(tab, "Epochs", 150)
    main(tab).get_by_role("button", name="Train", exact=True).click()
    tab.get_by_text("Results after 150 epochs").wait_for(timeout=60_000)
    assert tab.locator('[data-testid="stException"]').count() == 0
    # The user's own pictures stay in this session: not in the run store, not in the link.
    tab.get_by_text("Not kept in the run store: runs on uploaded images").wait_for(timeout=10_000)
    assert "source=upload" in tab.url and "mnist=" not in tab.url and "cifar=" not in tab.url
    tab.context.close()


@pytest.fixture(scope="module")
def warm_server(tmp_path_factory, chromium):
    """A server that has trained once (libraries loaded), with a short reconnect window so that ended
    sessions are let go within a test."""
    with streamlit_server(tmp_path_factory.mktemp("load"), "--server.disconnectedSessionTTL=2") as running:
        url = running[0]
        warm = open_tab(chromium, url)
        set_number(warm, "Epochs", 100)
        main(warm).get_by_role("button", name="Train", exact=True).click()
        warm.get_by_text("Results after 100 epochs").wait_for(timeout=60_000)
        warm.context.close()
        yield running


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended meanwhile
        return b""


@contextmanager
def remote_browser(playwright):
    """A Chromium whose processes can be paused: the other users of a server sit at browsers on other
    machines, which cost it no CPU. Paused, this one neither renders nor competes with the server
    for the two cores here; its connections stay open, and it catches up once resumed."""
    marker = f"--ae-remote-browser-{os.getpid()}"  # an unknown switch, to find its process
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, marker])
    marked = [
        int(cmdline.parent.name)
        for cmdline in Path("/proc").glob("[0-9]*/cmdline")
        if marker.encode() in _read_or_empty(cmdline)
    ]
    processes = {pid for root in marked for pid in process_tree(root)}

    def pause(paused: bool) -> None:
        for pid in processes:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP if paused else signal.SIGCONT)

    try:
        yield browser, pause
    finally:
        pause(False)
        browser.close()


def train_together(playwright, chromium, url: str, sessions: int, pid: int) -> tuple[float, float]:
    """`sessions` tabs train different epoch counts at once; a new tab loads meanwhile. Each must end
    with its own count and no exception. Returns (page load seconds, memory while they trained)."""
    with remote_browser(playwright) as (remote, pause):
        tabs = [open_tab(remote, url) for _ in range(sessions)]
        # About 10 s of training on two cores, so that all are still training while a page loads.
        epochs = [30_000 // sessions + 10 * i for i in range(sessions)]
        for tab, count in zip(tabs, epochs):
            set_number(tab, "Epochs", count)
        for tab in tabs:
            main(tab).get_by_role("button", name="Train", exact=True).click()
        for tab in tabs:
            tab.get_by_text("epochs/s").wait_for(timeout=60_000)
        pause(True)
        load_s = page_load_s(chromium, url)
        training_mb = memory_mb(pid)
        pause(False)
        for tab, count in zip(tabs, epochs):
            tab.get_by_text(f"Results after {count:,} epochs").wait_for(timeout=300_000)
            assert tab.locator('[data-testid="stException"]').count() == 0
        for tab in tabs:
            tab.context.close()
    return load_s, training_mb


@pytest.mark.parametrize("sessions", [2, 8])
def test_concurrent_sessions_each_finish_with_their_own_results_and_the_server_answers(
    playwright, chromium, warm_server, sessions
):
    url, _, process = warm_server
    assert server_is_idle(process.pid)
    memory = [memory_mb(process.pid)]
    loads, idle_loads = [], []
    for _ in range(2):
        idle_loads.append(page_load_s(chromium, url))
        load_s, training_mb = train_together(playwright, chromium, url, sessions, process.pid)
        assert server_is_idle(process.pid, settle_s=5)  # every training ended with its session
        loads.append(load_s)
        memory += [training_mb, memory_mb(process.pid)]
    print(
        f"{sessions} sessions, two rounds: page load {loads[0]:.2f} and {loads[1]:.2f} s while they trained, "
        f"{idle_loads[0]:.2f} and {idle_loads[1]:.2f} s just before on the idle server; "
        f"memory (PSS, server and its processes) {' -> '.join(f'{mb:.0f}' for mb in memory)} MB "
        "(before, while training, after; twice)"
    )
    # Most of a page load here is Chromium starting Streamlit's frontend on the same two cores, so it
    # is compared with the same load on the idle server just before: the trainings may hold a new
    # visitor up by 3 s. Measured +0.4 to +2.3 s (8 sessions: 2.9 and 4.3 s against 1.7 and 2.0 s
    # idle), and once, in a fresh-clone CI run, +3.3 s in one round and +0.8 s in the other (2
    # sessions): a spike of the shared cores. A server that held visitors up would do it in both
    # rounds, so one round may reach 6 s more; docs/reliability.md has the figures.
    held_up = sorted(load - idle for load, idle in zip(loads, idle_loads))
    assert held_up[0] < 3 and held_up[-1] < 6, (loads, idle_loads)
    # The first round of this many sessions raises the server's resident level once (the allocator
    # keeps what it reached; tracemalloc shows Python's own heap back where it was). A second round
    # must end near where the first did (+1 to +24 MB measured): nothing large is kept per session.
    assert memory[4] < memory[2] + 50
