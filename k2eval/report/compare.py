"""Side-by-side comparison of runs: paired tests per task, a per-item table, transcripts, charts.

Each argument is one *side*: a run directory, or a folder of run directories (e.g. one night
of a suite). Runs are matched across sides by task; the first side is the baseline that the
others are tested against on the items both scored. Runs that failed or never finished have
no scores to test: they are listed on the page, with their cause, as not compared; a damaged
run directory inside a folder is left out with a warning.
"""

from __future__ import annotations

import base64
import gzip
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup

from k2eval.errors import UserError
from k2eval.records import Attempt, Score
from k2eval.report import charts
from k2eval.report.render import render
from k2eval.report.runs import DamagedRun, RunView, load_runs, protocol_differences
from k2eval.report.table import metric_label, serving_row
from k2eval.scoring.paired import PairedResult, paired_compare

MAX_CATEGORIES = 40


@dataclass
class TaskComparison:
    """One task across sides: runs[0] is the baseline; tests[i] compares runs[i + 1] with it."""

    title: str
    runs: list[RunView]
    tests: list[PairedResult]
    differences: list[list[str]]
    """Protocol differences of each other run from the baseline (compared anyway with --force)."""

    @property
    def forced(self) -> bool:
        return any(self.differences)

    def item_rows(self) -> list[dict[str, Any]]:
        """Per item: each run's score (fraction or None) and how the others moved vs the baseline."""
        ids: dict[str, None] = {}
        for run in self.runs:
            ids.update(dict.fromkeys(run.item_ids()))
            ids.update(dict.fromkeys(run.item_scores))
        rows = []
        for item_id in ids:
            values = [run.item_scores.get(item_id) for run in self.runs]
            rows.append({"item": item_id, "values": values, "status": _status(values)})
        return rows


def _status(values: list[float | None]) -> str:
    base, others = values[0], values[1:]
    if base is None or any(v is None for v in others):
        return "missing"
    moves = {("better" if v > base else "worse") for v in others if v is not None and v != base}
    if not moves:
        return "same"
    return moves.pop() if len(moves) == 1 else "mixed"


@dataclass
class GroupComparison:
    """A group task (tau2) over its member comparisons: items pooled across members."""

    title: str
    members: list[str]
    labels: list[str]
    """Per side: the model."""
    scores: list[float]
    """Per side: the micro-average (percent) over the pooled member items."""
    n_items: list[int]
    tests: list[PairedResult]


@dataclass
class Comparison:
    sides: list[list[RunView]]
    tasks: list[TaskComparison]
    unmatched: list[RunView] = field(default_factory=list)
    groups: list[GroupComparison] = field(default_factory=list)
    not_compared: list[RunView] = field(default_factory=list)
    """Runs with no score to compare (failed or unfinished); `status_text` says why."""
    skipped: list[str] = field(default_factory=list)
    """Unreadable run directories left out, one line each."""

    @property
    def forced(self) -> bool:
        return any(t.forced for t in self.tasks)


def _pair(base: RunView, other: RunView) -> PairedResult:
    binary = base.binary and other.binary
    return paired_compare(base.item_scores, other.item_scores, binary=binary)


def build_comparison(paths: Sequence[str | Path], *, force: bool = False) -> Comparison:
    """Match runs across sides by task and run the paired tests (UserError on mismatches)."""
    if len(paths) < 2:
        raise UserError("compare needs at least two run directories (baseline first)")
    skipped: list[str] = []
    loaded = [load_runs([p], skipped=skipped) for p in paths]
    not_compared = [run for side in loaded for run in side if not run.usable]
    sides = [[run for run in side if run.usable and _readable(run, skipped)] for side in loaded]
    groups: list[list[RunView]] = []
    unmatched: list[RunView] = []
    if not all(sides):
        if not not_compared:  # every run of a side was left out as damaged
            raise UserError(f"nothing to compare: {'; '.join(skipped)}")
        # else a side has no run with a score: the page shows why (failed, unfinished)
    elif all(len(side) == 1 for side in sides):
        groups.append([side[0] for side in sides])
    else:
        by_task: dict[str, list[RunView | None]] = {}
        for index, side in enumerate(sides):
            for run in side:
                slot = by_task.setdefault(run.task, [None] * len(sides))
                taken = slot[index]
                if taken is not None:
                    raise UserError(f"{paths[index]} holds two runs of {run.task} "
                                    f"({taken.path.name}, {run.path.name}); pass one of them")
                slot[index] = run
        for slot in by_task.values():
            present = [r for r in slot if r is not None]
            if len(present) == len(sides):
                groups.append(present)
            else:
                unmatched.extend(present)
        if not groups and not not_compared:
            raise UserError("no task was run on every side: nothing to compare "
                            f"(tasks: {', '.join(sorted(by_task))})")

    tasks = []
    for runs in groups:
        diffs = [protocol_differences(runs[0], other) for other in runs[1:]]
        for other, diff in zip(runs[1:], diffs, strict=True):
            if diff and not force:
                raise UserError(f"{runs[0].path} and {other.path} differ in task or protocol "
                                f"({'; '.join(diff)}); pass --force to compare them anyway")
        names = dict.fromkeys(r.task for r in runs)
        tasks.append(TaskComparison(" vs ".join(names), runs,
                                    [_pair(runs[0], other) for other in runs[1:]], diffs))
    return Comparison(sides, tasks, unmatched, _group_comparisons(tasks), not_compared, skipped)


def _readable(run: RunView, skipped: list[str]) -> bool:
    """The page shows every attempt of a compared run: one whose journals cannot be read is
    left out, named (runs not compared are listed with their state; their journals are not
    read)."""
    try:
        run.read_journals()
    except DamagedRun as exc:
        skipped.append(str(exc))
        return False
    return True


