"""A throwaway PostgreSQL server for tests and benchmarks.

`initdb` + `pg_ctl` (Debian's `postgresql` package) under a temporary directory, listening on
a free port of 127.0.0.1 only, trust authentication, stopped and deleted on exit. PostgreSQL
refuses to run as root, so under root the cluster runs as the unprivileged `nobody` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_pg_bin() -> Path:
    """The folder holding `initdb` and `pg_ctl` (newest installed version)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if not found:
        on_path = shutil.which("pg_ctl")
        if on_path:
            return Path(on_path).parent
        raise PostgresUnavailable("PostgreSQL server binaries not found: install Debian's "
                                  "`postgresql` package (apt-get install postgresql)")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def throwaway_postgres(database: str = "k2eval") -> Iterator[str]:
    """Start a server; yields `postgresql://k2eval@127.0.0.1:PORT/<database>`."""
    pg_bin = find_pg_bin()
    root = Path(tempfile.mkdtemp(prefix="k2eval-pg-"))
    user: str | None = None
    if os.geteuid() == 0:
        user = "nobody"
        import pwd

        entry = pwd.getpwnam(user)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data, log = root / "data", root / "server.log"
    port = _free_port()

    def run(*args: str | Path) -> None:
        subprocess.run([str(a) for a in args], check=True, user=user, cwd=root,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)

    try:
        run(pg_bin / "initdb", "-D", data, "-U", "k2eval", "--auth=trust", "-E", "UTF8",
            "--no-sync")
        run(pg_bin / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o",
            f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root} "
            "-c fsync=off -c max_connections=50", "start")
        run(pg_bin / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "k2eval", database)
        yield f"postgresql://k2eval@127.0.0.1:{port}/{database}"
    except subprocess.CalledProcessError as exc:
        output = exc.stdout.decode(errors="replace") if exc.stdout else ""
        server = log.read_text(errors="replace") if log.exists() else ""
        raise PostgresUnavailable(f"{exc.cmd[0]} failed: {output}\n{server}") from None
    finally:
        if (data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                run(pg_bin / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
