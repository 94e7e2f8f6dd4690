"""A whole SWE-bench agent session through the Ray executor on the two-node test cluster: the
agent works in an instance container on the node that runs the attempt, the patch is graded
there, and the verdicts equal the local executor's on the same scripted model.

Both test nodes share one Docker engine, so where a container ran is read from what the
engine records: the labels a sandbox carries (run id, purpose `<task>.<node id prefix>`,
owner `host:pid:start`) in the engine's create/destroy events, and the container id the
agent itself read inside its container (from /proc/self/mountinfo).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import RayCluster, comparable

import k2eval
from k2eval.adapters.base import derived_seed
from k2eval.engine.executors.ray_cluster import agreed_conditions
from k2eval.errors import ConfigError
from k2eval.testing.fake_openai import Reply

ITEM = "k2eval__wordstats-1"
TASK = "swebench-verified"
BUGGY = 'return len(text.split(" "))'
EDITS = {0: "return len(text.split())",  # the fix
         1: 'return len(text.strip().split(" "))'}  # plausible, still wrong on "a   b"
"""What each attempt replaces the buggy line with."""
CONTAINER_ID = "grep -o 'containers/[0-9a-f]*/hostname' /proc/self/mountinfo | cut -d/ -f2"
"""Prints the id of the container the command runs in (Docker mounts its hostname file)."""


def scripted_agent() -> Any:
    """Per attempt (told apart by the request's sampling seed, whichever process sends it):
    read the container id, edit the buggy line as EDITS says, submit."""
    attempt_of = {derived_seed(0, ITEM, i) % (2**31): i for i in EDITS}

    def respond(body: dict[str, Any]) -> Reply:
        edit = EDITS[attempt_of[int(body["seed"])]]
        turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
        name, args = [
            ("bash", {"command": CONTAINER_ID}),
            ("str_replace_editor", {"command": "str_replace", "path": "/testbed/wordstats/core.py",
                                    "old_str": BUGGY, "new_str": edit}),
            ("submit", {}),
        ][turn]
        return Reply(text="", tool_calls=[(name, args)], prompt_tokens=100, completion_tokens=20)

    return respond


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def verdicts(run: Path) -> dict[int, tuple[str, float, str, bool]]:
    return {r["attempt"]: (r["status"], r["score"], r["reason"], r["correct"])
            for r in read_jsonl(run / "scores.jsonl")}


def container_events(client: Any, run_id: str, since: float, until: float) -> list[dict[str, Any]]:
    """The engine's create and destroy events of the run's containers, oldest first."""
    from k2eval.sandbox.cleanup import LABEL_RUN_ID

    return [e for e in client.events(since=since, until=until, decode=True, filters={
        "type": "container", "label": f"{LABEL_RUN_ID}={run_id}"})
        if e.get("Action") in ("create", "destroy")]


def peak_per_purpose(events: list[dict[str, Any]]) -> Counter[str]:
    """The most containers of each purpose that existed at once."""
    from k2eval.sandbox.cleanup import LABEL_PURPOSE

    now: Counter[str] = Counter()
    peak: Counter[str] = Counter()
    for event in events:
        purpose = event["Actor"]["Attributes"][LABEL_PURPOSE]
        now[purpose] += 1 if event["Action"] == "create" else -1
        peak[purpose] = max(peak[purpose], now[purpose])
    return peak


@pytest.mark.docker
def test_an_agent_session_on_ray_solves_and_grades_on_its_node_as_the_local_executor_does(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path) -> None:
    from k2eval.adapters.swebench.synthetic import build_synthetic_image, synthetic_row
    from k2eval.sandbox.cleanup import LABEL_OWNER, LABEL_PURPOSE, LABEL_RUN_ID

    data = tmp_path / "swe.jsonl"
    data.write_text(json.dumps(synthetic_row(build_synthetic_image())) + "\n")
    srv = fake_openai(scripted_agent())
    common = dict(base_url=srv.base_url, data=data, k=2, concurrency=2, out=tmp_path)
    local = k2eval.evaluate(TASK, "openai:m", run_id=f"swe-local-{os.getpid()}", **common)
    run_id = f"swe-ray-{os.getpid()}"  # unique on an engine other test runs may share
    since = time.time() - 1
    on_ray = k2eval.evaluate(TASK, "openai:m", run_id=run_id, executor="ray",
                             ray_address=ray_cluster.address, **common)
    until = time.time() + 1

    # one attempt resolves, the other does not, exactly as on the local executor
    assert verdicts(on_ray.path)[0][1:] == (1.0, "resolved", True)
    assert verdicts(on_ray.path)[1][1] == 0.0 and verdicts(on_ray.path)[1][3] is False
    assert verdicts(on_ray.path) == verdicts(local.path)
    assert comparable(on_ray.summary) == comparable(local.summary)
    assert on_ray.summary["n_attempts"] == 2 and on_ray.summary["complete"]
    assert on_ray.summary.score == 50.0 and on_ray.summary.pass_at_k == {"pass@1": 50.0}
    assert len(srv.requests) == 2 * 2 * 3  # two runs, two attempts, three turns each

    # each attempt ran on a cluster node: the agent's container and its grading container were
    # made there, by the worker that journaled the attempt, and no other container was made
    events = container_events(require_docker.api, run_id, since, until)
    created = {e["id"]: e["Actor"]["Attributes"] for e in events if e["Action"] == "create"}
    rows = read_jsonl(on_ray.path / "attempts.jsonl")
    assert {r["worker"]["node_id"] for r in rows} == {ray_cluster.head_id, ray_cluster.second_id}
    for row in rows:
        worker = row["worker"]
        purpose = f"{TASK}.{worker['node_id'][:8]}"
        assert row["output"]["exit_status"] == "submitted" and row["output"]["patch"]
        agent_container = next(m["content"] for m in row["messages"] if m["role"] == "tool")
        labels = created[agent_container]  # KeyError: the agent ran in no container of the run
        assert labels[LABEL_PURPOSE] == purpose and labels[LABEL_RUN_ID] == run_id
        assert labels[LABEL_OWNER].split(":")[1] == str(worker["pid"]) != str(os.getpid())
        on_node = [c for c in created.values() if c[LABEL_PURPOSE] == purpose]
        assert len(on_node) == 2, "the agent's container and the grading container"
        assert {c[LABEL_OWNER] for c in on_node} == {labels[LABEL_OWNER]}
    assert len(created) == 2 * len(rows)

    # every container of the run is gone, and no node ever held more than its one slot
    assert Counter(e["Action"] for e in events) == {"create": 4, "destroy": 4}
    assert set(peak_per_purpose(events).values()) == {1}
    for run in (run_id, local.path.name):
        assert require_docker.containers.list(
            all=True, filters={"label": f"{LABEL_RUN_ID}={run}"}) == []



@pytest.mark.docker
def test_a_driver_without_a_docker_engine_runs_swebench_on_the_nodes_and_records_their_network(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' Docker engine is the one their nodes were started with; the driver's
    points nowhere (its cached client and network answer forgotten)."""
    import k2eval.sandbox.client
    from k2eval.adapters.swebench.network import NetworkResolver
    from k2eval.adapters.swebench.synthetic import build_synthetic_image, synthetic_row
    from k2eval.spec import load_task

    data = tmp_path / "swe.jsonl"
    data.write_text(json.dumps(synthetic_row(build_synthetic_image())) + "\n")
    nodes_network = NetworkResolver().resolve(load_task(TASK)).conditions()
    srv = fake_openai(scripted_agent())
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    monkeypatch.setattr(k2eval.sandbox.client, "_client", None)
    monkeypatch.setattr(k2eval.sandbox.client, "_default_bridge", None)
    run = k2eval.evaluate(TASK, "openai:m", base_url=srv.base_url, data=data, k=2,
                          concurrency=2, out=tmp_path, executor="ray",
                          ray_address=ray_cluster.address)
    assert verdicts(run.path)[0][1:] == (1.0, "resolved", True)
    assert verdicts(run.path)[1][1:] == (0.0, "tests failed", False)
    assert run.summary["complete"] and run.summary["conditions"] == nodes_network
    manifest = json.loads((run.path / "manifest.json").read_text())
    assert manifest["conditions"] == nodes_network


def test_the_run_records_the_conditions_every_node_reports() -> None:
    same = {"network": "bridge", "network_requested": "bridge", "official_conditions": True}
    assert agreed_conditions({"a (1)": same, "b (2)": dict(same)}) == same


@pytest.mark.parametrize(("second", "named"), [
    ({"network": "none", "network_requested": "bridge", "official_conditions": False},
     "network: 'bridge' on a (1), 'none' on b (2); official_conditions: True on a (1), False "
     "on b (2)"),
    ({"network": "bridge", "network_requested": "bridge"},
     "official_conditions: True on a (1), None on b (2)"),
], ids=["a-node-without-a-bridge", "a-node-that-says-less"])
def test_nodes_that_would_run_under_different_conditions_stop_the_run_naming_them(
        second: dict[str, Any], named: str) -> None:
    first = {"network": "bridge", "network_requested": "bridge", "official_conditions": True}
    with pytest.raises(ConfigError, match=re.escape(f"different conditions ({named})")):
        agreed_conditions({"a (1)": first, "b (2)": second})