def _group_comparisons(tasks: list[TaskComparison]) -> list[GroupComparison]:
    """Pooled comparisons for each group task whose members were all compared (same protocol)."""
    from k2eval.spec import all_tasks

    by_task = {t.runs[0].task: t for t in tasks if not t.forced}
    out = []
    for spec in all_tasks().values():
        members = [by_task.get(m) for m in spec.members]
        if not spec.members or any(m is None for m in members):
            continue
        found = [m for m in members if m is not None]
        pooled = [{f"{t.runs[side].task}/{item}": v for t in found
                   for item, v in t.runs[side].item_scores.items()}
                  for side in range(len(found[0].runs))]
        binary = all(r.binary for t in found for r in t.runs)
        out.append(GroupComparison(
            f"{spec.name} ({spec.benchmark})", list(spec.members),
            [run.model for run in found[0].runs],
            [100.0 * sum(p.values()) / len(p) if p else float("nan") for p in pooled],
            [len(p) for p in pooled],
            [paired_compare(pooled[0], other, binary=binary) for other in pooled[1:]]))
    return out


# --- page -------------------------------------------------------------------------------------

def _visible(text: str) -> str:
    """Control sequences (ANSI colours) shown as text: ESC becomes a visible ␛."""
    return text.replace("\x1b", "␛")


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return _visible(value)
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _attempt_payload(attempt: Attempt, grade: Score | None) -> dict[str, Any]:
    return _clean({
        "index": attempt.index, "status": attempt.status, "messages": attempt.messages,
        "output": attempt.output, "error": attempt.error,
        "grade": None if grade is None else {
            "score": grade.value, "correct": grade.correct, "status": grade.status,
            "reason": grade.reason, "details": grade.details},
    })


def _transcripts(task: TaskComparison, max_attempts: int) -> dict[str, str]:
    """item id -> base64 of gzipped JSON [per run: {attempts, omitted}], opened on demand."""
    out: dict[str, str] = {}
    for row in task.item_rows():
        per_run = []
        for run in task.runs:
            attempts = run.transcripts(row["item"])
            per_run.append({"attempts": [_attempt_payload(a, g) for a, g in attempts[:max_attempts]],
                            "omitted": max(0, len(attempts) - max_attempts)})
        raw = json.dumps(per_run, ensure_ascii=False, default=str).encode()
        out[row["item"]] = base64.b64encode(gzip.compress(raw, 6, mtime=0)).decode("ascii")
    return out


def _charts(task: TaskComparison) -> list[tuple[str, Markup]]:
    """(caption, inline SVG): score per category of each breakdown, per-item score histogram."""
    names = [f"{r.model} ({r.run_id})" for r in task.runs]
    out = []
    keys = dict.fromkeys(k for r in task.runs for k in r.breakdowns)
    for key in keys:
        parts = [p for r in task.runs if isinstance(p := r.breakdowns.get(key), dict)]
        if len(parts) != len(task.runs):
            continue
        cats = list(dict.fromkeys(c for p in parts for c in p))
        series = [(name, [_breakdown_score(p.get(c)) for c in cats])
                  for name, p in zip(names, parts, strict=True)]
        # per-category shares only: not per-item tables, which the item list shows better
        if len(cats) > MAX_CATEGORIES or all(v is None for _, vs in series for v in vs):
            continue
        title = f"{task.title}: score by {key}"
        out.append((title, charts.bar_chart(cats, series, title)))
    dist = [(name, list(run.item_scores.values())) for name, run in zip(names, task.runs, strict=True)]
    title = f"{task.title}: distribution of per-item scores"
    out.append((title, charts.histogram(dist, title, steps=_score_steps(task.runs))))
    return out


def _score_steps(runs: list[RunView]) -> int | None:
    """k when every per-item score is a multiple of 1/k for a small k (right/wrong attempts)."""
    k = max(r.attempts_per_item for r in runs)
    if not 1 <= k <= 10:
        return None
    values = [v for r in runs for v in r.item_scores.values()]
    return k if all(abs(v * k - round(v * k)) < 1e-9 for v in values) else None


def _breakdown_score(cell: Any) -> float | None:
    if isinstance(cell, int | float):
        return float(cell)
    if isinstance(cell, dict) and isinstance(cell.get("score"), int | float):
        return float(cell["score"])
    return None


def _serving(runs: list[RunView]) -> list[dict[str, Any] | None]:
    """Per run: reasoning tokens and tool-call conformance; empty when no run reported any."""
    rows = [serving_row(run) for run in runs]
    return rows if any(rows) else []


def render_compare_page(comparison: Comparison, *, max_attempts: int = 4) -> str:
    tasks = []
    for index, task in enumerate(comparison.tasks):
        tasks.append({
            "id": f"t{index}", "title": task.title, "runs": task.runs, "tests": task.tests,
            "differences": task.differences,
            "metric": metric_label(task.runs[0].metric, task.runs[0].k),
            "rows": task.item_rows(), "charts": _charts(task),
            "transcripts": _transcripts(task, max_attempts),
            "serving": _serving(task.runs),
        })
    return render("compare.html", tasks=tasks, comparison=comparison,
                  generated=time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))


def write_compare_page(paths: Sequence[str | Path], out: str | Path, *, force: bool = False,
                       max_attempts: int = 4) -> Path:
    """Build the comparison of `paths` (baseline first) and write it as one HTML file."""
    comparison = build_comparison(paths, force=force)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_compare_page(comparison, max_attempts=max_attempts), encoding="utf-8")
    return out
