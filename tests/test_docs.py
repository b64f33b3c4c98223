"""The user manual is tested: every error class, CLI option and functional-API function has
its section, the Python examples in docs/ run, and so does examples/embedded/football.py."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

import cloudsdk
from cloudsdk import _protocol, errors, featurestore
from cloudsdk.cli import _parser
from cloudsdk.server.rest import WRITE_ROUTES

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Pages whose ```python blocks run, in order, in one namespace per page.
RUNNABLE_PAGES = [
    "quickstart.md",
    "object-api.md",
    "query-planner.md",
    "functional-api.md",
    "sql.md",
    "types.md",
    "errors.md",
    "configuration.md",
    "training-datasets.md",
    "formats.md",
    "time-travel.md",
    "registry.md",
    "statistics.md",
    "validation.md",
    "storage-connectors.md",
    "online.md",
    "../README.md",
]

_FENCE = re.compile(r"^```(\w*)\s*$")
_SKIP = "<!-- skip -->"


def _read(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def _headings(text: str) -> list[str]:
    """The Markdown headings of a page (not the comment lines of its code blocks)."""
    headings, in_code = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            headings.append(line.lstrip("#").strip())
    return headings


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a page as (line number, code), without those marked skip."""
    blocks: list[tuple[int, str]] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i + 1
        end = start
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        prev = next((lines[k].strip() for k in range(i - 1, -1, -1) if lines[k].strip()), "")
        if lang == "python" and prev != _SKIP:
            blocks.append((start + 1, "\n".join(lines[start:end]) + "\n"))
        i = end + 1
    return blocks


def test_headings_skip_code() -> None:
    assert _headings("# Title\n```python\n# comment\n```\n## Section\n") == ["Title", "Section"]


def test_python_blocks_parser() -> None:
    text = "a\n```python\nx = 1\n```\n<!-- skip -->\n```python\nboom()\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n")]


def test_every_page_is_in_the_index() -> None:
    index = _read("index.md")
    pages = sorted(p.name for p in DOCS.glob("*.md") if p.name != "index.md")
    assert pages, "docs/ has no pages"
    missing = [p for p in pages if f"({p})" not in index]
    assert not missing, f"docs/index.md does not link {missing}"


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_class_has_a_section(name: str) -> None:
    assert name in _headings(_read("errors.md")), f"docs/errors.md needs a '## {name}' section"


def _cli_words() -> list[str]:
    """Every subcommand and option string of the ``cloudsdk`` parser, recursively."""
    words: list[str] = []

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            words.extend(action.option_strings)
            if isinstance(action, argparse._SubParsersAction):
                for command, sub in action.choices.items():
                    words.append(command)
                    walk(sub)

    walk(_parser())
    return words


def test_cli_parser_is_walked() -> None:
    assert {"demo", "--dir", "--teams", "--no-progress", "--version", "-v"} <= set(_cli_words())


@pytest.mark.parametrize("word", _cli_words())
def test_every_cli_command_and_option_is_documented(word: str) -> None:
    text = _read("cli.md")
    assert re.search(rf"`[^`]*(?<![\w-]){re.escape(word)}(?![\w-])[^`]*`", text), (
        f"docs/cli.md does not mention {word!r} in code"
    )


@pytest.mark.parametrize("name", featurestore.__all__)
def test_every_function_is_documented(name: str) -> None:
    headings = _headings(_read("functional-api.md"))
    assert any(re.search(rf"\b{name}\b", h) for h in headings), (
        f"docs/functional-api.md needs a heading for {name}()"
    )


def _route_rows() -> dict[str, str]:
    """``{route name: method and path}`` of the route table in docs/rest-api.md."""
    rows = re.findall(r"^\| `(\w+)`(?: \(write\))?\s*\| `(\w+ /[^`]*)`", _read("rest-api.md"), re.M)
    return dict(rows)


def test_route_table_is_parsed() -> None:
    rows = _route_rows()
    assert rows["info"] == "GET /info" and rows["insert"].startswith("POST ")


@pytest.mark.parametrize("name", sorted(_protocol.ROUTES))
def test_every_rest_route_is_documented(name: str) -> None:
    method, path = _protocol.ROUTES[name].split(" ", 1)
    documented = _route_rows().get(name)
    assert documented is not None, f"docs/rest-api.md's route table needs a row for `{name}`"
    assert documented == f"{method} {path}", f"docs/rest-api.md: `{name}` is {method} {path}, not {documented}"
    write = re.search(rf"^\| `{name}` \(write\)", _read("rest-api.md"), re.M) is not None
    assert write == (name in WRITE_ROUTES), f"docs/rest-api.md: mark `{name}` (write) iff it is a write route"


@pytest.mark.slow
@pytest.mark.parametrize("page", RUNNABLE_PAGES)
def test_doc_examples_run(page: str) -> None:
    """Run a page's Python blocks in order, in one namespace, in this test's fresh CLOUDSDK_HOME."""
    blocks = python_blocks(_read(page))
    assert blocks, f"docs/{page} has no runnable python blocks"
    module = page.replace("-", "_").replace("../", "").removesuffix(".md")
    namespace: dict[str, object] = {"__name__": f"docs_{module}"}
    try:
        for line, code in blocks:
            try:
                exec(compile(code, f"docs/{page}:{line}", "exec"), namespace)
            except Exception as exc:
                raise AssertionError(f"the example at docs/{page} line {line} failed: {exc!r}") from exc
    finally:
        featurestore.disconnect()
        for value in namespace.values():
            if isinstance(value, cloudsdk.Connection):
                value.close()


@pytest.mark.slow
def test_embedded_example_runs(tmp_path: Path) -> None:
    script = ROOT / "examples" / "embedded" / "football.py"
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "store")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert proc.stdout.strip()
    assert (tmp_path / "store" / "catalog.db").exists()
