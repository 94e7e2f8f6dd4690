"""The model-free parts of agentless localisation and repair: structure, skeletons, element
spans, answer parsing, code windows, SEARCH/REPLACE edits and the diffs made from them."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from k2eval.adapters.swebench.agentless import (
    AgentlessSettings,
    apply_edits,
    make_diff,
    parse_edits,
)
from k2eval.adapters.swebench.localize import (
    fit_structure,
    location_spans,
    merge_rankings,
    merge_spans,
    parse_files,
    parse_locations,
    python_elements,
    python_skeleton,
    render_windows,
    skeleton,
    structure_text,
)
from k2eval.errors import ConfigError

SOURCE = '''"""Module docstring."""
import os

LIMIT = 3
TABLE = {
ENTRIES}


@decorator
def top(a,
        b=1):
    """Doc."""
    return a + b


class Shape(Base):
    """A shape."""

    sides = 0

    def __init__(self, name):
        self.name = name

    @property
    def area(self): return 0

    async def draw(self):
        await render(self)


def tail(): pass
'''.replace("ENTRIES", "".join(f"    {i}: {i},\n" for i in range(40)))


def test_skeleton_keeps_signatures_and_assignments_and_elides_bodies() -> None:
    lines = python_skeleton(SOURCE).splitlines()
    assert lines[:4] == ["LIMIT = 3", "TABLE = {", "    0: 0,", "    1: 1,"]
    assert lines[10:13] == ["    8: 8,", "...", "    31: 31,"]  # head, ..., tail
    rest = "\n".join(lines[lines.index("}"):])
    assert rest == """}

@decorator
def top(a,
        b=1):
    ...

class Shape(Base):
    sides = 0
    def __init__(self, name):
        ...
    @property
    def area(self): return 0
    async def draw(self):
        ...

def tail(): pass"""
    assert "import os" not in lines and '"""A shape."""' not in rest


@pytest.mark.parametrize(("path", "text", "expected"), [
    ("broken.py", "def f(:\n    pass\n", "def f(:\n    pass\n"),  # does not parse: as is
    ("main.go", "package main\nfunc main() {}\n", "package main\nfunc main() {}\n"),
    ("big.js", "x".ljust(100, "x"), "x" * 40 + "\n..."),  # cut to the budget (10 tokens)
])
def test_skeleton_shows_other_files_as_they_are_within_the_budget(
        path: str, text: str, expected: str) -> None:
    assert skeleton(path, text, 10) == expected


def test_elements_have_qualified_names_and_spans_from_their_decorators() -> None:
    elements = {e.name: (e.kind, e.start, e.end) for e in python_elements(SOURCE)}
    assert elements["top"] == ("function", 49, 53)
    assert elements["Shape"][0] == "class" and elements["Shape.area"][0] == "function"
    assert elements["Shape.sides"][0] == "variable" and elements["LIMIT"] == ("variable", 4, 4)
    spans = location_spans(SOURCE, "m.py", [("function", "draw"), ("class", "Shape"),
                                            ("line", "7"), ("line", "999"),
                                            ("function", "missing"), ("line", "70-80"),
                                            ("function", "top() (the decorated one)")])
    shape = elements["Shape"]
    assert spans == [(elements["Shape.draw"][1], elements["Shape.draw"][2]),
                     (shape[1], shape[2]), (7, 7), (70, 71), (49, 53)]


def test_structure_is_an_indented_tree_cut_to_the_best_ranked_files() -> None:
    paths = ["pkg/b.py", "pkg/sub/c.py", "a.py"]
    assert structure_text(paths) == "a.py\npkg/\n    b.py\n    sub/\n        c.py"
    assert fit_structure(paths, ["pkg/sub/c.py", "a.py", "pkg/b.py"], 1000) == paths
    assert fit_structure(paths, ["pkg/sub/c.py", "a.py", "pkg/b.py"], 7) == ["pkg/sub/c.py"]


KNOWN = {"src/flask/app.py", "src/flask/blueprints.py", "docs/conf.py", "setup.py"}


@pytest.mark.parametrize(("reply", "files"), [
    ("```\nsrc/flask/blueprints.py\nsrc/flask/app.py\n```", ["src/flask/blueprints.py",
                                                            "src/flask/app.py"]),
    ("Files:\n```text\n1. ./src/flask/app.py\n- /testbed/setup.py\nflask/blueprints.py\n```",
     ["src/flask/app.py", "setup.py", "src/flask/blueprints.py"]),
    ("no block: src/flask/app.py is it\nsrc/flask/app.py", ["src/flask/app.py"]),
    ("```\nnowhere.py\nconf.py\n```", ["docs/conf.py"]),
    ("1) **setup.py**\n2. `src/flask/app.py`: the app", ["setup.py", "src/flask/app.py"]),
    ("```\n" + "\n".join(sorted(KNOWN)) + "\n```", sorted(KNOWN)[:3]),
])
def test_file_answers_are_matched_to_repository_paths(reply: str, files: list[str]) -> None:
    assert parse_files(reply, KNOWN, limit=3) == files


def test_location_answers_group_by_file_and_skip_unknown_files() -> None:
    reply = ("Here:\n```\nsrc/flask/blueprints.py\nclass: Blueprint\n- function: "
             "Blueprint.__init__\nline: 193\n\nother/file.py\nfunction: ignored\n\n"
             "**src/flask/app.py**:\nvariable: default_config\nfunction: Blueprint.__init__\n"
             "comment: not a location\n```")
    assert parse_locations(reply, KNOWN) == {
        "src/flask/blueprints.py": [("class", "Blueprint"), ("function", "Blueprint.__init__"),
                                    ("line", "193")],
        "src/flask/app.py": [("variable", "default_config"), ("function", "Blueprint.__init__")]}


@pytest.mark.parametrize(("model", "retrieved", "combined"), [
    (["a", "b", "c"], ["c", "d", "a"], ["a", "c", "b", "d"]),  # named twice first
    (["a", "b"], ["x", "y", "z", "a"], ["a", "b", "x", "y", "z"][:4]),
    ([], ["x", "y", "z", "w"], ["x", "y", "z"]),
])
def test_model_and_retrieval_rankings_combine_as_agentless(
        model: list[str], retrieved: list[str], combined: list[str]) -> None:
    assert merge_rankings(model, retrieved, 3)[:4] == combined


def test_code_windows_merge_and_mark_elisions() -> None:
    text = "\n".join(f"l{i}" for i in range(1, 31))
    spans = merge_spans([(10, 10), (14, 15), (29, 29)], 2, 30)
    assert spans == [(8, 17), (27, 30)]
    assert render_windows("f.py", text, spans, line_numbers=False).splitlines() == \
        ["### f.py", "...", *[f"l{i}" for i in range(8, 18)], "...", "l27", "l28", "l29", "l30"]
    numbered = render_windows("f.py", text, [(1, 2)], line_numbers=True)
    assert numbered == "### f.py\n1 l1\n2 l2\n..."


FILES = {"pkg/core.py": "def f(x):\n    return x + 1   \n\n\ndef g():\n    return 2\n",
         "pkg/other.py": "A = 1\n"}


def test_search_replace_edits_apply_in_order_and_report_misses() -> None:
    reply = """### Analysis
