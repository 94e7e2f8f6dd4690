"""One writer per run directory: an OS file lock held for the whole life of run, resume, rescore.

The lock is `flock(2)` on `<run dir>/writer.lock`, taken without waiting. The file records who
holds it (pid, host, command, start time) so that a second command can say so in one line and
stop. The kernel drops the lock when its holder dies, even by kill -9, so a lock file left
behind by a dead process is taken over (and the takeover logged) instead of blocking resume.
On release the file is emptied but kept: deleting it would let two processes lock two
different files under the same name. Readers (report, compare, nightly) never take the lock.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from k2eval.errors import RunDirError

LOCK = "writer.lock"

log = logging.getLogger("k2eval")


class RunDirLocked(RunDirError):
    """Another live process is writing this run directory."""

    def __init__(self, message: str, holder: Holder | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    """Who holds (or last held) a run directory's lock."""

    pid: int
    host: str
    command: str
    started: float

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.started))
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {since})"

    def alive(self) -> bool | None:
        """Whether the process still exists (None when it runs on another host)."""
        if self.host != socket.gethostname():
            return None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def current_command(argv: list[str] | None = None) -> str:
    """The program and its subcommand (`k2eval resume`); never option values, which may be secret."""
    argv = sys.argv if argv is None else argv
    prog = Path(argv[0]).name if argv and argv[0] else "python"
    if prog in ("cli.py", "__main__.py") or prog.startswith("k2eval"):
        prog = "k2eval"
    elif prog == "-c":
        prog = "python -c"
    sub = argv[1] if len(argv) > 1 and re.fullmatch(r"[a-z][a-z0-9-]{0,30}", argv[1]) else ""
    return f"{prog} {sub}".strip()


def read_holder(path: Path) -> Holder | None:
    """The holder recorded in a lock file (None when empty, absent or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "null")
        return Holder(int(data["pid"]), str(data["host"]), str(data["command"]),
                      float(data["started"]))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def is_held(path: Path) -> bool | None:
    """Whether a process on this machine holds the flock on `path` now, as the kernel lists it
    in /proc/locks (Linux), without touching the lock; None when that cannot be told."""
    try:
        st = os.stat(path)
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in table.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == where:
            return True
    return False


class WriterLock:
    """The held lock of one run directory; `release()` (or process exit) gives it up."""

    def __init__(self, path: Path, fh: IO[str] | None, holder: Holder) -> None:
        self.path = path
        self._fh = fh
        self.holder = holder

    @classmethod
    def acquire(cls, run_dir: Path, command: str | None = None) -> WriterLock:
        """Lock `run_dir` for this process, or raise RunDirLocked naming the holder."""
        path = Path(run_dir) / LOCK
        me = Holder(os.getpid(), socket.gethostname(), command or current_command(), time.time())
        try:
            fh = path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise RunDirError(f"cannot write {path} ({exc.strerror}): run, resume and rescore "
                              f"need write access to {run_dir}") from None
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise _locked(run_dir, _holder_when_written(path)) from None
            # A file system without locks: warn and go on (one writer is then up to the user).
            log.warning("warning: cannot lock %s (%s); make sure no other k2eval command "
                        "writes this run directory", path, exc.strerror)
            return cls(path, None, me)
        previous = read_holder(path)
        if previous is not None:
            log.warning("note: %s was left locked by %s, which is no longer running; taking it "
                        "over", run_dir, previous.describe())
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": me.pid, "host": me.host, "command": me.command,
                             "started": me.started}) + "\n")
        fh.flush()
        return cls(path, fh, me)

    def release(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self._fh.truncate(0)
            self._fh.flush()
        self._fh.close()  # closing the file drops the flock
        self._fh = None


def _holder_when_written(path: Path, wait_s: float = 1.0) -> Holder | None:
    """The holder a lock file names; a holder that has just taken the lock writes its name
    a moment later, so an empty or half-written file is read again for up to `wait_s`."""
    deadline = time.monotonic() + wait_s
    holder = read_holder(path)
    while holder is None and time.monotonic() < deadline:
        time.sleep(0.02)
        holder = read_holder(path)
    return holder


def _locked(run_dir: Path, holder: Holder | None) -> RunDirLocked:
    if holder is None:
        return RunDirLocked(f"{run_dir} is in use by another k2eval process (its lock file "
                            f"{LOCK} names no holder yet); wait for it to finish", None)
    gone = " (that process has exited, but a process it started still holds the lock)" \
        if holder.alive() is False else ""
    return RunDirLocked(f"{run_dir} is in use by {holder.describe()}{gone}: one command at a "
                        "time writes a run directory; wait for it to finish or stop it", holder)
