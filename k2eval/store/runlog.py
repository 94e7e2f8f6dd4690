"""The run directory's two documents as typed, versioned records: manifest.json and summary.json.

`RunManifest` says what was run and how it ended (written when the run starts, rewritten as it
goes and when it ends); `RunSummary` is the result (written when the run ends). Both carry a
`version`: the layout of the file, `FORMAT_VERSION` for files this k2eval writes. Files
without one were written before the field existed, in the same layout, and read as version 1;
a file from a newer k2eval is refused with a message saying to upgrade, never half-read.

The JSON keys are the on-disk format and stay stable (reports, dashboards and users' scripts
read them). Keys a record does not declare are kept and written back unchanged: an adapter's
own headline figures (Tau2's pass^k, OJBench's per-language scores, lm-eval's results), and
fields a later k2eval of the same version adds. `record["key"]`, `record.get("key")` and
`"key" in record` read any key as it is on disk, for scripts written against the plain JSON.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from k2eval.errors import RunDirError
from k2eval.records import Usage

FORMAT_VERSION = 1
"""The layout of manifest.json and summary.json that this k2eval writes."""

RunStatus = Literal["running", "finished", "incomplete", "interrupted", "stopped", "failed"]
"""How a run stands, in its manifest: running (or killed while running: the writer lock
tells), finished (every attempt graded), incomplete (ended with attempts errored or not
graded), interrupted (a signal), stopped (the endpoint refused to go on), failed (an error
ended it)."""


class _Document(BaseModel):
    """A JSON document of the run directory (see the module docstring)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    version: int = FORMAT_VERSION
    """The file's layout (`FORMAT_VERSION` when written by this k2eval)."""

    @classmethod
    def from_json(cls, data: Any, source: Path) -> Self:
        """Validate a document read from `source`; `RunDirError` naming the file and the first
        field at fault when it is not one."""
        if not isinstance(data, dict):
            raise RunDirError(f"{source}: expected a JSON object")
        version = data.get("version", 1)
        if not isinstance(version, int) or version < 1:
            raise RunDirError(f"{source}: version {version!r} is not a run format version")
        if version > FORMAT_VERSION:
            raise RunDirError(f"{source} was written by a newer k2eval (run format {version}; "
                              f"this one reads up to {FORMAT_VERSION}): upgrade k2eval to read it")
        try:
            return cls.model_validate({**data, "version": version})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "(top)"
            raise RunDirError(f"{source}: field {where!r}: {first['msg'].lower()}") from None

    def to_json(self) -> dict[str, Any]:
        """The document as written to disk."""
        return self.model_dump(mode="json")

    def __getitem__(self, key: str) -> Any:
        if key in type(self).model_fields:
            value = getattr(self, key)
            if isinstance(value, BaseModel):
                return value.model_dump(mode="json")
            return dataclasses.asdict(value) if isinstance(value, Usage) else value
        extra = self.model_extra or {}
        if key not in extra:
            raise KeyError(key)
        return extra[key]

    def __contains__(self, key: object) -> bool:
        return key in type(self).model_fields or key in (self.model_extra or {})

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default


class _Open(BaseModel):
    """A nested record that keeps keys it does not declare."""

    model_config = ConfigDict(extra="allow")


class ModelRecord(_Open):
    """The agent model: its label, its spec, and what the backend says of itself once started
    (scheme, served name, base URL without credentials, reasoning settings, cache)."""

    label: str
    spec: dict[str, Any] = Field(default_factory=dict)


class DatasetRecord(_Open):
    source: str | None = None
    """The `--data` path, or where the task's data comes from."""
    fingerprint: str
    """Hash of the items' ids and contents (resume and rescore refuse a changed dataset)."""
    n_items: int


class RunManifest(_Document):
    """manifest.json: everything needed to reproduce the run, and how it stands."""

    run_id: str
    k2eval_version: str | None = None
    git_sha: str | None = None
    python: str | None = None
    platform: str | None = None
    command: list[str] | None = None
    """The command line that started the run (credentials in URLs removed)."""
    config: dict[str, Any]
    """The frozen `RunConfig` (`k2eval.spec.RunConfig.from_dict` reads it back)."""
    model: ModelRecord
    dataset: DatasetRecord
    seed: int = 0
    started: float | None = None
    ended: float | None = None
    status: RunStatus | None = None
    """None only in files that never recorded one."""
    resumed: list[float] = Field(default_factory=list)
    """When each `resume` began."""
    executor: dict[str, Any] | None = None
    """The executor's own account: name; on Ray the address, workers, nodes, slots, and how
    many attempts were sent again after a worker died."""
    conditions: dict[str, Any] = Field(default_factory=dict)
    """Conditions the adapter reports that bear on the score (network, official texts, ...)."""
    signal: str | None = None
    """The signal that interrupted the run."""
    error: str | dict[str, Any] | None = None
    """What stopped or failed the run."""

    def mark_ended(self, status: RunStatus, *, signal: str | None = None,
                   error: str | None = None) -> None:
        self.status, self.ended = status, time.time()
        if signal is not None:
            self.signal = signal
        if error is not None:
            self.error = error

    def mark_resumed(self) -> None:
        self.status = "running"
        self.resumed.append(time.time())


@dataclasses.dataclass
class RunUsage(Usage):
    """The agent model's tokens, and every role's ("agent", "user", "judge") in `by_role`."""

    by_role: dict[str, Usage] = dataclasses.field(default_factory=dict)


class RunSummary(_Document):
    """summary.json: the run's headline score and counts. Adapters may add headline figures of
    their own, kept as extra keys."""

    run_id: str | None = None
    task: str
    benchmark: str | None = None
    group: str | None = None
    model: str
    """The model's label."""
    metric: str
    metric_label: str | None = None
    reported_metric_label: str | None = None
    k: int = 1
    score: float | None
    """Percent (or the metric's own unit where `score_unit` says "raw"); None when nothing
    was graded."""
    ci95: list[float | None] | None = None
    stderr: float | None = None
    n_scored_items: int = 0
    n_items: int = 0
    n_attempts: int = 0
    n_errors: int = 0
    """Attempts that ended in an error (never scored)."""
    n_score_errors: int = 0
    """Attempts whose grading failed (infrastructure)."""
    complete: bool
    """Every attempt of every item finished and was graded."""
    usage: RunUsage = Field(default_factory=RunUsage)
    toolcalls: dict[str, int] | None = None
    reported_k2: str | None = None
    breakdowns: dict[str, Any] = Field(default_factory=dict)
    pass_at_k: dict[str, float] | None = None
    """pass@1/5/10 for pass@k tasks (absent otherwise)."""
    conditions: dict[str, Any] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = super().to_json()
        if data.get("pass_at_k") is None:
            data.pop("pass_at_k", None)
        return data

    @classmethod
    def unscored(cls, manifest: RunManifest) -> RunSummary:
        """What a run that wrote no summary.json can still say: task, model, metric; no score."""
        task = manifest.config.get("task")
        task = task if isinstance(task, dict) else {}
        return cls(task=str(task.get("name") or "?"), model=manifest.model.label,
                   metric=str(task.get("metric") or "?"), k=int(task.get("k") or 1),
                   score=None, n_items=manifest.dataset.n_items, complete=False,
                   run_id=manifest.run_id)
