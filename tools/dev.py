"""Set up the development environment and run the demo or the test suite.

Usage (from anywhere; paths are relative to the repository root)::

    python3.11 tools/dev.py demo [args...]     # cloudsdk demo on the embedded store
    python3.11 tools/dev.py test [pytest args...]  # ruff, mypy, then pytest (builds .venv-legacy too)
    python3.11 tools/dev.py setup              # only create/refresh .venv

The first run creates ``.venv`` at the repository root with the interpreter that
runs this script, upgrades pip and installs ``-e '.[test,all]'`` constrained by
``requirements/dev.lock``. Later runs reuse it; it is rebuilt from scratch when
``requirements/dev.lock`` or ``pyproject.toml`` changes (a hash stamp is kept
inside ``.venv``) or when it was made by another Python version.

Standard library only, so that it runs before anything is installed. The
environment is passed through to the commands unchanged, except that ``.venv``
is put first on ``PATH`` (as ``activate`` would do).
"""

import sys

# Keep this check above any syntax or import that older Pythons reject.
if sys.version_info < (3, 11):  # noqa: UP036
    sys.stderr.write(
        "tools/dev.py needs Python 3.11 or newer; this is Python "
        + sys.version.split()[0]
        + " ("
        + str(sys.executable)
        + ").\nRun it as: python3.11 tools/dev.py ...\n"
    )
    sys.exit(2)

import hashlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
LOCK = ROOT / "requirements" / "dev.lock"
PYPROJECT = ROOT / "pyproject.toml"
STAMP = VENV / ".cloudsdk-dev-stamp"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
EXTRAS = "test,all"
LINT_PATHS = ("cloudsdk", "tests", "benchmarks", "examples", "tools")

USAGE = """\
usage: python3.11 tools/dev.py COMMAND [ARGS...]

commands:
  demo [args...]         set up .venv, then run `cloudsdk demo [args...]`
  test [pytest args...]  set up .venv and .venv-legacy, then ruff check, mypy, pytest [args...]
                         (no args: the whole suite, one xdist worker per core, at most 4)
  setup                  only create or refresh .venv
"""


class StepFailed(Exception):
    """A step exited non-zero; carries its exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def header(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["VIRTUAL_ENV"] = str(VENV)
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env.pop("PYTHONHOME", None)
    return env


def run(cmd: Sequence[str | Path], *, cwd: Path = ROOT) -> int:
    print("    $ " + " ".join(str(c) for c in cmd), flush=True)
    return subprocess.call([str(c) for c in cmd], cwd=cwd, env=child_env())


def check(cmd: Sequence[str | Path], *, cwd: Path = ROOT) -> None:
    code = run(cmd, cwd=cwd)
    if code != 0:
        raise StepFailed(code)


def wanted_stamp() -> str:
    """What the installed environment must have been built from."""
    digest = hashlib.sha256()
    for path in (LOCK, PYPROJECT):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(f"extras={EXTRAS}\0python={sys.version}\0".encode())
    return digest.hexdigest()


def ensure_venv() -> None:
    """Create or rebuild .venv unless it matches the lock file and pyproject.toml."""
    for path in (LOCK, PYPROJECT):
        if not path.is_file():
            print(f"error: {path.relative_to(ROOT)} is missing.", file=sys.stderr)
            raise StepFailed(2)
    stamp = wanted_stamp()
    if PYTHON.exists() and STAMP.is_file() and STAMP.read_text().strip() == stamp:
        return

    if not VENV.exists():
        reason = "no .venv yet"
    elif not STAMP.is_file():
        reason = "the last set-up did not finish"
    else:
        reason = "requirements/dev.lock, pyproject.toml or the Python version changed"
    started = time.monotonic()
    header(f"Setting up .venv ({reason}); the first time takes a minute or two")
    if VENV.exists():
        shutil.rmtree(VENV)
    check([sys.executable, "-m", "venv", VENV])
    header("Upgrading pip")
    check([PYTHON, "-m", "pip", "install", "--upgrade", "pip"])
    header(f"Installing cloudsdk[{EXTRAS}] (editable) with the pins in requirements/dev.lock")
    check([PYTHON, "-m", "pip", "install", "-c", LOCK, "-e", f".[{EXTRAS}]"])
    STAMP.write_text(stamp + "\n")
    print(f"    .venv ready in {time.monotonic() - started:.0f} s", flush=True)


def cmd_demo(args: list[str]) -> None:
    ensure_venv()
    header("cloudsdk demo " + " ".join(args))
    # Runs in the caller's directory, so relative paths in args mean what they say.
    check([BIN / "cloudsdk", "demo", *args], cwd=Path.cwd())


def ensure_legacy() -> None:
    """Build ``.venv-legacy`` (the legacy ML client environment its tests run in)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import legacy_env

    try:
        legacy_env.ensure_legacy_venv(ROOT)
    except legacy_env.LegacyEnvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise StepFailed(1) from exc


def pytest_args(args: list[str]) -> list[str]:
    """With no arguments, the whole suite on one pytest-xdist worker per core (at most 4) and
    the 15 slowest tests listed; any arguments are passed on as they are."""
    if args:
        return args
    workers = max(1, min(4, os.cpu_count() or 1))
    return ["-n", str(workers), "--durations=15"] if workers > 1 else ["--durations=15"]


def cmd_test(args: list[str]) -> None:
    ensure_venv()
    ensure_legacy()
    paths = [p for p in LINT_PATHS if (ROOT / p).exists()]
    header("[1/3] ruff check " + " ".join(paths))
    check([PYTHON, "-m", "ruff", "check", *paths])
    header("[2/3] mypy (configured in pyproject.toml)")
    check([PYTHON, "-m", "mypy"])
    args = pytest_args(args)
    header("[3/3] pytest " + " ".join(args))
    code = run([PYTHON, "-m", "pytest", *args])
    if code == 5:
        print(
            "error: pytest collected no tests (exit code 5); that counts as a failure.",
            file=sys.stderr,
        )
    if code != 0:
        raise StepFailed(code)
    header("All checks passed")


def cmd_setup(args: list[str]) -> None:
    if args:
        print("error: setup takes no arguments", file=sys.stderr)
        raise StepFailed(2)
    ensure_venv()


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "demo": cmd_demo,
    "test": cmd_test,
    "setup": cmd_setup,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    try:
        COMMANDS[command](args)
    except StepFailed as exc:
        print(f"\n==> FAILED (exit code {exc.code})", file=sys.stderr, flush=True)
        return exc.code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
