"""The agentless single patch: localise, then ask once for the fix. No test is run.

`localization: agentless` (default) follows the published Agentless pipeline's shape
(localize.py), one model call per step, each within the task's output cap (16384 tokens):

1. files: the repository's structure (source files at the base commit, tests left out) and
   the issue; the model lists up to five files to edit. Its ranking is combined with a
   BM25 ranking of the files (Agentless combines it with embedding retrieval), and the top
   three are kept;
2. elements: compressed skeletons of those files (signatures, `...` for bodies); the model
   names the classes, functions and variables to inspect or edit;
3. edit locations: the code of those elements with line numbers; the model names the
   lines, functions or classes to change;
4. repair: the code around the edit locations (10 lines each side), the issue, and a request
   for SEARCH/REPLACE edits, applied here to the files and turned into a `git diff`-style
   patch. A reply holding a unified diff instead is taken as the diff.

Localisation calls are greedy (temperature 0, as Agentless); the repair uses the task's
sampling. When a step yields nothing usable, the next one falls back to the previous step's
material (all candidate files' skeletons, all elements, the top file) rather than failing.

`localization: bm25` is the one-call variant: the BM25-ranked files that fit
`retrieval_context_tokens` (27000, as SWE-bench's `bm25_27K` setting), line-numbered, and
one request for a unified diff, extracted with the `swebench` package's `extract_diff` and
repaired with its `repair_patch` when the hunk headers are off.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

from k2eval.adapters.base import AttemptContext, Item, SolveResult
from k2eval.adapters.swebench.agentic import WORKDIR, OptionSettings, is_test_path
from k2eval.adapters.swebench.localize import (
    fit_structure,
    location_spans,
    match_path,
    merge_rankings,
    merge_spans,
    parse_files,
    parse_locations,
    render_windows,
    skeleton,
    structure_text,
    tokens,
)
from k2eval.errors import ConfigError, InfraError
from k2eval.models.base import Message
from k2eval.sandbox.base import Sandbox
from swebench.inference.make_datasets.utils import extract_diff, repair_patch

SOURCE_SUFFIXES = (
    ".py", ".pyx", ".pyi", ".js", ".jsx", ".mjs", ".cjs", ".ts", ".tsx", ".vue", ".go", ".rs",
    ".java", ".kt", ".scala", ".rb", ".php", ".c", ".h", ".cc", ".cpp", ".cxx", ".hpp", ".hh",
    ".cs", ".swift", ".m", ".lua", ".sh", ".ex", ".exs", ".erl", ".hs", ".ml", ".clj")
MAX_FILE_BYTES = 400_000
MAX_MODEL_FILES = 5
TOKEN = re.compile(r"[A-Za-z0-9]+")
LOCALIZATIONS = ("agentless", "bm25")


@dataclass(frozen=True)
class AgentlessSettings(OptionSettings):
    localization: str = "agentless"
    top_files: int = 3
    """Files kept after combining the model's and the retrieval ranking (Agentless: 3)."""
    structure_tokens: int = 60000
    """Budget of the repository structure listing; larger repositories list their
    best-retrieved files only."""
    context_tokens: int = 48000
    """Budget of the code shown in each of steps 2-4."""
    context_window_lines: int = 10
    retrieval_context_tokens: int = 27000
    """bm25 mode: the code budget of its single prompt."""

    def __post_init__(self) -> None:
        if self.localization not in LOCALIZATIONS:
            raise ConfigError(f"option localization must be one of {'|'.join(LOCALIZATIONS)}, "
                              f"got {self.localization!r}")


# -- prompts -------------------------------------------------------------------------------

FILES_PROMPT = """\
Read the issue below and the structure of the repository it was reported against, and \
name the files that would have to be edited to resolve it.

<issue>
{problem_statement}
</issue>

<repository_structure>
{structure}
</repository_structure>

List at most 5 files with their full paths as shown in the structure, the most important \
first, one per line, inside a ``` block. For example:
```
pkg/core/models.py
pkg/utils.py
```
"""

