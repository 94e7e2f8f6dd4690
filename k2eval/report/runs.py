"""Read-only views of run directories for reports: headline numbers, per-item scores, transcripts."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from k2eval.errors import RunDirError
from k2eval.records import Attempt, Score
from k2eval.scoring import group_by_item, per_item_values
from k2eval.store.lock import LOCK, is_held, read_holder
from k2eval.store.rundir import ATTEMPTS, MANIFEST, SCORES, SUMMARY, RunRecord, load_run
from k2eval.store.runlog import RunManifest, RunSummary

PROTOCOL_TASK_FIELDS = ("name", "adapter", "metric", "k", "max_output_tokens", "temperature",
                        "top_p", "dataset", "limits", "options", "sandbox_image")


def is_run_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


class DamagedRun(RunDirError):
    """A run directory whose files cannot be read back (not merely unfinished or failed)."""


FINISHED, INCOMPLETE, FAILED, UNFINISHED = "finished", "incomplete", "failed", "unfinished"
RUN_STATES = (FINISHED, INCOMPLETE, FAILED, UNFINISHED)
"""From best to worst. finished: every attempt graded. incomplete: a score, but some attempts errored or were not
graded. failed: ended with nothing graded (e.g. every call refused). unfinished: no summary yet
(still running, interrupted, crashed, killed)."""


@dataclass
class RunView:
    """One run directory as reports see it; attempts and scores load on first use.

    Runs that failed or never finished load too (`state`, `cause`); their `summary` is then
    built from the manifest where the run wrote none, with no score."""

    path: Path
    manifest: RunManifest
    summary: RunSummary
    state: str = FINISHED
    cause: str = ""
    """Why the run is not finished, in a few words (the most frequent error, ...)."""
    summarized: bool = True
    """False where `summary` stands in for a summary.json the run did not write."""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> RunView:
        """Raises RunDirError for a path that is not a run directory, DamagedRun for one whose
        files cannot be read."""
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
        if not is_run_dir(path):
            raise RunDirError(f"{path / MANIFEST} is missing: {path} is not a run directory")
        try:
            record = load_run(path, with_attempts=False)
        except RunDirError as exc:
            raise DamagedRun(f"{exc}: the run directory is damaged") from None
        manifest, summary = record.manifest, record.summary
        status = manifest.status
        if status in ("running", "interrupted") or (summary is None and status not in
                                                   (FINISHED, INCOMPLETE, FAILED)):
            return cls(path, manifest, RunSummary.unscored(manifest), UNFINISHED,
                       _unfinished_cause(path, manifest), summarized=False)
        if summary is None:
            if status == FAILED:
                return cls(path, manifest, RunSummary.unscored(manifest), FAILED,
                           _manifest_error(manifest) or "no summary", summarized=False)
            raise DamagedRun(f"{path / SUMMARY} is missing although the manifest says the run "
                             f"ended ({status}): the run directory is damaged (run it again)")
        _check_journals(path, summary)
        if summary.complete:
            return cls(path, manifest, summary)
        cause = _error_cause(path, summary)
        state = FAILED if summary.score is None else INCOMPLETE
        return cls(path, manifest, summary, state, cause)

    @property
    def reasoning_tokens(self) -> int:
        """Reasoning tokens the agent model reported in the whole run (0 where none were)."""
        return self.summary.usage.reasoning_tokens

    @property
    def output_tokens(self) -> int | None:
        """Completion tokens the agent model spent in the whole run (None where the run wrote
        no summary)."""
        return self.summary.usage.completion_tokens if self.summarized else None

    @property
    def toolcalls(self) -> dict[str, int] | None:
        """The run's tool-call conformance counts (`k2eval.scoring.toolcalls`), if counted."""
        return self.summary.toolcalls

    @property
    def usable(self) -> bool:
        """Has a score to show and compare (finished or incomplete)."""
        return self.state in (FINISHED, INCOMPLETE)

    @property
    def still_running(self) -> bool:
        """Unfinished because a live process is writing it now."""
        return self.state == UNFINISHED and self.cause.startswith("running:")

    @property
    def status_text(self) -> str:
        """'finished', 'incomplete: ...', 'failed: 52/52 attempts errored (...)',
        'unfinished (interrupted)'."""
        if self.state == FINISHED:
            return FINISHED
        if self.state == UNFINISHED:
            return f"{UNFINISHED} ({self.cause})"
        return f"{self.state}: {self.cause}" if self.cause else self.state

    # --- identity -------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return self.manifest.run_id or self.path.name

    @property
    def task(self) -> str:
        return self.summary.task

    @property
    def model(self) -> str:
        return self.summary.model

    @property
    def label(self) -> str:
        return f"{self.model} · {self.run_id}"

    @property
    def config(self) -> dict[str, Any]:
        return self.manifest.config

    @property
    def task_spec(self) -> dict[str, Any]:
        spec = self.config.get("task")
        return spec if isinstance(spec, dict) else {}

    @property
    def started(self) -> float | None:
        return self.manifest.started

    @property
    def subset(self) -> bool:
        """Run on a subset of the dataset (--limit or explicit item ids)."""
        return bool(self.config.get("limit") or self.config.get("item_ids"))

    @property
    def complete(self) -> bool:
        return self.summary.complete

    # --- headline -------------------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.summary.metric

    @property
    def score(self) -> float | None:
        return self.summary.score

    @property
    def ci95(self) -> tuple[float, float] | None:
        ci = self.summary.ci95
        if ci is not None and len(ci) == 2 and ci[0] is not None and ci[1] is not None:
            return ci[0], ci[1]
        return None

    @property
    def k(self) -> int:
        return self.summary.k

    @property
    def n_items(self) -> int:
        return self.summary.n_items

    @property
    def n_errors(self) -> int:
        return self.summary.n_errors

    @property
    def breakdowns(self) -> dict[str, Any]:
        return self.summary.breakdowns

    # --- protocol -------------------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        """The settings that must agree for two runs' scores to be comparable."""
        out = {f"task.{key}": self.task_spec.get(key) for key in PROTOCOL_TASK_FIELDS}
        out["limit"] = self.config.get("limit")
        out["item_ids"] = self.config.get("item_ids") or None
        out["dataset fingerprint"] = self.manifest.dataset.fingerprint
        return out

    # --- per attempt ----------------------------------------------------------------------
    def _record(self) -> RunRecord:
        record: RunRecord | None = self._cache.get("record")
        if record is None:
            try:
                record = self._cache["record"] = load_run(self.path)
            except RunDirError as exc:
                raise DamagedRun(f"{exc}: the run directory is damaged") from None
        return record

    def read_journals(self) -> None:
        """Read attempts and scores now (DamagedRun when a journal cannot be read back)."""
        self._record()

    def live_scores(self) -> list[Score]:
        """Scores the headline counts: attempts below k that finished, latest grade of each."""
        record = self._record()
        return [s for key, s in record.scores.items() if key[1] < self.k
                and (a := record.attempts.get(key)) is not None and a.status == "ok"]

    @cached_property
    def item_scores(self) -> dict[str, float]:
        """Each item's contribution to the headline score (fraction), as the engine computes it."""
        return per_item_values(self.metric, group_by_item(self.live_scores()), self.k)

    @cached_property
    def attempts_per_item(self) -> int:
        counts = Counter(s.item_id for s in self.live_scores() if s.status == "ok")
        return max(counts.values(), default=0)

    @property
    def binary(self) -> bool:
        """One graded attempt per item and right/wrong grades: McNemar applies."""
        return self.attempts_per_item <= 1 and all(v in (0.0, 1.0) for v in self.item_scores.values())

    def item_ids(self) -> list[str]:
        """Every item the run attempted, in first-attempt order."""
        seen: dict[str, None] = {}
        for item_id, _ in self._record().attempts:
            seen.setdefault(item_id, None)
        return list(seen)

    def transcripts(self, item_id: str) -> list[tuple[Attempt, Score | None]]:
        """The attempts at one item (below k) with their latest grades, by attempt index."""
        by_item: dict[str, list[tuple[Attempt, Score | None]]] | None = self._cache.get("by_item")
        if by_item is None:
            record = self._record()
            by_item = {}
            for key, attempt in sorted(record.attempts.items(), key=lambda kv: kv[0][1]):
                if key[1] < self.k:
                    by_item.setdefault(key[0], []).append((attempt, record.scores.get(key)))
            self._cache["by_item"] = by_item
        return list(by_item.get(item_id, []))


