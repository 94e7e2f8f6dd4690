"""The network of instance containers: official (Docker's default bridge) by default, a task
option, detected and recorded when the engine cannot give it; and a patch whose log the
package flags as an environment failure graded as the official harness grades it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.adapters.swebench.network import NetworkChoice, NetworkResolver, requested_network
from k2eval.cli import main
from k2eval.errors import ConfigError
from k2eval.spec import load_task
from k2eval.testing.fake_openai import Reply

BREAK_SYNTAX = "sed -i 's/^    if not text:$/    if not text/' wordstats/core.py && echo broken"


def spec_with(**options: Any) -> Any:
    return load_task("swebench-verified").with_overrides(options=options)


@pytest.mark.parametrize(("value", "mode"), [
    (None, "bridge"), ("bridge", "bridge"), ("none", "none"), ("NONE", "none"), (True, "bridge"),
    (False, "none"), ("off", "none"), ("default", "bridge"),
])
def test_network_option_defaults_to_the_official_bridge(value: Any, mode: str) -> None:
    spec = spec_with() if value is None else spec_with(network=value)
    assert requested_network(spec) == mode


def test_unknown_network_option_fails_at_load_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"option network must be one of bridge\|none "
                                          r"\(official: bridge\), got 'host'"):
        SweBenchAdapter().load(spec_with(network="host"), "unused.jsonl")


@pytest.mark.parametrize(("engine_has_bridge", "requested", "conditions", "warns"), [
    (True, "bridge", {"network": "bridge", "network_requested": "bridge",
                      "official_conditions": True}, False),
    (False, "bridge", {"network": "none", "network_requested": "bridge",
                       "official_conditions": False}, True),
    (False, "none", {"network": "none", "network_requested": "none",
                     "official_conditions": False}, False),
])
def test_the_network_used_is_decided_once_and_recorded(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        engine_has_bridge: bool, requested: str, conditions: dict[str, Any], warns: bool) -> None:
    monkeypatch.setattr("k2eval.sandbox.client.default_bridge_available",
                        lambda: engine_has_bridge)
    resolver = NetworkResolver()
    spec = spec_with(network=requested)
    for _ in range(3):
        assert resolver.resolve(spec).conditions() == conditions
    warnings = capsys.readouterr().err.splitlines()
    assert len(warnings) == (1 if warns else 0)
    if warns:
        assert warnings[0].startswith("warning: this Docker engine has no default bridge network")


@pytest.mark.docker
def test_default_bridge_detection_agrees_with_what_a_container_gets(
        require_docker: Any, synthetic_image: str) -> None:
    from k2eval.sandbox.client import default_bridge_available

    devices = require_docker.containers.run(synthetic_image, ["cat", "/proc/net/dev"],
                                            network_mode="bridge", remove=True).decode()
    interfaces = {line.split(":")[0].strip() for line in devices.splitlines() if ":" in line}
    assert default_bridge_available() == bool(interfaces - {"lo"}), interfaces
    # `k2eval sandbox doctor` says the same
    from k2eval.sandbox.doctor import run_checks

    [line] = [c.line() for c in run_checks() if c.name == "default network"]
    assert ("SWE-bench containers run without network" in line) != default_bridge_available()


def _eval_script_needing_network(row: dict[str, Any]) -> dict[str, Any]:
    """As the official eval scripts' `pip install -e .`: a step that needs the network."""
    script = row["eval_script"].replace(
        "git checkout ", "git ls-remote https://github.com/k2eval/wordstats\ngit checkout ", 1)
    return {**row, "eval_script": script}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.docker
@pytest.mark.slow
def test_run_records_the_network_and_grades_a_broken_patch_as_unresolved(
        fake_openai: Any, synthetic_row: dict[str, Any], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Default options (bridge requested): on an engine without a default bridge the run
    warns once and records network=none. A patch that breaks test collection in an instance
    whose eval script needs the network is unresolved (status ok, in the denominator), the
    run is complete, and neither resume nor rescore turns it into an error."""
    from k2eval.sandbox.client import default_bridge_available

    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps(_eval_script_needing_network(synthetic_row)) + "\n")
    script = [("bash", {"command": BREAK_SYNTAX}), ("submit", {})]

    def agent(request: dict[str, Any]) -> Reply:
        name, args = script[sum(1 for m in request["messages"] if m["role"] == "assistant")]
        return Reply(tool_calls=[(name, args)])

    server = fake_openai(agent)
    code = main(["run", "--task", "swebench-verified", "--model", "openai:fake-model",
                 "--base-url", server.base_url, "--data", str(data), "--out", str(tmp_path),
                 "--run-id", "r", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 0
    rundir = tmp_path / "r"
    bridge = default_bridge_available()
    expected = NetworkChoice("bridge", "bridge" if bridge else "none").conditions()
    manifest = json.loads((rundir / "manifest.json").read_text())
    summary = json.loads((rundir / "summary.json").read_text())
    assert manifest["conditions"] == summary["conditions"] == expected
    assert err.count("no default bridge network") == (0 if bridge else 1)
    assert summary["complete"] is True and summary["n_items"] == 1 and summary["score"] == 0.0
    [score] = _read_jsonl(rundir / "scores.jsonl")
    assert score["status"] == "ok" and score["details"]["reason"] == "no_test_output"
    if not bridge:  # without network the eval script's fetch fails: the advisory flag is set
        assert score["details"]["infra_failure"] is True
        assert score["details"]["failure_reason"] == "network_unreachable"
    calls = len(server.requests)

    assert main(["resume", str(rundir), "--no-progress"]) == 0
    assert len(_read_jsonl(rundir / "scores.jsonl")) == 1  # nothing graded again
    assert main(["rescore", str(rundir), "--no-progress"]) == 0
    [again] = _read_jsonl(rundir / "scores.jsonl")
    assert again["status"] == "ok" and again["score"] == 0.0
    assert len(server.requests) == calls
    assert json.loads((rundir / "summary.json").read_text())["complete"] is True
