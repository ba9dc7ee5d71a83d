"""The engine's kernels in C (`low_rank_adam.c`), built on first use by the system's C compiler.

No library fuses a low-rank gradient into Adam, and on a CPU the study spends a fifth of its time
writing the 7x7 layers' gradients out and reading them back (README, "Speed, a study of K pairs").
The build takes well under a second and is kept in the app's cache folder, named by a hash of the
source, the flags, the compiler and this machine, so another machine or a changed source builds
afresh. Where no C compiler works, `function(name)` is None and the engine keeps to torch's ops:
the same training within float tolerance, only slower; `status()` says which and why.
"""

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager, suppress

from .data import data_dir

SOURCE = os.path.join(os.path.dirname(__file__), "low_rank_adam.c")
# -march=native: the library is built where it runs. No fast-math: IEEE square roots and divisions.
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-shared", "-fPIC"]
# The library's functions and their C argument types.
SIGNATURES = {
    "low_rank_adam": [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,  # models, rows, cols
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_long,  # w, m, v, stride
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_void_p,
        ctypes.c_long,  # a, b and strides
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_int,  # out, stride, row_dots?
        ctypes.c_void_p,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
        ctypes.c_double,
    ],  # step, lr, betas, eps
    "low_rank_product": [
        ctypes.c_int,
        ctypes.c_int,
        ctypes.c_int,  # models, rows, cols
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_void_p,
        ctypes.c_long,  # w, x and strides
        ctypes.c_void_p,
        ctypes.c_long,
        ctypes.c_int,
    ],  # out, stride, row_dots?
}

_lock = threading.Lock()
_loaded: dict = {}
log = logging.getLogger(__name__)


def _compiler() -> str | None:
    return shutil.which(os.environ.get("CC", "cc"))


def _library_path(compiler: str) -> str:
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
    with open(SOURCE, "rb") as source:
        key = hashlib.sha256(source.read())
    for part in (*FLAGS, compiler, version, platform.machine(), platform.node()):
        key.update(part.encode())
    return str(data_dir() / "kernels" / f"low_rank_adam-{key.hexdigest()[:16]}.so")


def _build(compiler: str, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Built beside its final name and renamed into place, so that concurrent builds (the app's
    # training processes) never load a half-written file.
    handle, partial = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(handle)
    try:
        subprocess.run(
            [compiler, *FLAGS, "-o", partial, SOURCE], check=True, capture_output=True, text=True, timeout=120
        )
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _load() -> tuple[ctypes.CDLL | None, str]:
    if os.environ.get("AE_NATIVE") == "0":
        return None, "off: AE_NATIVE=0"
    compiler = _compiler()
    if compiler is None:
        return None, "off: no C compiler (set CC, or install gcc or clang)"
    try:
        path = _library_path(compiler)
        library = _open(compiler, path)
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", None) or error
        return None, f"off: building {os.path.basename(SOURCE)} with {compiler} failed: {str(detail).strip()[:400]}"
    for name, argument_types in SIGNATURES.items():
        function = getattr(library, name)
        function.argtypes, function.restype = argument_types, None
    return library, f"on: {path}"


def _open(compiler: str, path: str) -> ctypes.CDLL:
    if os.path.exists(path):
        with suppress(OSError):
            return ctypes.CDLL(path)
    _build(compiler, path)  # not built yet, or a damaged file in the cache: build it afresh
    return ctypes.CDLL(path)


def _library() -> ctypes.CDLL | None:
    """The built library, or None where it cannot be built; built once a process."""
    with _lock:
        if not _loaded:
            _loaded["library"], _loaded["status"] = _load()
            if _loaded["library"] is None:
                log.warning("C kernel %s", _loaded["status"])
        return _loaded["library"]


def function(name: str):
    """The C function `name`, one of SIGNATURES (see low_rank_adam.c), or None where the library cannot be built."""
    library = _library()
    return None if library is None else getattr(library, name)


def status() -> str:
    """'on: <library>' or 'off: <why>'."""
    _library()
    return _loaded["status"]


@contextmanager
def turned_off():
    """Engines built inside take torch's ops, as where no compiler works: to compare or test the two."""
    _library()
    with _lock:
        saved = dict(_loaded)
        _loaded.update(library=None, status="off: turned off for a comparison")
    try:
        yield
    finally:
        with _lock:
            _loaded.update(saved)