ELEMENTS_PROMPT = """\
Read the issue below and the skeletons of the files that probably need to change (function \
bodies are elided as `...`). Name every location that should be inspected or edited to \
resolve the issue: the classes, functions or methods, and global variables involved, \
including closely related ones.

<issue>
{problem_statement}
</issue>

<skeletons>
{skeletons}
</skeletons>

Answer inside a ``` block: a file's path on its own line, then one location per line as \
`class: Name`, `function: name`, `function: Class.method` or `variable: NAME`. Naming a \
class covers all of its methods. For example:
```
pkg/core/models.py
class: Model
function: Manager.get_queryset

pkg/utils.py
function: normalize
variable: DEFAULT_TIMEOUT
```
"""

EDIT_LOCATIONS_PROMPT = """\
Read the issue below and the code that is probably involved (line numbers added; they are \
not part of the files). Name the exact places that must be edited to resolve the issue.

<issue>
{problem_statement}
</issue>

<code>
{code}
</code>

Answer inside a ``` block: a file's path on its own line, then one location per line as \
`line: N`, `function: name`, `function: Class.method` or `class: Name`. For example:
```
pkg/core/models.py
function: Manager.get_queryset
line: 212

pkg/utils.py
line: 40
line: 57
```
"""

REPAIR_PROMPT = """\
We are resolving the issue below in a repository. Here is the issue:

<issue>
{problem_statement}
</issue>

Below are code segments from the files that are most likely involved; `...` marks code \
left out. One or more of them contain the problem.

<code>
{code}
</code>

First work out where the problem is, then fix it with one or more SEARCH/REPLACE edits. \
Each edit is written as:
1. the file's path on its own line, after `### `
2. a line `<<<<<<< SEARCH`
3. a contiguous run of lines copied exactly from the current file (indentation included)
4. a line `=======`
5. the lines that replace them
6. a line `>>>>>>> REPLACE`

For example:

```python
### pkg/shapes.py
<<<<<<< SEARCH
def area(width, height):
    return width + height
=======
def area(width, height):
    return width * height
>>>>>>> REPLACE
```

Write every line with its full indentation. Put each edit in its own ```python block.
"""

BM25_PROMPT = """\
Below is an issue reported against a software repository, followed by the repository \
files that look most relevant to it (line numbers added for reference; they are not part \
of the files).

<issue>
{problem_statement}
</issue>

<code>
{code}
</code>

Write a patch that resolves the issue. Answer with one unified diff in the format that \
`git apply` accepts, with paths relative to the repository root (a/ and b/ prefixes) and a \
few unchanged context lines around every change, enclosed in <patch></patch>. For example:

<patch>
--- a/pkg/shapes.py
+++ b/pkg/shapes.py
@@ -10,7 +10,7 @@ def area(width, height):
     if width < 0 or height < 0:
         raise ValueError("negative size")
-    return width + height
+    return width * height


 def perimeter(width, height):
</patch>
"""


# -- repository ----------------------------------------------------------------------------

def tokenize(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text)]


def is_candidate(path: str) -> bool:
    return path.endswith(SOURCE_SUFFIXES) and not is_test_path(path)


async def read_repository(sandbox: Sandbox) -> dict[str, str]:
    """Source files of the fresh checkout (the base commit) as {path: text}."""
    listing = await sandbox.exec("git ls-files -z", timeout=300, workdir=WORKDIR)
    paths = [p for p in listing.stdout.split("\0") if p and is_candidate(p)]
    if not paths:
        return {}
    await sandbox.write_file("/tmp/k2eval_paths", "\0".join(paths))
    archive = await sandbox.exec(
        "tar -czf /tmp/k2eval_repo.tgz --null --no-recursion -T /tmp/k2eval_paths",
        timeout=600, workdir=WORKDIR)
    if archive.exit_code not in (0, 1):  # 1: a file changed or vanished while read
        raise InfraError(f"could not archive the repository in the instance image: "
                         f"{archive.stderr[-500:]}")
    return read_archive(await sandbox.read_file("/tmp/k2eval_repo.tgz"))


def read_archive(data: bytes) -> dict[str, str]:
    """{path: text} of the UTF-8 files (up to MAX_FILE_BYTES) in a .tar.gz."""
    files: dict[str, str] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar:
            if not member.isfile() or member.size > MAX_FILE_BYTES:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                files[member.name] = handle.read().decode("utf-8")
            except UnicodeDecodeError:
                continue
    return files


