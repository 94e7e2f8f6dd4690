"""The Ray executor on a real two-node cluster: same results as the local executor, attempts
spread over both nodes, workers killed mid-run, driver killed then resumed locally, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from ray_helpers import NODE, NODE_IMAGES, REPO, RayCluster, comparable

import k2eval
from k2eval.adapters.aime import PROMPT_SUFFIX
from k2eval.engine.executors import make_executor
from k2eval.testing.fake_openai import Reply, last_user_text

KEY = "sk-test-key-0123456789"
GPQA_LETTER = "ABCD"


def journal(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "attempts.jsonl").read_text().splitlines()]


def aime_oracle(aime: Path, correct_first: int) -> Any:
    """Right answers for the first `correct_first` problems of the file, wrong for the rest."""
    rows = [json.loads(line) for line in aime.read_text().splitlines() if line.strip()]
    gold = {r["problem"]: r["answer"] for r in rows}
    order = list(gold)

    def respond(body: dict[str, Any]) -> Reply:
        problem = last_user_text(body).removesuffix("\n" + PROMPT_SUFFIX)
        ok = order.index(problem) < correct_first
        answer = gold[problem] if ok else int(gold[problem]) + 1
        return Reply(text=f"work\n\\boxed{{{answer}}}", completion_tokens=7)

    return respond


def seeded_letter(body: dict[str, Any]) -> Reply:
    """A GPQA answer that depends only on the attempt's sampling seed (deterministic per
    attempt, whichever process sends it)."""
    return Reply(text=f"ANSWER: {GPQA_LETTER[int(body['seed']) % 4]}", completion_tokens=3)


def test_aime_on_ray_matches_the_local_executor_and_runs_on_both_nodes(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    latency, arrivals = 0.2, []
    oracle = aime_oracle(aime, 12)

    def respond(body: dict[str, Any]) -> Reply:
        arrivals.append(time.monotonic())
        return oracle(body)

    srv = fake_openai(respond, latency=latency)
    common = dict(base_url=srv.base_url, data=aime, k=2, out=tmp_path, concurrency=8)
    local = k2eval.evaluate("aime2025", "openai:m", run_id="local", **common)
    arrivals.clear()
    on_ray = k2eval.evaluate("aime2025", "openai:m", run_id="ray", executor="ray",
                             ray_address=ray_cluster.address, **common)
    # a slot's next call starts after its previous one ended, so windows of one latency from
    # each arrival overlap exactly as many times as calls were in flight together
    peak = max(sum(1 for u in arrivals if t <= u < t + latency) for t in arrivals)
    assert 2 <= peak <= 8, "at most --concurrency calls in flight across the cluster"
    assert comparable(on_ray.summary) == comparable(local.summary)
    assert on_ray.summary["score"] == pytest.approx(40.0) and on_ray.summary["complete"]
    rows = journal(on_ray.path)
    assert Counter((r["item_id"], r["attempt"]) for r in rows) == Counter(
        {(r["item_id"], r["attempt"]): 1 for r in journal(local.path)})
    nodes = Counter(r["worker"]["node_id"] for r in rows)
    assert set(nodes) == {ray_cluster.head_id, ray_cluster.second_id}, nodes
    assert all(r["worker"]["pid"] != os.getpid() for r in rows)
    assert {r["worker"]["node_id"] for r in journal(local.path)} == {"local"}
    manifest = json.loads((on_ray.path / "manifest.json").read_text())
    assert manifest["executor"]["name"] == "ray" and manifest["executor"]["workers"] == 2
    # and the other way round: a local run regraded through the Ray executor
    n_requests = len(srv.requests)
    regraded = k2eval.rescore_run(local.path, progress=False,
                                  executor=make_executor("ray", address=ray_cluster.address))
    assert comparable(regraded.summary) == comparable(local.summary)
    assert len(srv.requests) == n_requests


def test_gpqa_on_ray_matches_the_local_executor(ray_cluster: RayCluster, fake_openai: Any,
                                                shared_data: Path, tmp_path: Path) -> None:
    srv = fake_openai(seeded_letter)
    common = dict(base_url=srv.base_url, data=shared_data / "gpqa" / "dataset.zip", k=2,
                  limit=20, out=tmp_path, concurrency=8)
    local = k2eval.evaluate("gpqa-diamond", "openai:m", run_id="local", **common)
    on_ray = k2eval.evaluate("gpqa-diamond", "openai:m", run_id="ray", executor="ray",
                             ray_address=ray_cluster.address, **common)
    assert comparable(on_ray.summary) == comparable(local.summary)
    assert 0 < on_ray.summary["score"] < 100
    assert len({r["worker"]["node_id"] for r in journal(on_ray.path)}) == 2


def run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "k2eval.cli", *args], cwd=REPO, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def aime_on_ray(ray_cluster: RayCluster, base_url: str, aime: Path, out: Path, run_id: str, *,
                k: int, concurrency: int) -> subprocess.Popen[str]:
    """`k2eval run` of AIME 2025 on the cluster, in its own process (to be killed)."""
    return run_cli("run", "--task", "aime2025", "--model", "openai:m", "--base-url", base_url,
                   "--data", str(aime), "--k", str(k), "--concurrency", str(concurrency),
                   "--out", str(out), "--run-id", run_id, "--no-progress",
                   "--executor", "ray", "--ray-address", ray_cluster.address)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killing_the_second_nodes_worker_mid_run_repeats_and_loses_nothing(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    srv = fake_openai(aime_oracle(aime, 9), latency=0.8)
    run = tmp_path / "killed"
    proc = aime_on_ray(ray_cluster, srv.base_url, aime, tmp_path, "killed", k=4, concurrency=8)
    try:
        def second_node_pids() -> set[int]:
            if not (run / "attempts.jsonl").exists():
                return set()
            return {r["worker"]["pid"] for r in journal(run)
                    if r["worker"]["node_id"] == ray_cluster.second_id}

        # Kill early in a run long enough (120 attempts, ~12 s) that the worker is mid-call.
        wait_for(second_node_pids, 120, "an attempt from the second node")
        victims = second_node_pids()
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    rows = journal(run)
    keys = Counter((r["item_id"], r["attempt"]) for r in rows)
    assert len(keys) == 120 and set(keys.values()) == {1}, "every attempt journaled exactly once"
    assert all(r["status"] == "ok" for r in rows)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["score"] == pytest.approx(30.0) and summary["complete"]
    executor = json.loads((run / "manifest.json").read_text())["executor"]
    assert len(srv.requests) > 120, (executor, victims, err)
    assert executor["name"] == "ray" and executor["rescheduled"] >= 1


def test_a_node_dying_mid_run_loses_and_repeats_nothing(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    third = ray_cluster.cluster.add_node(**NODE)
    ray_cluster.cluster.wait_for_nodes()
    srv = fake_openai(aime_oracle(aime, 9), latency=0.8)
    run = tmp_path / "node"
    proc = aime_on_ray(ray_cluster, srv.base_url, aime, tmp_path, "node", k=2, concurrency=9)
    try:
        wait_for(lambda: (run / "attempts.jsonl").exists() and any(
            r["worker"]["node_id"] == third.node_id for r in journal(run)), 120,
            "an attempt from the third node")
        ray_cluster.cluster.remove_node(third, allow_graceful=False)  # the whole node, kill -9
        _, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
        ray_cluster.cluster.wait_for_nodes(timeout=120)  # the cluster knows it is gone
    assert proc.returncode == 0, err
    rows = journal(run)
    keys = Counter((r["item_id"], r["attempt"]) for r in rows)
    assert len(keys) == 60 and set(keys.values()) == {1}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["score"] == pytest.approx(30.0) and summary["complete"]
    executor = json.loads((run / "manifest.json").read_text())["executor"]
    assert executor["workers"] == 3 and executor["rescheduled"] >= 1, executor


def test_driver_kill_9_then_local_resume_repeats_nothing_journaled(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    srv = fake_openai(aime_oracle(aime, 15), latency=0.3)
    run = tmp_path / "driver"
    proc = aime_on_ray(ray_cluster, srv.base_url, aime, tmp_path, "driver", k=2, concurrency=4)
    try:
        wait_for(lambda: (run / "attempts.jsonl").exists() and len(journal(run)) >= 8, 120,
                 "8 journaled attempts")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    time.sleep(2.0)  # the cluster ends the dead driver's job and its workers
    before = journal(run)
    done = {(r["item_id"], r["attempt"]) for r in before}
    n_before = len(srv.requests)
    resumed = k2eval.resume_run(run, progress=False)
    after = srv.requests[n_before:]
    assert resumed.summary["complete"] and resumed.summary["score"] == pytest.approx(50.0)
    rows = journal(run)
    keys = Counter((r["item_id"], r["attempt"]) for r in rows)
    assert len(keys) == 60 and set(keys.values()) == {1}
    assert len(after) == 60 - len(done), "resume made exactly the missing attempts"
    assert {r["worker"]["node_id"] for r in rows[len(before):]} == {"local"}


def seeded_program(body: dict[str, Any]) -> Reply:
    """A LiveCodeBench answer (right, wrong or no code) fixed by the attempt's sampling seed."""
    from lcb_rows import PROBLEMS, fenced

    prompt = last_user_text(body)
    problem = next(p for p in PROBLEMS.values() if p["question_content"] in prompt)
    kind = ("correct", "wrong", "none")[int(body["seed"]) % 3]
    return Reply(text="No code." if kind == "none" else fenced(problem[kind]),
                 completion_tokens=20)