The bug is in `f`.

### Fix
```python
### pkg/core.py
<<<<<<< SEARCH
def f(x):
    return x + 1
=======
def f(x):
    return x - 1
>>>>>>> REPLACE
```
```python
### pkg/core.py
<<<<<<< SEARCH
    return 2
=======
    return 3
>>>>>>> REPLACE
```
```python
### pkg/other.py
<<<<<<< SEARCH
B = 2
=======
B = 3
>>>>>>> REPLACE
```
```python
### pkg/new.py
<<<<<<< SEARCH
=======
VALUE = 1
>>>>>>> REPLACE
```"""
    edits = parse_edits(reply)
    assert [e[0] for e in edits] == ["pkg/core.py", "pkg/core.py", "pkg/other.py", "pkg/new.py"]
    changed, skipped = apply_edits(FILES, edits)
    # the first search matches only when trailing whitespace is ignored
    assert changed == {"pkg/core.py": "def f(x):\n    return x - 1\n\n\ndef g():\n    return 3\n",
                       "pkg/new.py": "VALUE = 1\n"}
    assert skipped == ["pkg/other.py: search text not found"]


def test_diffs_made_from_edits_apply_with_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for path, text in {**FILES, "pkg/noeol.py": "x = 1"}.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    after = {"pkg/core.py": FILES["pkg/core.py"].replace("x + 1", "x * 2"),
             "pkg/noeol.py": "x = 2", "pkg/added.py": "NEW = True\n"}
    patch = make_diff({**FILES, "pkg/noeol.py": "x = 1"}, after)
    assert patch.count("diff --git") == 3 and "new file mode 100644" in patch
    (tmp_path / "p.diff").write_text(patch)
    subprocess.run(["git", "apply", str(tmp_path / "p.diff")], cwd=repo, check=True)
    for path, text in after.items():
        assert (repo / path).read_text() == text
    assert make_diff(FILES, {"pkg/core.py": FILES["pkg/core.py"]}) == ""


def test_unknown_localization_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"option localization must be one of agentless\|bm25"):
        AgentlessSettings.from_options({"localization": "embeddings"})
    assert AgentlessSettings.from_options({"top_files": "5"}).top_files == 5