def rank_files(files: dict[str, str], query: str) -> list[str]:
    """Paths by BM25 score of "path + contents" against the query, best first."""
    from rank_bm25 import BM25Okapi

    paths = sorted(files)
    if not paths:
        return []
    corpus = [tokenize(f"{p}\n{files[p]}") for p in paths]
    scores = BM25Okapi(corpus).get_scores(tokenize(query))
    order = sorted(range(len(paths)), key=lambda i: (-scores[i], paths[i]))
    return [paths[i] for i in order]


def with_line_numbers(path: str, text: str) -> str:
    body = "\n".join(f"{i} {line}" for i, line in enumerate(text.split("\n"), 1))
    return f"[start of {path}]\n{body}\n[end of {path}]"


def build_context(files: dict[str, str], ranked: list[str], budget_tokens: int
                  ) -> tuple[str, list[str]]:
    """bm25 mode: the top-ranked files that fit `budget_tokens`, and their paths."""
    chosen, blocks, used = [], [], 0
    for path in ranked:
        block = with_line_numbers(path, files[path])
        cost = tokens(block)
        if used + cost > budget_tokens:
            continue
        chosen.append(path)
        blocks.append(block)
        used += cost
        if budget_tokens - used < 256:
            break
    return "\n".join(blocks), chosen


def within_budget(blocks: list[str], budget_tokens: int) -> list[str]:
    """The leading blocks that fit `budget_tokens` together (at least the first, cut)."""
    kept: list[str] = []
    used = 0
    for block in blocks:
        cost = tokens(block)
        if used + cost > budget_tokens:
            break
        kept.append(block)
        used += cost
    if not kept and blocks:
        kept.append(blocks[0][:budget_tokens * 4])
    return kept


# -- localisation --------------------------------------------------------------------------

@dataclass
class Trace:
    """The calls of one attempt, in order: the transcript, and what each step found."""

    messages: list[Message] = field(default_factory=list)
    steps: dict[str, Any] = field(default_factory=dict)

    async def ask(self, ctx: AttemptContext, prompt: str, *, greedy: bool) -> str:
        messages: list[Message] = [{"role": "user", "content": prompt}]
        sampling = ctx.sampling(temperature=0.0) if greedy else None
        completion = await ctx.chat(messages, sampling=sampling)
        self.messages.extend([*messages, completion.as_message()])
        self.steps.setdefault("finish_reasons", []).append(completion.finish_reason)
        return completion.text or ""


async def localize_files(ctx: AttemptContext, trace: Trace, issue: str,
                         files: dict[str, str], ranked: list[str],
                         settings: AgentlessSettings) -> list[str]:
    """Step 1: the model's ranking from the structure, combined with the retrieval ranking."""
    listed = fit_structure(sorted(files), ranked, settings.structure_tokens)
    reply = await trace.ask(ctx, FILES_PROMPT.format(problem_statement=issue,
                                                     structure=structure_text(listed)),
                            greedy=True)
    model_files = parse_files(reply, set(files), MAX_MODEL_FILES)
    candidates = merge_rankings(model_files, ranked, settings.top_files)[:settings.top_files]
    trace.steps.update(model_files=model_files, retrieved_files=ranked[:settings.top_files],
                       files=candidates, structure_files=len(listed))
    return candidates


async def localize_elements(ctx: AttemptContext, trace: Trace, issue: str,
                            files: dict[str, str], candidates: list[str],
                            settings: AgentlessSettings) -> dict[str, list[tuple[str, str]]]:
    """Step 2: classes / functions / variables named from the candidates' skeletons."""
    blocks = [f"### {path}\n```\n{skeleton(path, files[path], settings.context_tokens)}\n```"
              for path in candidates]
    shown = within_budget(blocks, settings.context_tokens)
    reply = await trace.ask(ctx, ELEMENTS_PROMPT.format(problem_statement=issue,
                                                        skeletons="\n\n".join(shown)),
                            greedy=True)
    elements = parse_locations(reply, set(candidates[:len(shown)]))
    trace.steps["elements"] = {path: [f"{k}: {n}" for k, n in locs]
                               for path, locs in elements.items()}
    return elements