class ContainerCounter:
    """Counts a run's live containers per node (by their purpose label) while it runs."""

    def __init__(self, run_id: str) -> None:
        import threading

        import docker

        self.client = docker.from_env()
        self.run_id = run_id
        self.peak: Counter[str] = Counter()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.poll, daemon=True)

    def poll(self) -> None:
        from k2eval.sandbox.cleanup import LABEL_PURPOSE, LABEL_RUN_ID

        while not self.stop.is_set():
            now: Counter[str] = Counter()
            # one list call, no per-container inspect: a container removed meanwhile is no error
            for entry in self.client.api.containers(
                    filters={"label": f"{LABEL_RUN_ID}={self.run_id}"}):
                now[entry["Labels"][LABEL_PURPOSE]] += 1
            for purpose, n in now.items():
                self.peak[purpose] = max(self.peak[purpose], n)
            time.sleep(0.05)

    def __enter__(self) -> ContainerCounter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.docker
def test_sandboxed_livecodebench_never_exceeds_a_nodes_slots_and_grades_as_local(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from lcb_rows import fixture_rows, write_jsonl

    from k2eval.sandbox import ensure_image

    ensure_image("python")
    data = write_jsonl(tmp_path / "lcb.jsonl", fixture_rows())
    srv = fake_openai(seeded_program, latency=0.05)
    common = dict(base_url=srv.base_url, data=data, k=3, out=tmp_path, concurrency=8)
    local = k2eval.evaluate("livecodebench-v6", "openai:m", run_id="local", sandboxes=1, **common)
    with ContainerCounter("ray-lcb") as counter:
        on_ray = k2eval.evaluate("livecodebench-v6", "openai:m", run_id="ray-lcb",
                                 executor="ray", ray_address=ray_cluster.address, **common)
    node_of = {f"livecodebench-v6.{n[:8]}": n for n in (ray_cluster.head_id, ray_cluster.second_id)}
    assert set(counter.peak) == set(node_of), counter.peak
    assert all(peak <= 1 for peak in counter.peak.values()), "one sandbox slot per node"

    def verdicts(run: Path) -> dict[tuple[str, int], tuple[float, str]]:
        rows = [json.loads(line) for line in (run / "scores.jsonl").read_text().splitlines()]
        return {(r["item_id"], r["attempt"]): (r["score"], r["reason"]) for r in rows}

    assert verdicts(on_ray.path) == verdicts(local.path)
    assert len(verdicts(local.path)) == 12
    assert comparable(on_ray.summary) == comparable(local.summary)
    assert {r["worker"]["node_id"] for r in journal(on_ray.path)} == set(node_of.values())
    # regrading on the cluster needs no model, hence no API key anywhere
    monkeypatch.delenv("OPENAI_API_KEY")
    regraded = k2eval.rescore_run(local.path, progress=False,
                                  executor=make_executor("ray", address=ray_cluster.address))
    assert verdicts(local.path) == verdicts(on_ray.path)
    assert comparable(regraded.summary) == comparable(local.summary)


def test_no_api_key_reaches_rays_session_logs_or_the_run_directory(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    srv = fake_openai(aime_oracle(aime, 5))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, limit=6,
                          k=2, out=tmp_path, executor="ray", ray_address=ray_cluster.address)
    assert run.summary["complete"] and os.environ["OPENAI_API_KEY"] == KEY
    scanned = 0
    for root in (ray_cluster.temp_dir, tmp_path):
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                scanned += 1
                assert KEY.encode() not in path.read_bytes(), f"API key leaked into {path}"
    assert scanned > 20 and any(ray_cluster.temp_dir.rglob("logs/*.log"))


def run_span(run: Path) -> tuple[float, float]:
    """When a run's first attempt started and its last one ended (from its journal)."""
    rows = journal(run)
    return min(r["started"] for r in rows), max(r["ended"] for r in rows)


def nightly(suite: Path, out: Path, *flags: str) -> tuple[str, Path]:
    """Run `k2eval nightly` on `suite` into `out`: its stdout and the night's folder."""
    proc = run_cli("nightly", "--suite", str(suite), "--history", str(out / "h.db"),
                   "--out", str(out / "nights"), *flags)
    stdout, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    (night,) = (out / "nights").glob("2*")
    return stdout, night


def night_runs(night: Path) -> dict[str, Path]:
    """slot -> run directory, in suite order, from night.json."""
    doc = json.loads((night / "night.json").read_text())
    return {r["slot"]: night / r["run_dir"] for r in doc["runs"]}


def test_nightly_on_ray_runs_the_suites_runs_at_once_and_reports_as_sequential(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, shared_data: Path,
        tmp_path: Path) -> None:
    oracle = aime_oracle(aime, 3)

    def respond(body: dict[str, Any]) -> Reply:
        return seeded_letter(body) if "multiple choice" in last_user_text(body) else oracle(body)

    def suite(name: str, latency: float) -> Path:
        base_url = fake_openai(respond, latency=latency).base_url
        path = tmp_path / f"{name}.yaml"
        path.write_text(
            f"name: ray-night\nruns:\n"
            f"  - {{task: aime2025, model: 'openai:m', data: {aime}, k: 2, limit: 6,\n"
            f"     concurrency: 2, base_url: '{base_url}'}}\n"
            f"  - {{task: gpqa-diamond, model: 'openai:m', data: {shared_data}/gpqa/dataset.zip,\n"
            f"     k: 2, limit: 6, concurrency: 2, base_url: '{base_url}'}}\n")
        return path

    seq_out, seq_night = nightly(suite("local", 0.0), tmp_path / "local")
    # on Ray each run takes >= 4.8 s: longer than the workers take to start
    ray_out, ray_night = nightly(suite("ray", 0.8), tmp_path / "ray", "--executor", "ray",
                                 "--ray-address", ray_cluster.address)
    seq_runs, ray_runs = night_runs(seq_night), night_runs(ray_night)
    assert list(ray_runs) == list(seq_runs) == ["aime2025 @ openai:m", "gpqa-diamond @ openai:m"]
    # the sequential night ran one run after the other; on Ray, the two ran together
    (s1, e1), (s2, e2) = (run_span(r) for r in seq_runs.values())
    assert e1 <= s2
    (s1, e1), (s2, e2) = (run_span(r) for r in ray_runs.values())
    assert max(s1, s2) < min(e1, e2), "the two runs' attempts overlap in time"
    for slot, run in ray_runs.items():
        rows = journal(run)
        assert len(rows) == 12 and all(r["worker"]["node_id"] in {
            ray_cluster.head_id, ray_cluster.second_id} for r in rows)
        ray_summary = json.loads((run / "summary.json").read_text())
        local_summary = json.loads((seq_runs[slot] / "summary.json").read_text())
        assert comparable(ray_summary) == comparable(local_summary), slot
    assert json.loads((ray_runs["aime2025 @ openai:m"] / "summary.json").read_text())[
        "score"] == pytest.approx(50.0)
    def verdict_lines(stdout: str) -> list[str]:
        return [line for line in stdout.splitlines() if "no-baseline" in line]

    assert len(verdict_lines(seq_out)) == 2
    assert verdict_lines(ray_out) == verdict_lines(seq_out)
    assert "running 2 runs, 2 at a time" in ray_out

    def page(night: Path) -> str:
        text = (night / "regression.md").read_text()
        for run in night_runs(night).values():
            text = text.replace(json.loads((run / "summary.json").read_text())["run_id"], "RUN")
        return text.replace(str(night), "NIGHT").replace(night.name, "NIGHT")

    assert page(ray_night) == page(seq_night)


@pytest.mark.docker
def test_a_node_without_the_sandbox_image_fails_grading_as_infrastructure_naming_the_node(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path) -> None:
    from lcb_rows import fixture_rows, write_jsonl

    from k2eval.spec import load_task

    spec = load_task("livecodebench-v6").with_overrides(sandbox_image="k2eval/absent:none")
    srv = fake_openai(seeded_program)
    run = k2eval.evaluate(spec, "openai:m", base_url=srv.base_url,  # type: ignore[arg-type]
                          data=write_jsonl(tmp_path / "lcb.jsonl", fixture_rows()), k=1,
                          out=tmp_path, executor="ray", ray_address=ray_cluster.address)
    rows = [json.loads(line) for line in (run.path / "scores.jsonl").read_text().splitlines()]
    graded = [r for r in rows if r["reason"] != "no code block"]
    assert graded and all(r["status"] == "error" for r in graded), rows
    nodes = {ray_cluster.head_id, ray_cluster.second_id}
    assert all(any(n in r["reason"] for n in nodes) and "on node" in r["reason"] for r in graded)
    assert run.summary["n_score_errors"] == len(graded) and not run.summary["complete"]


@pytest.mark.docker
def test_a_sandboxed_worker_killed_mid_run_leaves_no_container_and_never_two_on_its_node(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path) -> None:
    from lcb_rows import fixture_rows, write_jsonl

    from k2eval.adapters.base import derived_seed
    from k2eval.sandbox import ensure_image
    from k2eval.sandbox.cleanup import LABEL_RUN_ID

    ensure_image("python")
    srv = fake_openai(seeded_program, latency=0.3)
    run = tmp_path / "lcb-kill"
    second = f"livecodebench-v6.{ray_cluster.second_id[:8]}"
    with ContainerCounter("lcb-kill") as counter:
        proc = run_cli("run", "--task", "livecodebench-v6", "--model", "openai:m",
                       "--base-url", srv.base_url, "--data",
                       str(write_jsonl(tmp_path / "lcb.jsonl", fixture_rows())), "--k", "6",
                       "--concurrency", "4", "--out", str(tmp_path), "--run-id", "lcb-kill",
                       "--no-progress", "--executor", "ray", "--ray-address", ray_cluster.address)
        try:
            def holder() -> set[int]:
                if not counter.peak[second] or not (run / "attempts.jsonl").exists():
                    return set()
                return {r["worker"]["pid"] for r in journal(run)
                        if r["worker"]["node_id"] == ray_cluster.second_id}

            wait_for(holder, 120, "a container on the second node")
            for pid in holder():
                os.kill(pid, signal.SIGKILL)  # its warm container is left behind
            _, err = proc.communicate(timeout=300)
        finally:
            proc.kill()
    assert proc.returncode == 0, err
    assert counter.peak[second] == 1, "the restarted worker removed its orphan first"
    assert counter.client.containers.list(all=True, filters={"label": f"{LABEL_RUN_ID}=lcb-kill"}) == []
    keys = Counter((r["item_id"], r["attempt"]) for r in journal(run))
    assert len(keys) == 24 and set(keys.values()) == {1}
    expected = {"correct": "passed", "wrong": "wrong answer", "none": "no code block"}
    for line in (run / "scores.jsonl").read_text().splitlines():
        row = json.loads(line)
        kind = ("correct", "wrong", "none")[derived_seed(0, row["item_id"], row["attempt"])
                                            % (2**31) % 3]
        assert row["status"] == "ok" and row["details"]["verdict"] == expected[kind], row


@pytest.mark.docker
@pytest.mark.parametrize(("holder", "concurrency", "placement"), [
    ("head", 1, {"held": 8}),
    # two attempts start together: the second finds the holder's one slot busy and goes to the
    # other node, which then holds the image too
    ("second", 2, {"held": 7, "not_held": 1}),
], ids=["head-holds-it", "second-holds-it-busy"])
def test_attempts_are_placed_on_a_node_that_holds_the_image_they_need(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path,
        holder: str, concurrency: int, placement: dict[str, int]) -> None:
    """Answers without code are graded without a container, so a grading never keeps the
    holder's slot busy when the next attempt is placed."""
    from lcb_rows import fixture_rows, write_jsonl

    from k2eval.sandbox import ensure_image
    from k2eval.spec import load_task

    holder_id, other_id = ((ray_cluster.head_id, ray_cluster.second_id) if holder == "head"
                           else (ray_cluster.second_id, ray_cluster.head_id))
    marker = f"k2eval/placement-{os.getpid()}:{holder}"
    require_docker.images.get(ensure_image("python")).tag(marker)
    NODE_IMAGES.write_text(json.dumps({other_id: [marker]}))  # only the holder "has" it
    try:
        spec = load_task("livecodebench-v6").with_overrides(sandbox_image=marker)
        srv = fake_openai(lambda body: Reply(text="No code."), latency=0.05)
        run = k2eval.evaluate(spec, "openai:m", base_url=srv.base_url,  # type: ignore[arg-type]
                              data=write_jsonl(tmp_path / "lcb.jsonl", fixture_rows()), k=2,
                              concurrency=concurrency, out=tmp_path, executor="ray",
                              ray_address=ray_cluster.address)
    finally:
        NODE_IMAGES.unlink()
        require_docker.images.remove(marker)
    assert run.summary["complete"] and run.summary["n_score_errors"] == 0
    nodes = Counter(r["worker"]["node_id"] for r in journal(run.path))
    assert sum(nodes.values()) == 8
    assert set(nodes) == ({holder_id} if concurrency == 1 else {holder_id, other_id}), nodes
    executor = json.loads((run.path / "manifest.json").read_text())["executor"]
    assert executor["image_placement"] == placement and executor["workers"] == 2


@pytest.mark.docker
def test_a_node_that_cannot_pull_a_swebench_instance_image_fails_the_attempt_naming_the_node(
        ray_cluster: RayCluster, require_docker: Any, fake_openai: Any, tmp_path: Path) -> None:
    """The driver holds no such image either: on Ray it leaves the check to the nodes."""
    from k2eval.adapters.swebench.synthetic import build_synthetic_image, synthetic_row

    unpullable = "127.0.0.1:1/k2eval/absent:none"  # nothing listens there: the pull fails
    data = tmp_path / "swe.jsonl"
    data.write_text(json.dumps({**synthetic_row(build_synthetic_image()), "image": unpullable})
                    + "\n")
    srv = fake_openai(lambda body: Reply(text="no tool call"))
    run = k2eval.evaluate("swebench-verified", "openai:m", base_url=srv.base_url, data=data,
                          k=2, out=tmp_path, executor="ray", ray_address=ray_cluster.address)
    rows = journal(run.path)
    assert len(rows) == 2 and all(r["status"] == "error" for r in rows)
    nodes = {ray_cluster.head_id, ray_cluster.second_id}
    for row in rows:
        message = row["error"]["message"]
        assert row["error"]["type"] == "InfraError", row["error"]
        assert message.startswith(f"cannot prepare instance image {unpullable}: "), message
        assert "[on node" in message and row["worker"]["node_id"] in message
        assert row["worker"]["node_id"] in nodes
    assert srv.requests == [], "no model call for an attempt whose image is missing"
    assert not run.summary["complete"]


def test_sigterm_to_a_concurrent_night_marks_every_run_in_flight_interrupted(
        ray_cluster: RayCluster, fake_openai: Any, aime: Path, tmp_path: Path) -> None:
    srv = fake_openai(aime_oracle(aime, 3), latency=1.0)
    entry = (f"{{task: aime2025, model: 'openai:m', data: {aime}, k: 2, limit: 6, "
             f"concurrency: 2, base_url: '{srv.base_url}'")
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"- {entry}, name: first}}\n- {entry}, name: second}}\n")
    nights = tmp_path / "nights"
    proc = run_cli("nightly", "--suite", str(suite), "--history", str(tmp_path / "h.db"),
                   "--out", str(nights), "--executor", "ray", "--ray-address",
                   ray_cluster.address)
    try:
        wait_for(lambda: len([p for p in nights.rglob("attempts.jsonl") if p.read_text()]) == 2,
                 120, "an attempt journaled by each run")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode != 0
    runs = [p.parent for p in nights.rglob("attempts.jsonl")]
    statuses = [json.loads((run / "manifest.json").read_text())["status"] for run in runs]
    assert statuses == ["interrupted", "interrupted"], err
    assert all(len(journal(run)) < 12 for run in runs)
