"""Hierarchical localisation in the shape of the published Agentless pipeline (pure parts).

Agentless (Xia et al., 2024, arXiv:2407.01489) narrows an issue down in three model steps:
files (from the repository's structure), then classes / functions / variables (from
compressed skeletons of the candidate files), then edit locations (from the code of those
elements, with line numbers); the repair step sees windows of code around the edit
locations. This module holds everything of that which needs no model and no container:
the structure listing, the skeletons, the element spans, the parsers of the model's
answers and the code windows. k2eval's own code and wording; the shapes follow Agentless.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass

CHARS_PER_TOKEN = 4
LONG_ASSIGNMENT_LINES = 30
"""Assignments longer than this many lines are shown by their head and tail in a skeleton."""
ASSIGNMENT_KEEP_LINES = 10
LOCATION_KINDS = ("class", "function", "variable", "line")
CODE_BLOCK = re.compile(r"```[^\n`]*\n(.*?)(?:```|\Z)", re.S)
LIST_MARKER = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
LINES = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


def tokens(text: str) -> int:
    """A rough token count (4 characters a token) for budgeting prompts."""
    return len(text) // CHARS_PER_TOKEN + 1


# -- repository structure ------------------------------------------------------------------

def structure_text(paths: list[str]) -> str:
    """The repository's files as an indented tree (directories end in '/'), as Agentless
    shows the repository to the model."""
    lines: list[str] = []
    shown: set[tuple[str, ...]] = set()
    for path in sorted(paths):
        parts = path.split("/")
        for depth in range(len(parts) - 1):
            key = tuple(parts[:depth + 1])
            if key not in shown:
                shown.add(key)
                lines.append("    " * depth + parts[depth] + "/")
        lines.append("    " * (len(parts) - 1) + parts[-1])
    return "\n".join(lines)


def fit_structure(paths: list[str], ranked: list[str], budget_tokens: int) -> list[str]:
    """All `paths` when their tree fits `budget_tokens`; otherwise the best-`ranked` ones
    that fit (large repositories), so the listing never silently ends half-way."""
    if tokens(structure_text(paths)) <= budget_tokens:
        return list(paths)
    low, high = 1, len(ranked)
    while low < high:  # the longest prefix of the ranking whose tree fits
        mid = (low + high + 1) // 2
        if tokens(structure_text(ranked[:mid])) <= budget_tokens:
            low = mid
        else:
            high = mid - 1
    return ranked[:low]


# -- skeletons -----------------------------------------------------------------------------

def _header_end(node: ast.stmt, body: list[ast.stmt]) -> int:
    """The last line of a def/class header: the line before its first body statement."""
    return max(node.lineno, body[0].lineno - 1) if body[0].lineno > node.lineno else node.lineno


def _first_line(node: ast.stmt) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([d.lineno for d in decorators] + [node.lineno])


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def python_skeleton(text: str) -> str | None:
    """A compressed view of a Python file: classes, function signatures and assignments at
    module and class level; function bodies become `...`, class docstrings are dropped, very
    long assignments keep their head and tail. None when the file does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    lines = text.splitlines()
    out: list[str] = []

    def span(start: int, end: int) -> None:
        out.extend(lines[start - 1:end])

    def visit(body: list[ast.stmt], top: bool = False) -> None:
        for node in body:
            end = node.end_lineno or node.lineno
            if top and out and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                 ast.ClassDef)):
                out.append("")
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                header = _header_end(node, node.body)
                span(_first_line(node), header)
                if header < end:
                    out.append(" " * node.body[0].col_offset + "...")
            elif isinstance(node, ast.ClassDef):
                span(_first_line(node), _header_end(node, node.body))
                inner = [n for n in node.body if not _is_docstring(n)]
                visit(inner)
                if not inner:
                    out.append(" " * node.body[0].col_offset + "...")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                if end - node.lineno + 1 > LONG_ASSIGNMENT_LINES:
                    span(node.lineno, node.lineno + ASSIGNMENT_KEEP_LINES - 1)
                    out.append(" " * node.col_offset + "...")
                    span(end - ASSIGNMENT_KEEP_LINES + 1, end)
                else:
                    span(node.lineno, end)

    visit(tree.body, top=True)
    return "\n".join(out)


def skeleton(path: str, text: str, budget_tokens: int) -> str:
    """The skeleton of a Python file; other files (and Python that does not parse) are
    shown as they are, cut to `budget_tokens`."""
    compressed = python_skeleton(text) if path.endswith((".py", ".pyi")) else None
    shown = text if compressed is None else compressed
    limit = budget_tokens * CHARS_PER_TOKEN
    return shown if len(shown) <= limit else shown[:limit] + "\n..."


# -- element spans -------------------------------------------------------------------------

@dataclass(frozen=True)
class Element:
    kind: str
    """class | function | variable"""
    name: str
    """`Class`, `function`, `Class.method`, `VARIABLE` or `Class.attribute`"""
    start: int
    end: int


