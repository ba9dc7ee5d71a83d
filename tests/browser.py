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

ROOT = Path(__file__).resolve().parents[1]  # not from conftest: benchmarks/server_memory.py uses this module too

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def require_chromium():
    """Skips the calling test module where Chromium is missing, except in CI; returns Playwright's sync API."""
    if not Path(CHROMIUM).exists() and not os.environ.get("CI"):
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)", allow_module_level=True)
    return pytest.importorskip("playwright.sync_api")


@contextmanager
def streamlit_server(workdir: Path, *options: str, store_mb: int = 0):
    """Yields (url, log path, process); on exit stops it and fails if its log shows a traceback. Its
    data folder is `workdir`/cache; its run store is off unless `store_mb` gives it a cap: a test that
    trains the same settings as another then trains them rather than finding them stored."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = workdir / "server.log"
    env = {**os.environ, "AE_DATA_DIR": str(workdir / "cache"), "AE_STORE_MB": str(store_mb)}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "streamlit_app.py",
            "--server.headless=true",
            f"--server.port={port}",
            "--server.address=127.0.0.1",
            *options,
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )
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


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError):  # gone meanwhile
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    return children


def process_tree(pid: int) -> list[int]:
    """The process and all its descendants: the app trains in children of its fork server."""
    children = _children()
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def training_processes(pid: int) -> list[int]:
    """The server's grandchildren: the children of its fork server (worker.py), one per training
    running. Its other child, multiprocessing's resource tracker, starts none."""
    children = _children()
    return [grandchild for child in children.get(pid, []) for grandchild in children.get(child, [])]


def _per_process(pid: int, read) -> float:
    total = 0.0
    for member in process_tree(pid):
        try:
            total += read(Path(f"/proc/{member}"))
        except (OSError, ValueError):  # ended meanwhile
            continue
    return total


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its descendants so far, those already ended included, from /proc."""

    def used(proc: Path) -> float:
        fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        return sum(int(field) for field in fields[11:15]) / os.sysconf("SC_CLK_TCK")

    return _per_process(pid, used)


def memory_mb(pid: int) -> float:
    """Proportional set size (shared pages split among their users) of a process and its descendants."""

    def pss(proc: Path) -> float:
        line = next(line for line in (proc / "smaps_rollup").read_text().splitlines() if line.startswith("Pss:"))
        return int(line.split()[1]) / 1024

    return _per_process(pid, pss)
