"""Build the "legacy ML client" environment, ``.venv-legacy``.

Usage (from anywhere; paths are relative to the repository root)::

    python3.11 tools/legacy_env.py          # create/refresh .venv-legacy, print its python
    python3.11 tools/legacy_env.py --check  # also import what the environment is for

``.venv-legacy`` holds the old ML stack that SageMaker and Databricks images pin (pyarrow
14.0.2, numpy 1.26.4, pandas 3.0.6, tensorflow-cpu 2.17.1 + tensorflow-io 0.37.1, petastorm
0.13.1, torch 2.13.0, s3fs) and the cloudsdk *client* only (editable, no extras). The tests in
``tests/test_legacy_env.py`` run scripts with its python against a server and a moto S3 server
started from the main environment. See docs/legacy-environment.md.

It is built from ``requirements/legacy.lock``: every pin except the ``--no-deps`` ones
(``pip install -r``), then those with ``--no-deps`` (petastorm: it hard-requires pyspark and
setuptools<70), then ``-e .`` with ``--no-deps`` (cloudsdk's own dependencies are pinned in
the lock). Later calls reuse it; it is rebuilt from scratch when the lock file,
``pyproject.toml`` or the Python version changes (a hash stamp is kept inside it), like
``tools/dev.py`` does for ``.venv``.

Standard library only. Other tools call :func:`ensure_legacy_venv`.
"""

from __future__ import annotations

import sys

# Keep this check above any syntax or import that older Pythons reject.
if sys.version_info < (3, 11):  # noqa: UP036
    sys.stderr.write("tools/legacy_env.py needs Python 3.11 or newer; run it as python3.11\n")
    sys.exit(2)

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_NAME = ".venv-legacy"
LOCK_NAME = "requirements/legacy.lock"
STAMP_NAME = ".cloudsdk-legacy-stamp"
#: Installed with ``pip install --no-deps`` (their declared dependencies cannot be met here).
NO_DEPS = ("petastorm",)
#: What the environment is for; ``--check`` imports these.
CHECK_IMPORTS = ("cloudsdk", "petastorm", "petastorm.pytorch", "petastorm.tf_utils",
                 "tensorflow", "tensorflow_io", "torch", "s3fs")


class LegacyEnvError(RuntimeError):
    """A step of building the legacy environment failed."""


def header(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def venv_python(root: Path) -> Path:
    """Where ``.venv-legacy``'s interpreter is (whether or not it exists)."""
    bin_dir = root / VENV_NAME / ("Scripts" if os.name == "nt" else "bin")
    return bin_dir / ("python.exe" if os.name == "nt" else "python")


def _child_env(root: Path) -> dict[str, str]:
    venv = root / VENV_NAME
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = str(venv_python(root).parent) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    env.pop("PYTHONPATH", None)
    return env


def _check(cmd: Sequence[str | Path], root: Path) -> None:
    print("    $ " + " ".join(str(c) for c in cmd), flush=True)
    code = subprocess.call([str(c) for c in cmd], cwd=root, env=_child_env(root))
    if code != 0:
        raise LegacyEnvError(f"exit code {code}: {' '.join(str(c) for c in cmd)}")


def _split_lock(lock: Path) -> tuple[list[str], list[str]]:
    """(pins for ``pip install -r``, pins for ``pip install --no-deps``)."""
    normal: list[str] = []
    no_deps: list[str] = []
    for line in lock.read_text().splitlines():
        pin = line.split("#", 1)[0].strip()
        if not pin:
            continue
        name = pin.split("==", 1)[0].strip().lower().replace("_", "-")
        (no_deps if name in NO_DEPS else normal).append(pin)
    return normal, no_deps


def wanted_stamp(root: Path) -> str:
    """What the installed environment must have been built from."""
    digest = hashlib.sha256()
    for path in (root / LOCK_NAME, root / "pyproject.toml"):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"no-deps={','.join(NO_DEPS)}\0python={sys.version}\0".encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One build at a time per checkout (pytest-xdist workers may ask together)."""
    key = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    path = Path(tempfile.gettempdir()) / f"cloudsdk-legacy-env-{key}.lock"
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_legacy_venv(root: Path = ROOT) -> Path:
    """Create or rebuild ``root/.venv-legacy`` unless it matches the lock file and pyproject.toml.

    Args:
        root: The repository root.

    Returns:
        The path of the environment's python.

    Raises:
        LegacyEnvError: The lock file is missing or a pip step failed (the environment is then
            left without its stamp, so the next call rebuilds it).
    """
    root = Path(root).resolve()
    lock = root / LOCK_NAME
    for path in (lock, root / "pyproject.toml"):
        if not path.is_file():
            raise LegacyEnvError(f"{path} is missing")
    python = venv_python(root)
    stamp_path = root / VENV_NAME / STAMP_NAME
    with _build_lock(root):
        stamp = wanted_stamp(root)
        if python.exists() and stamp_path.is_file() and stamp_path.read_text().strip() == stamp:
            return python
        venv = root / VENV_NAME
        if not venv.exists():
            reason = f"no {VENV_NAME} yet"
        elif not stamp_path.is_file():
            reason = "the last set-up did not finish"
        else:
            reason = f"{LOCK_NAME}, pyproject.toml or the Python version changed"
        started = time.monotonic()
        header(f"Setting up {VENV_NAME} ({reason}); the first time takes a few minutes")
        if venv.exists():
            shutil.rmtree(venv)
        _check([sys.executable, "-m", "venv", venv], root)
        header("Upgrading pip")
        _check([python, "-m", "pip", "install", "--upgrade", "pip"], root)
        normal, no_deps = _split_lock(lock)
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "legacy-requirements.txt"
            requirements.write_text("\n".join(normal) + "\n")
            header(f"Installing the pins of {LOCK_NAME} (pyarrow 14, TF 2.17, torch, s3fs, ...)")
            _check([python, "-m", "pip", "install", "-r", requirements], root)
        if no_deps:
            header("Installing " + " ".join(no_deps) + " with --no-deps")
            _check([python, "-m", "pip", "install", "--no-deps", *no_deps], root)
        header("Installing the cloudsdk client (editable, no extras)")
        _check([python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-e", root], root)
        stamp_path.write_text(stamp + "\n")
        print(f"    {VENV_NAME} ready in {time.monotonic() - started:.0f} s", flush=True)
    return python


def check_imports(python: Path, root: Path = ROOT) -> None:
    """Import what the environment is for with its python; raise LegacyEnvError if one fails."""
    code = "import importlib, sys\nfor m in sys.argv[1:]:\n    importlib.import_module(m)\n"
    _check([python, "-c", code, *CHECK_IMPORTS], root)


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    if argv not in ([], ["--check"]):
        print("usage: python3.11 tools/legacy_env.py [--check]", file=sys.stderr)
        return 2
    try:
        python = ensure_legacy_venv(ROOT)
        if argv == ["--check"]:
            header("Importing " + ", ".join(CHECK_IMPORTS))
            check_imports(python)
    except LegacyEnvError as exc:
        print(f"\n==> FAILED: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        return 130
    print(python)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
