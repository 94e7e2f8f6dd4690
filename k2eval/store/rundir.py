"""The run directory: manifest.json, attempts.jsonl (append-only journal), scores.jsonl, summary.json.

Every write that can be interrupted is either an append of one whole line followed by a flush
(the journals) or a write to a temporary file renamed into place (the JSON documents), so a
kill -9 at any moment leaves at worst one partial trailing line, which readers drop.

Writers open a run directory with `RunDir.create` or `RunDir.open`, which take its writer lock
(`store.lock`) and hold it until `close()`; a second writer fails at once naming the first.
Readers use `load_run` or the plain constructor and never lock.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from k2eval.errors import RunDirError
from k2eval.records import Attempt, Score
from k2eval.spec import redact_url_credentials
from k2eval.store.lock import WriterLock

MANIFEST = "manifest.json"
ATTEMPTS = "attempts.jsonl"
SCORES = "scores.jsonl"
SUMMARY = "summary.json"
PREDICTIONS = "predictions.jsonl"


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


def read_json(path: Path) -> Any:
    try:
        with path.open() as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing: is {path.parent} a k2eval run directory?") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON ({exc})") from None


def read_journal(path: Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """All complete lines of a JSONL journal. A partial last line (a write cut short) is
    dropped, and with `repair` cut off the file so appends continue on a clean line."""
    if not path.exists():
        return []
    raw = path.read_bytes()
    rows: list[dict[str, Any]] = []
    good_end = 0
    for lineno, line in enumerate(raw.splitlines(keepends=True), 1):
        if not line.endswith(b"\n"):
            break  # partial trailing line
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if good_end + len(line) == len(raw):
                break
            raise RunDirError(f"{path}:{lineno}: damaged journal line (not JSON)") from None
        good_end += len(line)
    if repair and good_end != len(raw):
        with path.open("r+b") as fh:
            fh.truncate(good_end)
    return rows


class Redactor:
    """Replaces secret values (API keys) wherever they would be written."""

    def __init__(self, secrets: list[str] | None = None) -> None:
        self.secrets = [s for s in (secrets or []) if s and len(s) >= 6]

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[REDACTED]")
        return text


class RunDir:
    """Writer/reader for one run directory."""

    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = Path(path)
        self.redact = redactor or Redactor()
        self._attempts_fh: IO[str] | None = None
        self._scores_fh: IO[str] | None = None
        self.lock: WriterLock | None = None

    @classmethod
    def create(cls, path: Path, manifest: dict[str, Any], redactor: Redactor | None = None) -> RunDir:
        """A new run directory, locked for this process until `close()`."""
        path = Path(path)
        if (path / MANIFEST).exists():
            raise RunDirError(f"{path} already holds a run: use `k2eval resume {path}` "
                              "or choose another --run-id")
        path.mkdir(parents=True, exist_ok=True)
        run = cls(path, redactor)
        run.lock = WriterLock.acquire(path)
        try:
            if (path / MANIFEST).exists():  # created by another process since the check above
                raise RunDirError(f"{path} already holds a run: use `k2eval resume {path}` "
                                  "or choose another --run-id")
            run.write_manifest(manifest)
        except BaseException:
            run.close()
            raise
        return run

    @classmethod
    def open(cls, path: Path, redactor: Redactor | None = None) -> RunDir:
        """An existing run directory opened for writing (resume, rescore), locked until `close()`."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise RunDirError(f"{path / MANIFEST} is missing: is {path} a k2eval run directory?")
        run = cls(path, redactor)
        run.lock = WriterLock.acquire(path)
        return run

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        # Base URLs and the recorded command may carry user:password@: never written.
        text = redact_url_credentials(self.redact(json.dumps(manifest, default=str)))
        write_json_atomic(self.path / MANIFEST, json.loads(text))

    def read_manifest(self) -> dict[str, Any]:
        data = read_json(self.path / MANIFEST)
        if not isinstance(data, dict) or "config" not in data:
            raise RunDirError(f"{self.path / MANIFEST} has no run config")
        return data

    def _append(self, fh: IO[str], row: dict[str, Any]) -> None:
        fh.write(self.redact(json.dumps(row, ensure_ascii=False, default=str)) + "\n")
        fh.flush()

    def append_attempt(self, attempt: Attempt) -> None:
        if self._attempts_fh is None:
            read_journal(self.path / ATTEMPTS, repair=True)
            self._attempts_fh = (self.path / ATTEMPTS).open("a", encoding="utf-8")
        self._append(self._attempts_fh, attempt.to_dict())

    def append_score(self, score: Score) -> None:
        if self._scores_fh is None:
            read_journal(self.path / SCORES, repair=True)
            self._scores_fh = (self.path / SCORES).open("a", encoding="utf-8")
        self._append(self._scores_fh, score.to_dict())

    def rewrite_scores(self, scores: list[Score]) -> None:
        if self._scores_fh is not None:
            self._scores_fh.close()
            self._scores_fh = None
        tmp = self.path / f".{SCORES}.tmp"
        with tmp.open("w", encoding="utf-8") as fh:
            for s in scores:
                self._append(fh, s.to_dict())
            os.fsync(fh.fileno())
        tmp.replace(self.path / SCORES)

    def attempts(self) -> dict[tuple[str, int], Attempt]:
        """The latest record of each (item, attempt index)."""
        out: dict[tuple[str, int], Attempt] = {}
        for row in read_journal(self.path / ATTEMPTS):
            a = Attempt.from_dict(row)
            out[(a.item_id, a.index)] = a
        return out

    def scores(self) -> dict[tuple[str, int], Score]:
        out: dict[tuple[str, int], Score] = {}
        for row in read_journal(self.path / SCORES):
            s = Score.from_dict(row)
            out[(s.item_id, s.index)] = s
        return out

    def write_summary(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.path / SUMMARY, summary)

    def write_jsonl(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.path / name
        tmp = path.with_name(f".{name}.tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(self.redact(json.dumps(row, ensure_ascii=False)) + "\n")
        tmp.replace(path)
        return path

    def close(self) -> None:
        """Close the journals and give up the writer lock."""
        for fh in (self._attempts_fh, self._scores_fh):
            if fh is not None:
                fh.close()
        self._attempts_fh = self._scores_fh = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None


@dataclass
class RunRecord:
    """A finished (or partial) run, as read back from disk."""

    path: Path
    manifest: dict[str, Any]
    summary: dict[str, Any] | None
    attempts: dict[tuple[str, int], Attempt] = field(default_factory=dict)
    scores: dict[tuple[str, int], Score] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.manifest["config"]["task"]["name"])

    @property
    def model(self) -> str:
        return str(self.manifest.get("model", {}).get("label")
                   or self.manifest["config"]["model"]["spec"])


def load_run(path: str | Path, *, with_attempts: bool = True) -> RunRecord:
    """Read a run directory. Missing files are named in the error."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p} is not a directory")
    rd = RunDir(p)
    manifest = rd.read_manifest()
    summary = read_json(p / SUMMARY) if (p / SUMMARY).exists() else None
    rec = RunRecord(path=p, manifest=manifest, summary=summary)
    if with_attempts:
        rec.attempts = rd.attempts()
        rec.scores = rd.scores()
    return rec
