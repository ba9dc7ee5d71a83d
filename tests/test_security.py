"""No user input reaches raw HTML, a shell, pickle or arbitrary paths; the server keeps its protections.

The code is read as Python syntax trees, not as text: `from pickle import loads`, `import subprocess as
sp` or `t.load(...)` after `import torch as t` count as what they are, whatever they are called."""

import ast
import builtins
import os
import sys
import tomllib
from pathlib import Path

import pytest
from conftest import ROOT

from ae_core import data

APP_SOURCES = sorted(
    [*ROOT.glob("ae_core/*.py"), *ROOT.glob("pages/*.py"), ROOT / "app_widgets.py", ROOT / "streamlit_app.py"]
)
DESERIALIZERS = {"pickle", "_pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
SHELLS = {"subprocess", "pty", "commands"}
RUNNERS = ("os.system", "os.popen", "os.exec", "os.spawn", "os.posix_spawn", "asyncio.create_subprocess")
CODE_FROM_DATA = {"eval", "exec", "builtins.eval", "builtins.exec", "torch.load", "torch.serialization.load"}
CATEGORIES = ("raw HTML in the page", "a shell or subprocess", "pickle, eval or torch.load")
# The exceptions, one module in one file: worker.py pickles a trainer's state between this process
# and its own child process, over a pipe that nothing else holds; no bytes from a user, a file or the
# network reach it. trainer_state.py reads run store blobs that an earlier version wrote with
# torch.load(weights_only=True), which builds tensors and plain containers and refuses anything else
# (newer blobs are npz files, read by np.load with allow_pickle=False). native.py runs the C compiler on the
# package's own source with fixed arguments and no shell. streamlit_app.py puts the app's own
# stylesheet, a file in the repository, on every page with st.html. Each file's own test below checks
# how it uses that module; anything else in it counts here.
ALLOWED = {
    ("raw HTML in the page", "streamlit_app.py"): "streamlit",
    ("pickle, eval or torch.load", "ae_core/worker.py"): "pickle",
    ("pickle, eval or torch.load", "ae_core/trainer_state.py"): "torch",
    ("a shell or subprocess", "ae_core/native.py"): "subprocess",
}


class Module:
    """A source file's syntax tree, and what each name an import binds stands for: after `import
    torch as t`, `t` is `torch`; after `from os import system as run`, `run` is `os.system`."""

    def __init__(self, path: Path, root: Path = ROOT) -> None:
        self.path = str(path.relative_to(root))
        self.tree = ast.parse(path.read_text(), filename=self.path)
        self.bound: dict[str, str] = {}
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]  # `import a.b` binds `a`
                    self.bound[alias.asname or top] = alias.name if alias.asname else top
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    self.bound[alias.asname or alias.name] = f"{'.' * node.level}{node.module or ''}.{alias.name}"

    def dotted(self, node: ast.AST) -> str | None:
        """The full name an expression like `st.components.v1.html` or `getattr(torch, "load")` refers to."""
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "getattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
        ):
            owner = self.dotted(node.args[0])
            return owner and f"{owner}.{node.args[1].value}"
        if isinstance(node, ast.Attribute):
            owner = self.dotted(node.value)
            return owner and f"{owner}.{node.attr}"
        if isinstance(node, ast.Name):
            return self.bound.get(node.id, node.id)
        return None

    def imports(self):
        """(line, module) of every import, also `__import__("x")` and `importlib.import_module("x")`."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                yield from ((node.lineno, alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level:
                yield node.lineno, node.module
            elif (
                isinstance(node, ast.Call)
                and self.dotted(node.func) in ("__import__", "importlib.import_module", "importlib.__import__")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                yield node.lineno, str(node.args[0].value)

    def imported_names(self):
        """(line, full name) of everything an import binds: `from torch import load` binds `torch.load`."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.ImportFrom) and not node.level:
                yield from ((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)

    def references(self):
        """(line, full name) of every name and attribute used, called or not (`load = torch.load` counts),
        that starts at an imported name or a builtin: a local variable called `commands` is no module."""
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Name, ast.Attribute, ast.Call)):
                name, root = self.dotted(node), node
                while isinstance(root, (ast.Attribute, ast.Call)):
                    root = root.value if isinstance(root, ast.Attribute) else root.args[0] if root.args else None
                if name is not None and (root.id in self.bound or hasattr(builtins, root.id)):
                    yield node.lineno, name

    def calls(self, name: str) -> list[ast.Call]:
        return [node for node in ast.walk(self.tree) if isinstance(node, ast.Call) and self.dotted(node.func) == name]


