"""Every code block of the docs runs, or says why it does not.

The pages are ``docs/**/*.md`` and ``README.md``. A page's ```` ```python ```` blocks
(whatever follows the language: ``title="…"`` and so on) run in order, in one
namespace of their own, with a fresh default registry, as a reader would paste them.
Around them:

* ``<!-- not run: <reason> -->`` on the line before a fence skips that block; the
  reason must say why (a shell command, a server that runs forever, …).
* ``<!-- output -->`` before a fence makes the block an expected output: it must
  match what the page's Python blocks printed since the previous output block
  (``...`` matches anything, as in doctest).
* A ```` ```python ```` block made only of snippet lines (``--8<-- "examples/x.py"``)
  shows a file of ``examples/``; ``tests/test_examples.py`` runs those as programs.
  ``ruff format`` would rewrite such a line as Python, so ``<!-- fmt: off -->`` and
  ``<!-- fmt: on -->`` go around the block; they are not markers.
* Snippets of Markdown files outside fences (``--8<-- "CHANGELOG.md"``) are read
  as part of the page, so their blocks follow the same rules.
* In ``docs/``, any other fence must be marked, except ```` ```mermaid ```` diagrams
  (drawn by the site, not run). ``README.md`` may only gain a docs link, so only its
  Python blocks are checked (its other blocks are shell commands).
"""

from __future__ import annotations

