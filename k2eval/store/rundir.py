"""The run directory: manifest.json, attempts.jsonl (append-only journal), scores.jsonl, summary.json.

Every write that can be interrupted is either an append of one whole line followed by a flush
(the journals) or a write to a temporary file renamed into place (the JSON documents), so a
kill -9 at any moment leaves at worst one partial trailing line, which readers drop.

Writers open a run directory with `RunDir.create` or `RunDir.open`, which take its writer lock
(`store.lock`) and hold it until `close()`; a second writer fails at once naming the first.
Readers use `load_run` or the plain constructor and never lock. The manifest and the
summary are the typed, versioned records of `store.runlog`.

A write that fails (disk full, read-only file system, no permission) raises `StorageError`
naming the file; a journal line cut short by it is cut off at once, so the journal ends on
the last finished attempt and `resume` continues from there once there is room again. A
writer keeps 64 KiB in reserve (`.reserve`, removed by `close()`) that it frees when the disk
is full, so that the manifest can still record how the run ended.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from k2eval.errors import RunDirError, StorageError
from k2eval.records import Attempt, Score
from k2eval.spec import redact_url_credentials
from k2eval.store.lock import WriterLock
from k2eval.store.runlog import RunManifest, RunSummary

MANIFEST = "manifest.json"
ATTEMPTS = "attempts.jsonl"
SCORES = "scores.jsonl"
SUMMARY = "summary.json"
PREDICTIONS = "predictions.jsonl"
RESERVE = ".reserve"
RESERVE_BYTES = 64 * 1024


def storage_error(path: Path, exc: OSError) -> StorageError:
    """The one-line error for a file that could not be written."""
    return StorageError(f"cannot write {path} ({exc.strerror or exc})")


def check_writable(folder: Path, flag: str = "--out") -> None:
    """Fail now, before anything runs, when files cannot be created under `folder`."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise StorageError(f"{flag} {folder}: cannot write there ({exc.strerror or exc}): "
                           "choose a writable folder") from None


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w") as fh:
            json.dump(data, fh, indent=2, sort_keys=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a partial copy would only take the room the next write needs
        raise storage_error(path, exc) from None


def read_json(path: Path) -> Any:
    try:
        with path.open() as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing: is {path.parent} a k2eval run directory?") from None
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{path} is not valid JSON ({exc})") from None


def _scan(path: Path) -> Iterator[tuple[int, int, dict[str, Any]]]:
    """(start, end, row) of each complete line of a JSONL journal, one line in memory at a
    time. A partial last line (a write cut short) ends the scan; so does a last line that is
    not JSON. A damaged line before the end raises `RunDirError`."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        start = 0
        for lineno, line in enumerate(fh, 1):
            if not line.endswith(b"\n"):
                return
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                if not fh.read(1):
                    return
                raise RunDirError(f"{path}:{lineno}: damaged journal line (not JSON)") from None
            yield start, start + len(line), row
            start += len(line)


def iter_journal(path: Path) -> Iterator[dict[str, Any]]:
    """The complete lines of a JSONL journal, read lazily (see `_scan`)."""
    for _, _, row in _scan(path):
        yield row


def repair_journal(path: Path) -> None:
    """Cut a partial last line off a journal, so that appends continue on a clean line."""
    good_end = 0
    for _, end, _ in _scan(path):
        good_end = end
    if path.exists() and path.stat().st_size != good_end:
        with path.open("r+b") as fh:
            fh.truncate(good_end)


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
    def create(cls, path: Path, manifest: RunManifest, redactor: Redactor | None = None) -> RunDir:
        """A new run directory, locked for this process until `close()`."""
        path = Path(path)
        if (path / MANIFEST).exists():
            raise RunDirError(f"{path} already holds a run: use `k2eval resume {path}` "
                              "or choose another --run-id")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(path, exc) from None
        run = cls(path, redactor)
        run.lock = WriterLock.acquire(path)
        run._reserve()
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
        run._reserve()
        return run

    def write_manifest(self, manifest: RunManifest) -> None:
        # Base URLs and the recorded command may carry user:password@: never written.
        text = redact_url_credentials(self.redact(json.dumps(manifest.to_json(), default=str)))
        try:
            write_json_atomic(self.path / MANIFEST, json.loads(text))
        except StorageError:
            if not self._release_reserve():
                raise
            write_json_atomic(self.path / MANIFEST, json.loads(text))

    def _reserve(self) -> None:
        """Set `RESERVE_BYTES` aside (a writer only), so that a full disk still leaves room
        to record in the manifest how the run ended."""
        try:
            (self.path / RESERVE).write_bytes(b"\0" * RESERVE_BYTES)
        except OSError:  # no room for it: the disk is nearly full already
            self._release_reserve()

    def _release_reserve(self) -> bool:
        """Free the reserve; whether there was one."""
        try:
            (self.path / RESERVE).unlink()
        except OSError:
            return False
        return True

    def read_manifest(self) -> RunManifest:
        return RunManifest.from_json(read_json(self.path / MANIFEST), self.path / MANIFEST)

    def _append(self, fh: IO[str], row: dict[str, Any]) -> None:
        fh.write(self.redact(json.dumps(row, ensure_ascii=False, default=str)) + "\n")
        fh.flush()

    def _journal(self, name: str, row: dict[str, Any]) -> None:
        """Append one line to journal `name`; on a failed write, cut the partial line off and
        raise `StorageError`."""
        attr = "_attempts_fh" if name == ATTEMPTS else "_scores_fh"
        path = self.path / name
        fh: IO[str] | None = getattr(self, attr)
        try:
            if fh is None:
                repair_journal(path)
                fh = path.open("a", encoding="utf-8")
                setattr(self, attr, fh)
            self._append(fh, row)
        except OSError as exc:
            setattr(self, attr, None)
            if fh is not None:
                with contextlib.suppress(OSError):
                    fh.close()  # drops what could not be flushed
            with contextlib.suppress(OSError, RunDirError):
                repair_journal(path)
            self._release_reserve()  # the run stops here: room to record why
            raise storage_error(path, exc) from None

    def append_attempt(self, attempt: Attempt) -> None:
        self._journal(ATTEMPTS, attempt.to_dict())

    def append_score(self, score: Score) -> None:
        self._journal(SCORES, score.to_dict())

    @contextlib.contextmanager
    def scores_writer(self) -> Iterator[Callable[[Score], None]]:
        """Write a new scores.jsonl line by line: it replaces the old one when the block ends
        without an error (until then readers see the old one)."""
        if self._scores_fh is not None:
            self._scores_fh.close()
            self._scores_fh = None
        tmp = self.path / f".{SCORES}.tmp"
        try:
            with tmp.open("w", encoding="utf-8") as fh:
                yield lambda score: self._append(fh, score.to_dict())
                os.fsync(fh.fileno())
            tmp.replace(self.path / SCORES)
        except OSError as exc:
            raise storage_error(self.path / SCORES, exc) from None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def attempts(self) -> dict[tuple[str, int], Attempt]:
        """The latest record of each (item, attempt index)."""
        out: dict[tuple[str, int], Attempt] = {}
        for row in iter_journal(self.path / ATTEMPTS):
            a = Attempt.from_dict(row)
            out[(a.item_id, a.index)] = a
        return out

    def attempt_index(self) -> dict[tuple[str, int], tuple[int, str]]:
        """(offset of the latest line, status) of each (item, attempt index), holding one
        journal line in memory at a time; read the attempts with `attempts_at`."""
        out: dict[tuple[str, int], tuple[int, str]] = {}
        for start, _, row in _scan(self.path / ATTEMPTS):
            out[(str(row["item_id"]), int(row["attempt"]))] = (start, row.get("status", "ok"))
        return out

    def attempts_at(self, offsets: Iterable[int]) -> Iterator[Attempt]:
        """The attempts whose journal lines start at `offsets` (from `attempt_index`), read
        lazily in file order."""
        with (self.path / ATTEMPTS).open("rb") as fh:
            for offset in sorted(offsets):
                fh.seek(offset)
                yield Attempt.from_dict(json.loads(fh.readline()))

    def scores(self) -> dict[tuple[str, int], Score]:
        out: dict[tuple[str, int], Score] = {}
        for row in iter_journal(self.path / SCORES):
            s = Score.from_dict(row)
            out[(s.item_id, s.index)] = s
        return out

    def write_summary(self, summary: RunSummary) -> None:
        write_json_atomic(self.path / SUMMARY, summary.to_json())

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
                with contextlib.suppress(OSError):  # a failed flush was reported when it failed
                    fh.close()
        self._attempts_fh = self._scores_fh = None
        if self.lock is not None:
            self._release_reserve()
            self.lock.release()
            self.lock = None


@dataclass
class RunRecord:
    """A finished (or partial) run, as read back from disk."""

    path: Path
    manifest: RunManifest
    summary: RunSummary | None
    attempts: dict[tuple[str, int], Attempt] = field(default_factory=dict)
    scores: dict[tuple[str, int], Score] = field(default_factory=dict)

    @property
    def task(self) -> str:
        return str(self.manifest.config["task"]["name"])

    @property
    def model(self) -> str:
        return self.manifest.model.label


def load_run(path: str | Path, *, with_attempts: bool = True) -> RunRecord:
    """Read a run directory. Missing files are named in the error."""
    p = Path(path)
    if not p.is_dir():
        raise RunDirError(f"{p} is not a directory")
    rd = RunDir(p)
    manifest = rd.read_manifest()
    summary = (RunSummary.from_json(read_json(p / SUMMARY), p / SUMMARY)
               if (p / SUMMARY).exists() else None)
    rec = RunRecord(path=p, manifest=manifest, summary=summary)
    if with_attempts:
        rec.attempts = rd.attempts()
        rec.scores = rd.scores()
    return rec