async def localize_edits(ctx: AttemptContext, trace: Trace, issue: str, files: dict[str, str],
                         elements: dict[str, list[tuple[str, str]]], candidates: list[str],
                         settings: AgentlessSettings) -> dict[str, list[tuple[str, str]]]:
    """Step 3: edit locations from the code of the elements (or of the top file)."""
    blocks = code_windows(files, elements, candidates, margin=0, line_numbers=True)
    shown = within_budget(blocks, settings.context_tokens)
    reply = await trace.ask(ctx, EDIT_LOCATIONS_PROMPT.format(problem_statement=issue,
                                                              code="\n\n".join(shown)),
                            greedy=True)
    edits = parse_locations(reply, set(files))
    trace.steps["edit_locations"] = {path: [f"{k}: {n}" for k, n in locs]
                                     for path, locs in edits.items()}
    return edits or elements


def code_windows(files: dict[str, str], locations: dict[str, list[tuple[str, str]]],
                 candidates: list[str], *, margin: int, line_numbers: bool) -> list[str]:
    """One block per file: its code around the named locations, `margin` lines each side;
    when nothing named can be found, the top candidate file whole."""
    blocks = []
    for path, locs in locations.items():
        text = files[path]
        spans = merge_spans(location_spans(text, path, locs), margin, len(text.splitlines()))
        if spans:
            blocks.append(render_windows(path, text, spans, line_numbers=line_numbers))
    if not blocks and candidates:
        text = files[candidates[0]]
        blocks.append(render_windows(candidates[0], text, [(1, len(text.splitlines()))],
                                     line_numbers=line_numbers))
    return blocks


def repair_context(files: dict[str, str], edits: dict[str, list[tuple[str, str]]],
                   candidates: list[str], settings: AgentlessSettings) -> str:
    """Step 4's code: windows of `context_window_lines` around each edit location."""
    blocks = code_windows(files, edits, candidates, margin=settings.context_window_lines,
                          line_numbers=False)
    return "\n\n".join(within_budget(blocks, settings.context_tokens))


# -- repair --------------------------------------------------------------------------------

EDIT_BLOCK = re.compile(
    r"^###[ \t]*(?P<path>\S+)[ \t]*\n(?:(?!###).*\n){0,2}?<<<<<<< SEARCH\n"
    r"(?P<search>(?:.*\n)*?)=======\n"
    r"(?P<replace>(?:.*\n)*?)>>>>>>> REPLACE", re.M)


def parse_edits(reply: str) -> list[tuple[str, str, str]]:
    """(path, search, replace) for each SEARCH/REPLACE edit in the reply, in order."""
    return [(m["path"], m["search"], m["replace"])
            for m in EDIT_BLOCK.finditer(reply.replace("\r\n", "\n") + "\n")]


def _loose_find(text: str, search: str) -> tuple[int, int] | None:
    """Where `search` occurs in `text` ignoring trailing whitespace on each line."""
    lines, wanted = text.splitlines(keepends=True), search.splitlines()
    stripped = [line.rstrip() for line in wanted]
    for i in range(len(lines) - len(wanted) + 1):
        if [line.rstrip() for line in lines[i:i + len(wanted)]] == stripped:
            start = sum(len(line) for line in lines[:i])
            return start, start + sum(len(line) for line in lines[i:i + len(wanted)])
    return None


def apply_edits(files: dict[str, str], edits: list[tuple[str, str, str]]
                ) -> tuple[dict[str, str], list[str]]:
    """The changed files after applying `edits` in order, and why any edit was skipped.

    The search text must occur in the file (exactly, else ignoring trailing whitespace);
    its first occurrence is replaced. An empty search creates a new file."""
    changed: dict[str, str] = {}
    skipped: list[str] = []
    for raw_path, search, replace in edits:
        path = match_path(raw_path, set(files)) or raw_path.strip()
        current = changed.get(path, files.get(path))
        if current is None:
            if search.strip():
                skipped.append(f"{raw_path}: no such file")
            else:
                changed[path] = replace
            continue
        if search and search in current:
            changed[path] = current.replace(search, replace, 1)
            continue
        where = _loose_find(current, search) if search.strip() else None
        if where is None:
            skipped.append(f"{path}: search text not found")
            continue
        changed[path] = current[:where[0]] + replace + current[where[1]:]
    return {p: t for p, t in changed.items() if t != files.get(p)}, skipped


