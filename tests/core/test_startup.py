"""Import discipline: each command loads only the libraries it uses.

Start-up time is measured by perf/engine_throughput.py; these tests pin the cause of a fast
start-up instead (what ends up in `sys.modules`), which does not depend on the machine's load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from k2eval.testing.fake_openai import Reply

HEAVY = ("openai", "httpx", "pandas", "datasets", "torch", "docker", "numpy", "scipy",
         "math_verify", "sympy", "swebench", "jinja2", "ray", "matplotlib")
"""Libraries no command loads unless it uses them."""

PROBE = """
import contextlib, io, json, sys
from k2eval import cli
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        rc = cli.main(json.loads(sys.argv[1]))
    except SystemExit as exc:
        rc = exc.code
print(json.dumps({"rc": rc, "modules": sorted(sys.modules)}))
"""


def loaded_by(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    """Run `k2eval ARGV` in a fresh interpreter; its exit status and the top-level packages
    it imported."""
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(argv)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return int(out["rc"] or 0), {m.split(".")[0] for m in out["modules"]}


@pytest.mark.parametrize("argv", [["--help"], ["tasks"], ["run", "--help"], ["rescore", "--help"]],
                         ids=" ".join)
def test_help_and_the_task_list_import_no_heavy_library(argv: list[str]) -> None:
    rc, modules = loaded_by(argv)
    assert rc == 0
    assert modules.isdisjoint(HEAVY), sorted(modules & set(HEAVY))
    assert "aiohttp" not in modules, "an HTTP client was imported by a command that sends nothing"
    assert "pydantic" not in modules, "the run records' library was imported by a command that " \
                                      "reads no run"


@pytest.mark.parametrize(("client", "sdk_loaded"), [(None, False), ("sdk", True)],
                         ids=["default client", "--http-client sdk"])
def test_a_run_loads_the_openai_sdk_only_when_it_is_chosen(
        fake_openai: Any, shared_data: Path, tmp_path: Path, client: str | None,
        sdk_loaded: bool) -> None:
    srv = fake_openai(lambda body: Reply(text="so \\boxed{70}"))
    argv = ["run", "--task", "aime2025", "--model", "openai:m", "--base-url", srv.base_url,
            "--data", str(shared_data / "aime" / "aime25.jsonl"), "--k", "1", "--limit", "2",
            "--out", str(tmp_path), "--no-progress",
            *(["--http-client", client] if client else [])]
    rc, modules = loaded_by(argv)
    assert rc == 0
    assert len(srv.requests) == 2, "the run did not call the endpoint"
    assert ("openai" in modules) is sdk_loaded
    assert modules.isdisjoint(set(HEAVY) - {"openai", "httpx"}), sorted(modules & set(HEAVY))
