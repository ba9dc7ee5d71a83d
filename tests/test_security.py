"""No user input reaches raw HTML, a shell, pickle or arbitrary paths; the server keeps its protections."""

import re
import tomllib

import pytest
from conftest import ROOT

from ae_core import data

APP_SOURCES = sorted(
    [*ROOT.glob("ae_core/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app_widgets.py", ROOT / "streamlit_app.py"]
)
FORBIDDEN = {
    "raw HTML in the page": r"unsafe_allow_html|st\.html\(|components\.html\(",
    "a shell or subprocess": r"\bsubprocess\b|os\.system|os\.popen",
    "pickle (torch.load without weights_only included)": r"\bpickle\b|torch\.load\(|\beval\(|\bexec\(",
}
# The exceptions: worker.py pickles a trainer between this process and its own child process, over
# a socket pair that nothing else holds; no bytes from a user, a file or the network reach it. native.py
# runs the C compiler on the package's own source with fixed arguments and no shell.
ALLOWED = {
    ("pickle (torch.load without weights_only included)", "ae_core/worker.py"),
    ("a shell or subprocess", "ae_core/native.py"),
}


@pytest.mark.parametrize("what", FORBIDDEN)
def test_app_and_library_code_never_use(what):
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in APP_SOURCES
        if (what, str(path.relative_to(ROOT))) not in ALLOWED
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(FORBIDDEN[what], line)
    ]
    assert not offenders, f"{what}: {offenders}"


def test_the_worker_unpickles_only_what_arrives_on_its_own_pipe():
    source = (ROOT / "ae_core" / "worker.py").read_text()
    assert re.findall(r"pickle\.loads?\([^)]*\)?\)?", source) == ["pickle.loads(pipe.recv_bytes())"]
    assert "context.Pipe()" in source and "Listener" not in source and "Client(" not in source


def test_the_kernel_build_runs_only_the_compiler_with_fixed_arguments_and_no_shell():
    source = (ROOT / "ae_core" / "native.py").read_text()
    calls = re.findall(r"subprocess\.run\((\[[^]]*\])", source)
    assert calls == ['[compiler, "--version"]', '[compiler, *FLAGS, "-o", partial, SOURCE]']
    assert "shell=" not in source and "os.system" not in source


def test_server_config_keeps_its_protections_and_watches_no_files():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 10
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["fileWatcherType"] == "none"  # a .venv inside the folder flooded the watcher


def test_an_uploads_name_is_never_used_as_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    png = (ROOT / "docs" / "screenshot.png").read_bytes()
    sample = data.sample_from_upload(png, data.CIFAR10, name="../../etc/passwd")
    assert tuple(sample.image.shape) == (3, 32, 32)
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere near a path it names