def python_elements(text: str) -> list[Element]:
    """Classes, functions, methods and module/class-level variables with their line spans."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    found: list[Element] = []

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            end = node.end_lineno or node.lineno
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append(Element("function", prefix + node.name, _first_line(node), end))
            elif isinstance(node, ast.ClassDef):
                found.append(Element("class", prefix + node.name, _first_line(node), end))
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        found.append(Element("variable", prefix + target.id, node.lineno, end))

    visit(tree.body, "")
    return found


def find_element(elements: list[Element], kind: str, name: str) -> Element | None:
    """The element a location names: exact name first, then a unique `.name` suffix match
    (a method given without its class); a `function` may also name a class and vice versa."""
    identifier = re.match(r"[\w.]+", name.strip())
    if identifier is None:
        return None
    name = identifier.group().strip(".")
    exact = [e for e in elements if e.name == name]
    if not exact:
        exact = [e for e in elements if e.name.endswith("." + name)]
        if len(exact) > 1:
            return None
    if not exact:
        return None
    same_kind = [e for e in exact if e.kind == kind]
    return (same_kind or exact)[0]


# -- parsing the model's answers -----------------------------------------------------------

def code_blocks(reply: str) -> list[str]:
    """Contents of the ``` blocks of a reply (an unclosed last block counts); the reply
    itself when it has none."""
    blocks = CODE_BLOCK.findall(reply)
    return blocks or [reply]


def match_path(candidate: str, known: set[str]) -> str | None:
    """A path the model wrote, matched to a repository file: exact, or with a leading
    `./`, `/testbed/` or `a/` removed, or as the unique file ending with it."""
    path = candidate.strip().strip("`'\"*:,").strip()
    for prefix in ("./", "/testbed/", "testbed/", "a/", "b/", "/"):
        if path.startswith(prefix) and path not in known:
            path = path[len(prefix):]
    if path in known:
        return path
    tails = [k for k in known if k.endswith("/" + path)]
    return tails[0] if len(tails) == 1 else None


def parse_files(reply: str, known: set[str], limit: int) -> list[str]:
    """The repository files listed in the model's answer, in its order, at most `limit`."""
    files: list[str] = []
    for block in code_blocks(reply):
        for line in block.splitlines():
            words = LIST_MARKER.sub("", line).split()
            word = words[0] if words else ""
            path = match_path(word, known) if word else None
            if path and path not in files:
                files.append(path)
    return files[:limit]


def parse_locations(reply: str, known: set[str]) -> dict[str, list[tuple[str, str]]]:
    """{file: [(kind, name), ...]} from lines `path` followed by `class: X`, `function: X.y`,
    `variable: V`, `line: N`; lines naming other files or other kinds are ignored."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: str | None = None
    for block in code_blocks(reply):
        for raw in block.splitlines():
            line = LIST_MARKER.sub("", raw).strip()
            kind, sep, value = line.partition(":")
            if sep and kind.strip().lower() in LOCATION_KINDS and value.strip():
                if current is not None:
                    entry = (kind.strip().lower(), value.strip())
                    if entry not in found[current]:
                        found[current].append(entry)
            elif line:
                path = match_path(line.split()[0], known)
                current = path
                if path is not None:
                    found.setdefault(path, [])
    return {path: locs for path, locs in found.items() if locs}


def merge_rankings(model_files: list[str], retrieved: list[str], top_n: int) -> list[str]:
    """Agentless' combination of model-ranked and retrieval-ranked files: the top `top_n`
    of each, ordered by how many rankings name them (model order first on ties)."""
    counts: Counter[str] = Counter()
    for path in model_files[:top_n] + retrieved[:top_n]:
        counts[path] += 1
    return [path for path, _ in counts.most_common()]


# -- code windows --------------------------------------------------------------------------

def location_spans(text: str, path: str, locations: list[tuple[str, str]]
                   ) -> list[tuple[int, int]]:
    """Line spans (1-based, inclusive) of the locations in one file."""
    elements = python_elements(text) if path.endswith((".py", ".pyi")) else []
    n_lines = len(text.splitlines())
    spans: list[tuple[int, int]] = []
    for kind, name in locations:
        if kind == "line":
            numbers = LINES.match(name.strip())
            if numbers:
                start = int(numbers.group(1))
                end = int(numbers.group(2) or start)
                if 1 <= start <= min(end, n_lines):
                    spans.append((start, min(end, n_lines)))
            continue
        element = find_element(elements, kind, name)
        if element is not None:
            spans.append((element.start, element.end))
    return spans


def merge_spans(spans: list[tuple[int, int]], context: int, n_lines: int
                ) -> list[tuple[int, int]]:
    """Spans widened by `context` lines each side, clipped, overlapping ones merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((max(1, s - context), min(n_lines, e + context)) for s, e in spans):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def render_windows(path: str, text: str, spans: list[tuple[int, int]], *,
                   line_numbers: bool) -> str:
    """The file's lines in `spans`, `...` between windows, under a `### path` header."""
    lines = text.splitlines()
    parts = [f"### {path}"]
    previous_end = 0
    for start, end in spans:
        if start > previous_end + 1:
            parts.append("...")
        for number in range(start, end + 1):
            parts.append(f"{number} {lines[number - 1]}" if line_numbers else lines[number - 1])
        previous_end = end
    if previous_end < len(lines):
        parts.append("...")
    return "\n".join(parts)
