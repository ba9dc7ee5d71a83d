"""Shared pieces of the real-browser tests: a `streamlit run` server on a free loopback port and
Debian's Chromium driven by Playwright."""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run"]


def require_chromium():
    """Skips the calling test module where Chromium is missing, except in CI; returns Playwright's sync API."""
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextmanager
def streamlit_server(workdir: Path, *options: str):
    """Yields (url, log path, process); on exit stops it and fails if its log shows a traceback."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = workdir / "server.log"
    env = {**os.environ, "AE_DATA_DIR": str(workdir / "cache")}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless=true",
         f"--server.port={port}", "--server.address=127.0.0.1", *options],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    try:
        yield url, log, process
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


def main(page):
    """The app's own area: Streamlit's header has a Stop button of its own."""
    return page.get_by_test_id("stMainBlockContainer")


def set_number(page, name: str, value) -> None:
    field = page.get_by_role("spinbutton", name=name, exact=True)
    field.fill(str(value))
    field.press("Enter")
    page.wait_for_timeout(800)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")