# --- loading: state and cause -------------------------------------------------------------

MAX_CAUSE = 90


def _check_journals(path: Path, summary: RunSummary) -> None:
    """The journals a summary counts must be there."""
    journals = ((ATTEMPTS, summary.n_attempts > 0), (SCORES, summary.score is not None))
    for journal, needed in journals:
        if needed and not (path / journal).is_file():
            raise DamagedRun(f"{path / journal} is missing: the run directory is damaged "
                             "(restore the file, or run the task again)")


def _short_text(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"


def _manifest_error(manifest: RunManifest) -> str:
    """The error a run recorded in its manifest when it stopped, if any."""
    return _error_text(manifest.error)


def _unfinished_cause(path: Path, manifest: RunManifest) -> str:
    """'interrupted', 'running: `k2eval resume` (pid ...)', or how a run left "running" ended,
    told by its writer lock: still held, left by a dead process, or released on an error."""
    status = manifest.status
    reason = _manifest_error(manifest)
    if status != "running":
        if status:
            return f"{status}: {reason}" if reason else str(status)
        return reason or f"no {SUMMARY}"
    holder = read_holder(path / LOCK)
    alive = holder.alive() if holder is not None else None  # None: held from another machine
    held = is_held(path / LOCK) if holder is None or alive is not None else None
    if held is None:  # the kernel cannot tell: trust the recorded holder
        held = holder is not None and alive is not False
    if held:
        return f"running: {holder.describe()}" if holder else "running"
    if reason:
        return f"stopped: {reason}"
    if holder is not None:
        return f"stopped while running: {holder.describe()} crashed or was killed"
    if (path / LOCK).exists():
        return "stopped on an error before finishing (see that command's output)"
    return "stopped while running: crashed, killed or stopped on an error"


def _error_cause(path: Path, summary: RunSummary) -> str:
    """'52/52 attempts errored (FatalModelError: HTTP 401: ...)'; grading errors and attempts
    that never ran are named too."""
    expected = summary.n_items * summary.k
    n_errors, n_score_errors = summary.n_errors, summary.n_score_errors
    parts = []
    if n_errors:
        common = _most_common_error(path / ATTEMPTS, b'"status": "error"',
                                    lambda row: _error_text(row.get("error")))
        parts.append(f"{n_errors}/{expected} attempts errored" + (f" ({common})" if common else ""))
    if n_score_errors:
        common = _most_common_error(path / SCORES, b'"status": "error"',
                                    lambda row: _short_text(row.get("reason") or ""))
        parts.append(f"{n_score_errors} attempts could not be graded"
                     + (f" ({common})" if common else ""))
    missing = expected - summary.n_attempts
    if missing > 0:
        parts.append(f"{missing}/{expected} attempts never ran")
    return "; ".join(parts) or "some attempts were not graded"


def _error_text(error: Any) -> str:
    """'Type: message' of an error recorded as {"type", "message"}, or the text recorded."""
    if isinstance(error, dict):
        kind, message = error.get("type"), error.get("message")
        return _short_text(f"{kind}: {message}" if kind and message else str(message or kind or ""))
    return _short_text(str(error or ""))


def _most_common_error(path: Path, marker: bytes, describe: Any) -> str:
    """The most frequent description among the journal's error rows (only those lines are
    parsed, so a large journal of finished attempts costs one scan)."""
    counts: Counter[str] = Counter()
    try:
        with path.open("rb") as fh:
            for line in fh:
                if marker not in line or not line.endswith(b"\n"):
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(row, dict) and row.get("status") == "error":
                    counts[describe(row)] += 1
    except OSError:
        return ""
    return counts.most_common(1)[0][0] if counts else ""


def protocol_differences(a: RunView, b: RunView) -> list[str]:
    """Human-readable differences in task and protocol between two runs ([] when comparable)."""
    diffs = diff_protocols(a.protocol(), b.protocol())
    if a.task != b.task and not any(d.startswith("task.name") for d in diffs):
        diffs.insert(0, f"task: {a.task} vs {b.task}")
    return diffs


def diff_protocols(pa: dict[str, Any], pb: dict[str, Any]) -> list[str]:
    """Keys whose values differ (a key missing on either side is not compared)."""
    diffs = []
    for key in pa:
        if key not in pb:
            continue
        if json.dumps(pa[key], sort_keys=True) != json.dumps(pb[key], sort_keys=True):
            diffs.append(f"{key}: {_short(pa[key])} vs {_short(pb[key])}")
    return diffs


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_runs(paths: list[str | Path], *, expand: bool = True,
              skipped: list[str] | None = None) -> list[RunView]:
    """Run views for the given paths; with `expand`, a folder of run directories counts as all
    of them. Failed and unfinished runs load too (see `RunView.state`).

    With `skipped`, a directory that cannot be read (damaged, or holding no run) is left out
    and its one-line reason appended to `skipped` instead of raised, as long as some run loads.
    A path that does not exist is always an error."""
    runs: list[RunView] = []
    problems: list[str] = []

    def add(path: Path) -> None:
        try:
            runs.append(RunView.load(path))
        except RunDirError as exc:
            if skipped is None:
                raise
            problems.append(str(exc))

    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise RunDirError(f"{path}: no such run directory")
        if expand and path.is_dir() and not is_run_dir(path):
            found = find_run_dirs(path)
            if not found:
                message = (f"{path}: neither a run directory nor a folder holding any "
                           "(no manifest.json found)")
                if skipped is None:
                    raise RunDirError(message)
                problems.append(message)
            for run_dir in found:
                add(run_dir)
        else:
            add(path)
    if skipped is not None:
        if not runs and problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise RunDirError(f"no readable run directory: {problems[0]}{more}")
        skipped.extend(problems)
    return runs


def find_run_dirs(root: Path) -> list[Path]:
    """Run directories at or below `root` (not descending into a run directory)."""
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        found.extend(find_run_dirs(child))
    return found
