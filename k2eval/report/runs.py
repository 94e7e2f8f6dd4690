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
from k2eval.store.rundir import ATTEMPTS, MANIFEST, SCORES, SUMMARY, RunRecord, load_run

PROTOCOL_TASK_FIELDS = ("name", "adapter", "metric", "k", "max_output_tokens", "temperature",
                        "top_p", "dataset", "limits", "options", "sandbox_image")


def is_run_dir(path: Path) -> bool:
    return (path / MANIFEST).is_file()


@dataclass
class RunView:
    """One run directory as reports see it; attempts and scores load on first use."""

    path: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, path: str | Path) -> RunView:
        path = Path(path)
        if not path.is_dir():
            raise RunDirError(f"{path}: no such run directory")
        if not is_run_dir(path):
            raise RunDirError(f"{path / MANIFEST} is missing: {path} is not a run directory")
        record = load_run(path, with_attempts=False)
        if record.summary is None:
            raise RunDirError(f"{path / SUMMARY} is missing: the run is unfinished "
                              f"(complete it with `k2eval resume {path}`)")
        for journal in (ATTEMPTS, SCORES):
            if not (path / journal).is_file():
                raise RunDirError(f"{path / journal} is missing: the run directory is damaged "
                                  "(restore the file, or run the task again)")
        if not isinstance(record.summary, dict):
            raise RunDirError(f"{path / SUMMARY}: expected a JSON object")
        for key in ("task", "model", "metric", "score"):
            if key not in record.summary:
                raise RunDirError(f"{path / SUMMARY}: missing field {key!r}")
        return cls(path, record.manifest, record.summary)

    # --- identity -------------------------------------------------------------------------
    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def task(self) -> str:
        return str(self.summary["task"])

    @property
    def model(self) -> str:
        return str(self.summary["model"])

    @property
    def label(self) -> str:
        return f"{self.model} · {self.run_id}"

    @property
    def config(self) -> dict[str, Any]:
        config = self.manifest.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def task_spec(self) -> dict[str, Any]:
        spec = self.config.get("task")
        return spec if isinstance(spec, dict) else {}

    @property
    def started(self) -> float | None:
        value = self.manifest.get("started")
        return float(value) if isinstance(value, int | float) else None

    @property
    def subset(self) -> bool:
        """Run on a subset of the dataset (--limit or explicit item ids)."""
        return bool(self.config.get("limit") or self.config.get("item_ids"))

    @property
    def complete(self) -> bool:
        return bool(self.summary.get("complete", True))

    # --- headline -------------------------------------------------------------------------
    @property
    def metric(self) -> str:
        return str(self.summary["metric"])

    @property
    def score(self) -> float | None:
        value = self.summary.get("score")
        return None if value is None else float(value)

    @property
    def ci95(self) -> tuple[float, float] | None:
        ci = self.summary.get("ci95")
        if isinstance(ci, list | tuple) and len(ci) == 2 and None not in ci:
            return float(ci[0]), float(ci[1])
        return None

    @property
    def k(self) -> int:
        return int(self.summary.get("k") or self.task_spec.get("k") or 1)

    @property
    def n_items(self) -> int:
        return int(self.summary.get("n_items") or 0)

    @property
    def n_errors(self) -> int:
        return int(self.summary.get("n_errors") or 0)

    @property
    def breakdowns(self) -> dict[str, Any]:
        b = self.summary.get("breakdowns")
        return b if isinstance(b, dict) else {}

    # --- protocol -------------------------------------------------------------------------
    def protocol(self) -> dict[str, Any]:
        """The settings that must agree for two runs' scores to be comparable."""
        out = {f"task.{key}": self.task_spec.get(key) for key in PROTOCOL_TASK_FIELDS}
        out["limit"] = self.config.get("limit")
        out["item_ids"] = self.config.get("item_ids") or None
        dataset = self.manifest.get("dataset")
        if isinstance(dataset, dict) and dataset.get("fingerprint"):
            out["dataset fingerprint"] = dataset["fingerprint"]
        return out

    # --- per attempt ----------------------------------------------------------------------
    def _record(self) -> RunRecord:
        record: RunRecord | None = self._cache.get("record")
        if record is None:
            record = self._cache["record"] = load_run(self.path)
        return record

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


def load_runs(paths: list[str | Path], *, expand: bool = True) -> list[RunView]:
    """Run views for the given paths; with `expand`, a folder of run directories counts as all of them."""
    runs: list[RunView] = []
    for raw in paths:
        path = Path(raw)
        if expand and path.is_dir() and not is_run_dir(path):
            found = find_run_dirs(path)
            if not found:
                raise RunDirError(f"{path}: neither a run directory nor a folder holding any "
                                  "(no manifest.json found)")
            runs.extend(RunView.load(p) for p in found)
        else:
            runs.append(RunView.load(path))
    return runs


def find_run_dirs(root: Path) -> list[Path]:
    """Run directories at or below `root` (not descending into a run directory)."""
    if is_run_dir(root):
        return [root]
    found: list[Path] = []
    for child in sorted(p for p in root.iterdir() if p.is_dir()):
        found.extend(find_run_dirs(child))
    return found