def findings(module: Module, category: str):
    """(line, what) of each use of `category` in the module."""
    if category == "raw HTML in the page":
        for node in ast.walk(module.tree):
            if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
                if not (isinstance(node.value, ast.Constant) and node.value.value is False):
                    yield node.value.lineno, f"unsafe_allow_html={ast.unparse(node.value)}"
            # st.html, components.html, and `.html` of any container (a column is an st.html too).
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "html":
                yield node.lineno, f"{module.dotted(node.func) or ast.unparse(node.func)}()"
        for line, name in module.imports():
            if name.startswith("streamlit.components"):
                yield line, f"import {name}"
        for line, name in module.references():  # `from streamlit import html`, then `html(...)`
            if name == "streamlit.html" or name.startswith("streamlit.components"):
                yield line, name
        return
    modules = SHELLS if category == "a shell or subprocess" else DESERIALIZERS
    for line, name in module.imports():
        if name.split(".")[0] in modules:
            yield line, f"import {name}"
    for line, name in [*module.imported_names(), *module.references()]:
        if (
            name.split(".")[0] in modules
            or (category == "a shell or subprocess" and name.startswith(RUNNERS))
            or (category == "pickle, eval or torch.load" and name in CODE_FROM_DATA)
        ):
            yield line, name


def allowed(category: str, path: str, what: str) -> bool:
    exception = ALLOWED.get((category, path))
    return exception is not None and what.removeprefix("import ").split(".")[0] == exception


@pytest.mark.parametrize("category", CATEGORIES)
def test_app_and_library_code_never_use(category):
    offenders = {
        f"{module.path}:{line} {what}"
        for module in map(Module, APP_SOURCES)
        for line, what in findings(module, category)
        if not allowed(category, module.path, what)
    }
    assert not offenders, f"{category}: {sorted(offenders)}"


@pytest.mark.parametrize(
    "source, category, what",
    [
        ("from pickle import loads\nloads(b'')", "pickle, eval or torch.load", "import pickle"),
        ("import marshal as m", "pickle, eval or torch.load", "import marshal"),
        ("__import__('shelve')", "pickle, eval or torch.load", "import shelve"),
        ("import torch as t\nweights = t.load('w.pt')", "pickle, eval or torch.load", "torch.load"),
        ("from torch import load\nload('w.pt')", "pickle, eval or torch.load", "torch.load"),
        ("from torch import load as read_weights", "pickle, eval or torch.load", "torch.load"),
        ("from os import popen", "a shell or subprocess", "os.popen"),
        ("import torch\ngetattr(torch, 'load')('w.pt')", "pickle, eval or torch.load", "torch.load"),
        ("eval(text)", "pickle, eval or torch.load", "eval"),
        ("import subprocess as sp", "a shell or subprocess", "import subprocess"),
        ("from os import system\nsystem('ls')", "a shell or subprocess", "os.system"),
        ("import os\nos.popen('ls')", "a shell or subprocess", "os.popen"),
        ("st.markdown(text, unsafe_allow_html=True)", "raw HTML in the page", "unsafe_allow_html=True"),
        ("col.html(text)", "raw HTML in the page", "col.html()"),
        ("import streamlit as s\ns.html(text)", "raw HTML in the page", "streamlit.html()"),
        ("from streamlit import html as h\nh(text)", "raw HTML in the page", "streamlit.html"),
        ("import streamlit.components.v1 as c", "raw HTML in the page", "import streamlit.components.v1"),
    ],
)
def test_the_check_sees_each_form_of_what_it_forbids(tmp_path, source, category, what):
    (tmp_path / "page.py").write_text(source)
    assert what in [found for _, found in findings(Module(tmp_path / "page.py", tmp_path), category)]


def test_the_only_html_the_app_puts_on_a_page_is_its_own_stylesheet_file():
    app = Module(ROOT / "streamlit_app.py")
    assert {what for _, what in findings(app, "raw HTML in the page")} == {"streamlit.html()", "streamlit.html"}
    assert [ast.unparse(call) for call in app.calls("streamlit.html")] == ["st.html(STYLESHEET)"]
    (assignment,) = [
        node for node in app.tree.body if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "STYLESHEET"
    ]
    assert ast.unparse(assignment.value) == "Path(__file__).parent / '.streamlit' / 'style.css'"
    assert "<" not in (ROOT / ".streamlit" / "style.css").read_text()  # rules only: no tag can close <style>


