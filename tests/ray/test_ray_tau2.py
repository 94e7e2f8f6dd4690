"""Tau2 through the Ray executor on the two-node test cluster: conversations between a scripted
agent and a scripted user simulator (real HTTP, real retail data) run on the nodes and earn
the local executor's rewards; a node that would send other texts stops the run before any
conversation.

The scripted models tell attempts apart by the agent request's sampling seed (derived from
the run seed, the item and the attempt, whichever process sends it), so both executors'
conversations are the same.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import NODE, RayCluster, comparable

import k2eval
from k2eval.adapters.base import derived_seed
from k2eval.adapters.tau2.data import load_tasks
from k2eval.adapters.tau2.texts import SOURCE_ENV
from k2eval.errors import ConfigError, UserError
from k2eval.spec import ModelSpec
from k2eval.testing.fake_openai import Reply

sys.path.insert(0, str(Path(__file__).parents[1] / "tau2"))

from tau2_helpers import is_agent_request

TASK_IDS = ["0", "2", "5"]  # state-changing retail tasks; "2" must also tell a value
DONE = "All finished."


@pytest.fixture(scope="module")
def retail(shared_data: Path) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for t in load_tasks(shared_data / "tau2", "retail") if t["id"] in TASK_IDS}


@pytest.fixture(scope="module")
def tau2_source(shared_data: Path) -> Path:
    return shared_data / "tau2-bench-src"


def gold_or_nothing(tasks: dict[str, dict[str, Any]]) -> Callable[[dict[str, Any]], Reply]:
    """Agent: attempt 0 plays the task's gold actions, then says what the task wants told;
    attempt 1 does nothing. User: stops once the agent says it is finished. Stateless: the
    reply depends on the request alone."""
    attempt_of = {derived_seed(0, task_id, i) % (2**31): (task_id, i)
                  for task_id in tasks for i in (0, 1)}

    def respond(body: dict[str, Any]) -> Reply:
        if not is_agent_request(body):
            last = next((m["content"] for m in reversed(body["messages"])
                         if m["role"] == "user"), "")
            return Reply(text="###STOP###" if DONE in str(last) else "Please help me.")
        task_id, index = attempt_of[int(body["seed"])]
        criteria = tasks[task_id]["evaluation_criteria"]
        steps = [Reply(tool_calls=[(a["name"], a["arguments"])]) for a in criteria["actions"]]
        steps = steps if index == 0 else []
        done = sum(1 for m in body["messages"] if m["role"] == "assistant") - 1  # the greeting
        if done < len(steps):
            return steps[done]
        return Reply(text=" ".join([DONE, *(criteria.get("communicate_info") or [])]))

    return respond


def tau2_run(srv: Any, shared_data: Path, out: Path, **overrides: Any) -> Any:
    return k2eval.evaluate("tau2-retail", "openai:agent", base_url=srv.base_url,
                           user_model=ModelSpec("openai:user", base_url=srv.base_url),
                           data=str(shared_data / "tau2"), item_ids=TASK_IDS, k=2,
                           concurrency=4, out=out, **overrides)


def rewards(run: Path) -> dict[tuple[str, int], tuple[float, str]]:
    rows = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
    return {(r["item_id"], r["attempt"]): (r["score"], r["reason"]) for r in rows}


def manifest(run: Path) -> dict[str, Any]:
    return dict(json.loads((run / "manifest.json").read_text()))


def test_tau2_on_ray_earns_the_local_executors_rewards_on_both_nodes_under_its_conditions(
        ray_cluster: RayCluster, fake_openai: Any, shared_data: Path, retail: dict[str, Any],
        tau2_source: Path, tmp_path: Path) -> None:
    srv = fake_openai(gold_or_nothing(retail))
    options = {"tau2_source": str(tau2_source)}
    local = tau2_run(srv, shared_data, tmp_path, run_id="local", options=options)
    n_local = len(srv.requests)
    on_ray = tau2_run(srv, shared_data, tmp_path, run_id="ray", options=options,
                      executor="ray", ray_address=ray_cluster.address)

    # gold actions earn the whole reward, doing nothing earns none, on either executor
    got = rewards(on_ray.path)
    assert {key: value for key, (value, _) in got.items()} == {
        (task_id, i): 1.0 - i for task_id in TASK_IDS for i in (0, 1)}
    assert got == rewards(local.path)
    assert comparable(on_ray.summary) == comparable(local.summary)
    assert on_ray.summary["score"] == 50.0 and on_ray.summary["complete"]
    assert on_ray.summary["breakdowns"]["pass^k"]["pass^2"]["score"] == 0.0
    # the same conversations: as many agent and simulator calls as the local run made
    assert len(srv.requests) == 2 * n_local

    # the conversations ran on the cluster's nodes, in Ray workers, both simulator roles there
    rows = [json.loads(line) for line in (on_ray.path / "attempts.jsonl").read_text().splitlines()]
    assert {r["worker"]["node_id"] for r in rows} == {ray_cluster.head_id, ray_cluster.second_id}
    assert all(r["worker"]["pid"] != os.getpid() for r in rows)
    local_rows = {(r["item_id"], r["attempt"]): r for r in
                  map(json.loads, (local.path / "attempts.jsonl").read_text().splitlines())}
    for row in rows:
        assert row["output"] == local_rows[row["item_id"], row["attempt"]]["output"]
        assert row["output"]["termination"] == "user_stop"

    # the nodes read the texts from the tree the option names, as the local run did
    conditions = manifest(on_ray.path)["conditions"]
    assert conditions == manifest(local.path)["conditions"] == on_ray.summary["conditions"]
    assert str(tau2_source.resolve()) in conditions["tool_texts"] and conditions["texts_sha256"]


def test_the_driver_s_relative_paths_and_tau2_data_dir_reach_the_nodes_as_it_resolved_them(
        ray_cluster: RayCluster, fake_openai: Any, shared_data: Path, retail: dict[str, Any],
        tau2_source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The data directory from $TAU2_DATA_DIR (the nodes' environment has none) and a source
    tree and instruction file named relative to the driver's working directory."""
    (tmp_path / "tau2-src").symlink_to(tau2_source)
    (tmp_path / "instructions.txt").write_text("Scripted instruction.\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TAU2_DATA_DIR", str(shared_data / "tau2"))
    srv = fake_openai(gold_or_nothing(retail))
    common: dict[str, Any] = dict(
        base_url=srv.base_url, user_model=ModelSpec("openai:user", base_url=srv.base_url),
        item_ids=["0"], k=2, out=tmp_path, options={
            "tau2_source": "tau2-src", "agent_instructions_file": "instructions.txt"})
    local = k2eval.evaluate("tau2-retail", "openai:agent", run_id="local", **common)
    on_ray = k2eval.evaluate("tau2-retail", "openai:agent", run_id="ray", executor="ray",
                             ray_address=ray_cluster.address, **common)
    assert rewards(on_ray.path) == rewards(local.path)
    assert {value for value, _ in rewards(on_ray.path).values()} == {0.0, 1.0}
    conditions = manifest(on_ray.path)["conditions"]
    assert conditions == manifest(local.path)["conditions"]
    assert str(tau2_source.resolve()) in conditions["tool_texts"]
    assert conditions["agent_instruction"] == f"file {tmp_path.resolve() / 'instructions.txt'}"
    systems = {r["messages"][0]["content"] for r in srv.requests if is_agent_request(r)}
    assert len(systems) == 1 and next(iter(systems)).startswith(
        "<instructions>\nScripted instruction.\n</instructions>\n<policy>\n")