import contextlib
import doctest
import gc
import io
import os
import re
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apytheus.backends import InProcessBackend, get_backend, load_backend
from apytheus.backends._current import switch
from apytheus.registry import REGISTRY, CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), ROOT / "README.md"]
PYTHON = {"python", "py"}

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")
SNIPPET = re.compile(r"""^\s*-{1,}8<-{1,}\s+(?P<quote>["'])(?P<path>[^"']+)(?P=quote)\s*$""")
COMMENT = re.compile(r"^\s*<!--(?P<body>.*)-->\s*$")
NOT_RUN = re.compile(r"^\s*not run\s*(?::(?P<reason>.*))?$")
# ruff formats the Python blocks of Markdown files; these comments turn that off and on.
FORMATTER = re.compile(r"^\s*<!--\s*fmt:\s*(off|on)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    source: Path  # the file it is written in (a page, or a Markdown snippet)
    line: int  # 1-based line of its first content line in that file
    lang: str  # the first word of the info string, lowercased ("" if none)
    code: str  # the content, dedented by the fence's indentation
    marker: str | None  # the HTML comment on the line before the fence, if any

    @property
    def where(self) -> str:
        """``path:line``, relative to the repository when the file is in it."""
        path = self.source.relative_to(ROOT) if self.source.is_relative_to(ROOT) else self.source
        return f"{path}:{self.line}"


def expanded_lines(path: Path, depth: int = 0) -> Iterator[tuple[Path, int, str]]:
    """The lines of a page as mkdocs sees them: Markdown snippets outside fences are inlined."""
    assert depth < 5, f"{path}: snippets nested too deep"
    in_fence = ""
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if fence and not in_fence:
            in_fence = fence["fence"]
        elif fence and line.strip().startswith(in_fence) and not line.strip(in_fence[0]).strip():
            in_fence = ""
        snippet = SNIPPET.match(line)
        if snippet and not in_fence and snippet["path"].endswith(".md"):
            included = ROOT / snippet["path"]
            assert included.is_file(), f"{path}:{number}: snippet {snippet['path']} not found"
            yield from expanded_lines(included, depth + 1)
        else:
            yield path, number, line


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, with the marker written before it."""
    lines = list(expanded_lines(page))
    found: list[Block] = []
    i = 0
    while i < len(lines):
        source, number, line = lines[i]
        opening = FENCE.match(line)
        if opening is None:
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        info = opening["info"].strip()
        lang = info.split()[0].lower().lstrip("{.") if info else ""
        previous = next(
            (t for _, _, t in reversed(lines[:i]) if t.strip() and not FORMATTER.match(t)), ""
        )
        comment = COMMENT.match(previous)
        body: list[str] = []
        i += 1
        while i < len(lines):
            text = lines[i][2]
            stripped = text.strip()
            if stripped.startswith(fence) and not stripped.strip(fence[0]).strip():
                break
            body.append(text[indent:] if text[:indent].strip() == "" else text)
            i += 1
        else:
            pytest.fail(f"{Block(source, number, lang, '', None).where}: fence never closed")
        marker = comment["body"].strip() if comment else None
        found.append(Block(source, number + 1, lang, "\n".join(body) + "\n", marker))
        i += 1
    return found


def snippet_paths(block: Block) -> list[str] | None:
    """The files a block only includes, or None if it holds code of its own."""
    lines = [line for line in block.code.splitlines() if line.strip()]
    matches = [SNIPPET.match(line) for line in lines]
    if not lines or not any(matches):
        return None
    assert all(matches), f"{block.where}: mix of snippet lines and code; keep them apart"
    return [m["path"] for m in matches if m]


def skip_reason(block: Block) -> str | None:
    """The reason given by a ``<!-- not run: … -->`` marker (asserted non-empty)."""
    if block.marker is None:
        return None
    match = NOT_RUN.match(block.marker)
    if match is None:
        return None
    reason = (match["reason"] or "").strip()
    assert reason, f"{block.where}: `<!-- not run: ... -->` needs a reason after the colon"
    return reason


@contextlib.contextmanager
def isolated() -> Iterator[CollectorRegistry]:
    """A fresh default registry and in-process backend; all restored afterwards, with os.environ."""
    previous_registry = REGISTRY.registry
    previous_backend = get_backend()
    environ = dict(os.environ)
    fresh = CollectorRegistry()
    REGISTRY.set_registry(fresh)
    try:
        load_backend(InProcessBackend, {})  # whatever an earlier test selected
        yield fresh
    finally:
        REGISTRY.set_registry(previous_registry)
        if get_backend() is not previous_backend:
            switch(previous_backend)
        if dict(os.environ) != environ:
            os.environ.clear()
            os.environ.update(environ)


def run_page(page: Path) -> int:
    """Run the page's Python blocks and check its output blocks; return how many ran."""
    module = types.ModuleType("docs_page_" + re.sub(r"\W", "_", page.stem))
    module.__file__ = str(page)
    printed = io.StringIO()
    ran = 0
    sys.modules[module.__name__] = module
    try:
        with isolated():
            for block in blocks(page):
                if skip_reason(block) is not None:
                    continue
                if block.marker == "output":
                    check_output(block, printed.getvalue())
                    printed = io.StringIO()
                    continue
                assert block.marker is None, (
                    f"{block.where}: unknown marker <!--{block.marker}-->; "
                    "use `not run: <reason>` or `output`"
                )
                if block.lang not in PYTHON:
                    check_unmarked(page, block)
                    continue
                included = snippet_paths(block)
                if included is not None:
                    check_snippets(block, included)
                    continue
                # Pad with blank lines so that tracebacks show the page and its line numbers.
                code = compile("\n" * (block.line - 1) + block.code, str(block.source), "exec")
                with contextlib.redirect_stdout(printed):
                    exec(code, module.__dict__)
                ran += 1
    finally:
        sys.modules.pop(module.__name__, None)
        module.__dict__.clear()
        gc.collect()  # drop the page's metrics, so that later pages' backends never see them
    return ran


def check_output(block: Block, printed: str) -> None:
    """An output block shows what was printed (``...`` matches anything)."""
    want, got = block.code.rstrip("\n") + "\n", printed.rstrip("\n") + "\n"
    if not doctest.OutputChecker().check_output(want, got, doctest.ELLIPSIS):
        pytest.fail(f"{block.where}: the output differs.\nshown:\n{want}\nprinted:\n{got}")


def check_unmarked(page: Path, block: Block) -> None:
    """In docs/, a block that is not Python must be marked (diagrams excepted)."""
    if page.is_relative_to(DOCS) and block.lang != "mermaid":
        pytest.fail(
            f"{block.where}: a ```{block.lang or '(no language)'} block must be run (```python), "
            "checked (<!-- output -->) or marked <!-- not run: <reason> -->"
        )


def check_snippets(block: Block, paths: list[str]) -> None:
    """Included code must be an example that tests/test_examples.py runs."""
    tested = (ROOT / "tests" / "test_examples.py").read_text(encoding="utf-8")
    for path in paths:
        assert (ROOT / path).is_file(), f"{block.where}: snippet {path} not found"
        assert path.startswith("examples/"), (
            f"{block.where}: code included from {path} is run by no test; "
            "include files of examples/ only"
        )
        assert Path(path).name in tested, f"{block.where}: tests/test_examples.py never runs {path}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_python_block_of_the_page_runs(page: Path) -> None:
    run_page(page)


def test_the_docs_have_runnable_blocks_on_most_pages() -> None:
    """Guards the collector itself: a regex that matched nothing would pass every page."""
    counts = {p: sum(b.lang in PYTHON for b in blocks(p)) for p in PAGES}
    assert sum(counts.values()) >= 40
    with_code = [p for p, n in counts.items() if n]
    assert len(with_code) >= 15, sorted(str(p.relative_to(ROOT)) for p in with_code)


def test_markers_are_parsed_and_reasons_are_required(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- not run: starts a server -->\n```python\nraise SystemExit\n```\n\n"
        "<!-- output -->\n```text\nx\n```\n\n"
        '```python title="t.py"\n    print(1)\n```\n\n'
        '    ```python\n    --8<-- "examples/quickstart.py"\n    ```\n',
        encoding="utf-8",
    )
    found = blocks(page)
    assert [(b.lang, b.marker) for b in found] == [
        ("python", "not run: starts a server"),
        ("text", "output"),
        ("python", None),
        ("python", None),
    ]
    assert skip_reason(found[0]) == "starts a server"
    assert snippet_paths(found[3]) == ["examples/quickstart.py"]
    assert snippet_paths(found[2]) is None
    empty = Block(page, 1, "python", "", "not run:")
    with pytest.raises(AssertionError, match="needs a reason"):
        skip_reason(empty)