def test_the_worker_unpickles_only_what_arrives_on_its_own_pipe():
    worker = Module(ROOT / "ae_core" / "worker.py")
    used = {name for _, name in worker.references() if name.startswith("pickle.")}
    assert used == {"pickle.dumps", "pickle.loads", "pickle.PickleBuffer"}  # no load, no Unpickler
    (loads,) = worker.calls("pickle.loads")
    assert [ast.unparse(argument) for argument in loads.args] == ["memoryview(message)[4:]"]
    assert [ast.unparse(keyword) for keyword in loads.keywords] == ["buffers=[pipe.recv_bytes() for _ in range(count)]"]
    assert "message = pipe.recv_bytes()" in {ast.unparse(node) for node in ast.walk(worker.tree)}
    # Its pipes are the two ends of one Pipe(): no listening socket, no client that could connect elsewhere.
    connections = [ast.unparse(call) for call in ast.walk(worker.tree) if isinstance(call, ast.Call)]
    assert [call for call in connections if call.split("(")[0].endswith("Pipe")] == ["context.Pipe()"]
    names = {name.split(".")[-1] for _, name in worker.references()} | {name for _, name in worker.imports()}
    assert not names & {"Listener", "Client", "socket", "connection", "shared_memory"}


def test_the_run_store_reads_its_files_without_pickle_or_with_weights_only():
    state_format = Module(ROOT / "ae_core" / "trainer_state.py")
    loads = state_format.calls("torch.load")
    assert loads and all([ast.unparse(keyword) for keyword in load.keywords] == ["weights_only=True"] for load in loads)
    numpy_loads = state_format.calls("np.load") + state_format.calls("numpy.load")
    assert numpy_loads and all("allow_pickle=False" in map(ast.unparse, load.keywords) for load in numpy_loads)
    assert not {name for _, name in state_format.references() if name.split(".")[0] in DESERIALIZERS}
    run_store = Module(ROOT / "ae_core" / "store.py")
    assert not {name for _, name in run_store.references() if name.split(".")[0] in DESERIALIZERS | {"torch"}}


def test_the_kernel_build_runs_only_the_compiler_with_fixed_arguments_and_no_shell():
    native = Module(ROOT / "ae_core" / "native.py")
    used = {name for _, name in native.references() if name.startswith("subprocess.")}
    assert used == {"subprocess.run", "subprocess.SubprocessError"}  # no Popen, call, getoutput
    runs = native.calls("subprocess.run")
    assert [ast.unparse(run.args[0]) for run in runs] == [
        "[compiler, '--version']",
        "[compiler, *FLAGS, '-o', partial, SOURCE]",
    ]
    assert all(keyword.arg != "shell" for run in runs for keyword in run.keywords)
    assert not [name for _, name in native.references() if name.startswith(RUNNERS)]


def test_server_config_keeps_its_protections_and_watches_no_files():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert 0 < config["server"]["maxUploadSize"] <= 10
    assert config["browser"]["gatherUsageStats"] is False
    assert config["server"]["fileWatcherType"] == "none"  # a .venv inside the folder flooded the watcher


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if not path.is_dir())


_writes: list | None = None  # while a test listens: every file opened for writing, anywhere


def _record_writes(event: str, args: tuple) -> None:
    if _writes is not None and event == "open":
        path, mode, flags = args
        if (mode and any(letter in mode for letter in "wax+")) or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            _writes.append(path)


sys.addaudithook(_record_writes)  # audit hooks stay for the process's life; this one is idle unless listening


@pytest.mark.parametrize("dataset", data.DATASETS)
def test_an_uploads_name_is_never_used_as_a_path(tmp_path, monkeypatch, dataset):
    """Names that point up, down, and to an absolute place that exists, from a working folder three
    levels under the root: no file is opened for writing anywhere, and none appears under the root."""
    global _writes
    here = tmp_path / "a" / "b" / "c"
    here.mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(here)
    png = (ROOT / "docs" / "screenshot.png").read_bytes()
    names = [
        "x.png",
        "sub/x.png",
        "../x.png",
        "../../x.png",
        "../../../x.png",
        "../../../elsewhere/x.png",
        str(tmp_path / "elsewhere" / "absolute.png"),
        str(here),  # the working folder itself
    ]
    _writes = []
    try:
        for name in names:
            sample = data.sample_from_upload(png, dataset, name=name)
            assert tuple(sample.image.shape) == (3, 32, 32)
            with pytest.raises(ValueError, match="not an image"):
                data.sample_from_upload(b"not a picture", dataset, name=name)
    finally:
        writes, _writes = _writes, None
    assert writes == [] and files_under(tmp_path) == [] and os.listdir(here) == []