@pytest.fixture
def odd_node(request: pytest.FixtureRequest, ray_cluster: RayCluster, tau2_source: Path,
             tmp_path: Path) -> Iterator[str]:
    """A third node whose raylet (and so every worker it starts) finds tau2-bench's source
    tree through $TAU2_SOURCE_DIR where the other two nodes find none, or the other way round
    when the test process was started with one; with the parameter "nowhere", its
    $TAU2_SOURCE_DIR names a folder holding no tree. Yields its node id; removed afterwards."""
    before = os.environ.get(SOURCE_ENV)
    if getattr(request, "param", None) == "nowhere":
        (tmp_path / "nowhere").mkdir()
        os.environ[SOURCE_ENV] = str(tmp_path / "nowhere")
    elif before:
        os.environ.pop(SOURCE_ENV)
    else:
        os.environ[SOURCE_ENV] = str(tau2_source)
    try:
        node = ray_cluster.cluster.add_node(**NODE)
    finally:
        if before:
            os.environ[SOURCE_ENV] = before
        else:
            os.environ.pop(SOURCE_ENV)
    try:
        ray_cluster.cluster.wait_for_nodes()
        yield str(node.node_id)
    finally:
        ray_cluster.cluster.remove_node(node)


def test_a_node_that_would_send_other_tau2_texts_stops_the_run_before_any_conversation(
        ray_cluster: RayCluster, odd_node: str, fake_openai: Any, shared_data: Path,
        retail: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without `--option tau2_source` each node looks for the tree itself: the nodes disagree,
    so the run fails naming both, and no agent or simulator call is made."""
    srv = fake_openai(gold_or_nothing(retail))
    with pytest.raises(ConfigError) as raised:
        tau2_run(srv, shared_data, tmp_path, run_id="odd", executor="ray",
                 ray_address=ray_cluster.address)
    message = str(raised.value)
    assert "the Ray nodes would run this task under different conditions" in message
    assert re.search(r"tool_texts: '[^']+' on [^;]+, '[^']+' on ", message)
    assert odd_node[:8] in message
    assert ray_cluster.head_id[:8] in message or ray_cluster.second_id[:8] in message
    assert srv.requests == []
    written = manifest(tmp_path / "odd")
    assert written["status"] == "failed" and written["error"] == message
    assert len(written["executor"]["nodes"]) == 3
    # the setup ran on the nodes: their warning reaches this terminal once, naming the two
    # nodes that found no tree (or the odd one, when this process has a tree of its own)
    warnings = [line for line in capsys.readouterr().err.splitlines()
                if line.startswith("warning: tau2: no tau2-bench source tree")]
    assert len(warnings) == 1, warnings
    nodes = re.search(r"\(on (.+)\)$", warnings[0])
    assert nodes is not None, warnings[0]
    named = nodes.group(1).split(", ")
    assert len(named) == (1 if os.environ.get(SOURCE_ENV) else 2), named
    assert any(odd_node[:8] in n for n in named) == bool(os.environ.get(SOURCE_ENV))



@pytest.mark.parametrize("odd_node", ["nowhere"], indirect=True)
def test_a_node_whose_source_tree_setting_is_wrong_stops_the_run_naming_it(
        ray_cluster: RayCluster, odd_node: str, fake_openai: Any, shared_data: Path,
        retail: dict[str, Any], tmp_path: Path) -> None:
    """The adapter's setup runs on every node too: the odd node refuses its own
    $TAU2_SOURCE_DIR before any conversation, and the error names the node."""
    srv = fake_openai(gold_or_nothing(retail))
    with pytest.raises(UserError) as raised:
        tau2_run(srv, shared_data, tmp_path, run_id="nowhere", executor="ray",
                 ray_address=ray_cluster.address)
    message = str(raised.value)
    assert re.match(rf"Ray node \S+ \({odd_node[:8]}\): \${SOURCE_ENV}={tmp_path / 'nowhere'}: "
                    "no tau2-bench source tree there", message), message
    assert srv.requests == []
    written = manifest(tmp_path / "nowhere")
    assert written["status"] == "failed" and written["error"] == message
