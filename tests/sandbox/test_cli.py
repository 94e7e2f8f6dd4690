"""`k2eval sandbox doctor|gc|build` and the errors that say what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sandbox_helpers import TEST_RUN_ID

from k2eval.cli import main
from k2eval.errors import UserError
from k2eval.sandbox import base_image_tag, ensure_docker, image_tag
from k2eval.sandbox import client as sandbox_client


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox_client, "_client", None)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/k2eval-test/docker.sock")


def test_unreachable_daemon_says_how_to_start_it(no_daemon: None) -> None:
    with pytest.raises(UserError) as failure:
        ensure_docker()
    message = str(failure.value)
    assert "/nonexistent/k2eval-test/docker.sock" in message
    assert "dockerd --bridge=none --iptables=false" in message
    assert "k2eval sandbox doctor" in message and "\n" not in message


def test_permission_denied_says_how_to_get_access() -> None:
    message = sandbox_client._explain(PermissionError(13, "Permission denied"))
    assert "docker` group" in message and "k2eval sandbox doctor" in message


def test_doctor_without_a_daemon_fails_with_the_fix(no_daemon: None,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "doctor"]) == 6  # infrastructure (1 is only a regression)
    out = capsys.readouterr().out
    assert out.startswith("FAIL daemon: unreachable\n     -> cannot reach the Docker daemon")


@pytest.mark.docker
def test_doctor_passes_on_a_working_engine(python_image: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["sandbox", "doctor"])
    out = capsys.readouterr().out
    assert f"ok   image python: {python_image} present" in out
    assert "ok   round trip: exec in" in out and "only `lo`" in out
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    # the only check allowed to fail: other runs on a shared engine may have died, leaving some
    assert all(line.startswith("FAIL leftovers") for line in failed), out
    assert (rc == 0) == (not failed), out


@pytest.mark.docker
def test_build_and_gc_commands(python_image: str, docker_client: Any,
                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "build", "python"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"python: {image_tag('python')}")
    run_id = f"{TEST_RUN_ID}-cli-gc"
    docker_client.containers.create(python_image, entrypoint=["sleep"], command=["infinity"],
                                    network_mode="none",
                                    labels={"org.k2eval.managed": "1",
                                            "org.k2eval.run_id": run_id})
    assert main(["sandbox", "gc", "--run-id", run_id]) == 0
    assert capsys.readouterr().out.startswith("removed 1 container(s)")
    assert not docker_client.containers.list(
        all=True, filters={"label": f"org.k2eval.run_id={run_id}"})


def test_unknown_image_build_is_a_one_line_error(capsys: pytest.CaptureFixture[str],
                                                 require_docker: Any) -> None:
    assert main(["sandbox", "build", "no-such-image"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown sandbox image 'no-such-image' (known: ")
    known = err.split("(known: ", 1)[1].split(")", 1)[0].split(", ")
    assert {"base", "python", "ojbench"} <= set(known) and err.count("\n") == 1


@pytest.mark.docker
def test_setup_script_is_idempotent_on_a_ready_machine(python_image: str) -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "setup-docker.sh"
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr
    assert "setup-docker: Docker engine already running" in done.stdout
    assert "installing" not in done.stdout and "Step " not in done.stdout  # nothing rebuilt
    assert f"python: {python_image}" in done.stdout.splitlines()
    assert f"base: {base_image_tag()}" in done.stdout.splitlines()