def make_diff(before: dict[str, str], after: dict[str, str]) -> str:
    """A `git diff`-style patch (a/ b/ prefixes) turning `before` into `after`."""
    parts = []
    for path in sorted(after):
        old = before.get(path)
        old_lines = (old or "").splitlines(keepends=True)
        new_lines = after[path].splitlines(keepends=True)
        header = f"diff --git a/{path} b/{path}\n"
        if old is None:
            header += "new file mode 100644\n"
        body = "".join(_terminated(difflib.unified_diff(
            old_lines, new_lines, "/dev/null" if old is None else f"a/{path}", f"b/{path}")))
        if body:
            parts.append(header + body)
    return "".join(parts)


def _terminated(lines: Any) -> Any:
    for line in lines:
        yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


async def applies(sandbox: Sandbox, patch: str) -> bool:
    await sandbox.write_file("/tmp/k2eval_candidate.diff", patch)
    check = await sandbox.exec("git apply --check /tmp/k2eval_candidate.diff", timeout=120,
                               workdir=WORKDIR)
    return check.exit_code == 0


async def choose_patch(sandbox: Sandbox, reply: str) -> tuple[str, dict[str, Any]]:
    """The diff from the model's reply, hunk headers repaired only when that makes it apply."""
    raw = extract_diff(reply) or ""
    raw = raw if not raw.strip() or raw.endswith("\n") else raw + "\n"
    if not raw.strip() or await applies(sandbox, raw):
        return raw, {"repaired": False, "applies": bool(raw.strip())}
    try:
        repaired = repair_patch(raw) or ""
    except (IndexError, ValueError):
        repaired = ""
    if repaired.strip() and await applies(sandbox, repaired):
        return repaired, {"repaired": True, "applies": True}
    return raw, {"repaired": False, "applies": False}


async def patch_from_reply(sandbox: Sandbox, files: dict[str, str], reply: str
                           ) -> tuple[str, dict[str, Any]]:
    """The patch of a repair reply: its SEARCH/REPLACE edits applied to the files, or, when
    it has none, the unified diff it holds."""
    edits = parse_edits(reply)
    if not edits:
        patch, info = await choose_patch(sandbox, reply)
        return patch, {"edit_format": "diff" if patch.strip() else "none", **info}
    changed, skipped = apply_edits(files, edits)
    patch = make_diff(files, changed)
    ok = bool(patch) and await applies(sandbox, patch)
    return patch, {"edit_format": "search_replace", "edits": len(edits),
                   "skipped_edits": skipped, "applies": ok}


# -- the two modes -------------------------------------------------------------------------

async def run_agentless(item: Item, ctx: AttemptContext, sandbox: Sandbox,
                        settings: AgentlessSettings) -> SolveResult:
    issue = item.data["problem_statement"]
    files = await read_repository(sandbox)
    ranked = await asyncio.to_thread(rank_files, files, issue)
    if settings.localization == "bm25":
        return await _bm25_patch(ctx, sandbox, issue, files, ranked, settings)
    trace = Trace()
    candidates = await localize_files(ctx, trace, issue, files, ranked, settings)
    elements = await localize_elements(ctx, trace, issue, files, candidates, settings)
    edits = await localize_edits(ctx, trace, issue, files, elements, candidates, settings)
    code = repair_context(files, edits, candidates, settings)
    reply = await trace.ask(ctx, REPAIR_PROMPT.format(problem_statement=issue, code=code),
                            greedy=False)
    patch, info = await patch_from_reply(sandbox, files, reply)
    return SolveResult(messages=trace.messages, output={
        "patch": patch, "localization": trace.steps, "finish_reason":
        trace.steps["finish_reasons"][-1], **info})


async def _bm25_patch(ctx: AttemptContext, sandbox: Sandbox, issue: str, files: dict[str, str],
                      ranked: list[str], settings: AgentlessSettings) -> SolveResult:
    code, chosen = build_context(files, ranked, settings.retrieval_context_tokens)
    messages: list[Message] = [{"role": "user", "content": BM25_PROMPT.format(
        problem_statement=issue, code=code)}]
    completion = await ctx.chat(messages)
    messages.append(completion.as_message())
    patch, info = await choose_patch(sandbox, completion.text or "")
    return SolveResult(messages=messages, output={
        "patch": patch, "retrieved_files": chosen, "finish_reason": completion.finish_reason,
        **info})

