"""The judge inside the sandbox image against the DMOJ judge run directly on the host (same
submissions, same verdicts), internal errors as infrastructure errors, and `k2eval run`
end to end against the scripted OpenAI-compatible server (real HTTP, real containers)."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from oj_solutions import FIXTURE_DATA, SUBMISSIONS, fenced

from k2eval.adapters.base import Attempt, Item, ScoreContext
from k2eval.adapters.ojbench import (
    Judgement,
    OJBenchAdapter,
    OJBenchSettings,
    find_problem,
    judge_in_sandbox,
    judge_on_host,
)
from k2eval.cli import main as k2eval_main
from k2eval.sandbox import SandboxLimits, docker_sandbox
from k2eval.spec import ModelSpec, RunConfig, load_task
from k2eval.testing.fake_openai import Reply, last_user_text

pytestmark = pytest.mark.docker

# 6 s per case instead of 10: the same rules, with shorter waits on the TLE cases.
TEST_SPEC = load_task("ojbench").with_overrides(options={"time_limit_s": 6})
SETTINGS = OJBenchSettings.from_spec(TEST_SPEC)


def fixture_item(pid: str, language: str) -> Item:
    directory = find_problem(FIXTURE_DATA, pid)
    assert directory is not None, pid
    return Item(id=f"{pid}:{language}", data={"problem_id": pid, "language": language,
                                              "problem_dir": str(directory), "skipped": False})


async def judge_all_on_host(keys: list[tuple[str, str, str]], parallel: int = 2) -> list[Judgement]:
    """The reference: the same judge run directly on the host, on the fixture folder."""
    gate = asyncio.Semaphore(parallel)
    roots = [str(FIXTURE_DATA / "NOI"), str(FIXTURE_DATA / "ICPC")]

    async def one(key: tuple[str, str, str]) -> Judgement:
        async with gate:
            return await judge_on_host(fixture_item(key[0], key[1]), SUBMISSIONS[key][0],
                                       SETTINGS, roots)

    return list(await asyncio.gather(*(one(key) for key in keys)))


async def judge_all_in_sandboxes(image: str, keys: list[tuple[str, str, str]],
                                 parallel: int = 2) -> list[Judgement]:
    limits = SandboxLimits(memory_mb=SETTINGS.sandbox_memory_mb, disk_mb=SETTINGS.sandbox_disk_mb)
    gate = asyncio.Semaphore(parallel)

    async def one(key: tuple[str, str, str]) -> Judgement:
        async with gate, docker_sandbox(image, limits, purpose="ojbench-test") as sandbox:
            return await judge_in_sandbox(sandbox, fixture_item(key[0], key[1]),
                                          SUBMISSIONS[key][0], SETTINGS)

    return list(await asyncio.gather(*(one(key) for key in keys)))


def comparable(judgement: Judgement) -> dict[str, Any]:
    details = judgement.details()
    return {key: details[key] for key in ("verdict", "case_verdicts", "scale_verdicts")}


@pytest.mark.slow
def test_sandboxed_verdicts_equal_the_host_judges_for_every_submission(
        host_judge: None, ojbench_image: str) -> None:
    keys = list(SUBMISSIONS)
    on_host = asyncio.run(judge_all_on_host(keys))
    in_sandbox = asyncio.run(judge_all_in_sandboxes(ojbench_image, keys))
    for key, host, boxed in zip(keys, on_host, in_sandbox, strict=True):
        expected = SUBMISSIONS[key][1]
        assert host.verdict == expected, (key, host)
        assert comparable(boxed) == comparable(host), key
    verdicts = {k: j for k, j in zip(keys, in_sandbox, strict=True)}
    # every verdict the judge gives appears, in both languages
    for language in ("cpp", "python"):
        seen = {j.verdict for (_, lang, _), j in verdicts.items() if lang == language}
        assert {"AC", "WA", "TLE", "MLE", "CE", "OLE", "IE"} <= seen, (language, seen)
    assert verdicts[("loj-1001", "cpp", "crash")].verdict == "RTE"
    assert verdicts[("loj-1001", "python", "crash")].verdict == "IR"  # a non-zero exit status
    # the slow solutions time out on the last case only: they pass at 1/8, 1/4 and 1/2
    for language in ("cpp", "python"):
        slow = verdicts[("loj-1001", language, "slow")]
        assert slow.case_verdicts == ["AC"] * 7 + ["TLE"]
        assert slow.details()["scale_verdicts"] == {"1/8": "AC", "1/4": "AC", "1/2": "AC"}
        assert verdicts[("loj-1001", language, "syntax")].cases == []  # compiled once, no case run
        right = verdicts[("loj-1002", language, "right")]  # 8 MB of output, compared in full
        assert right.case_verdicts == ["AC"] * 3
    short = verdicts[("loj-1002", "python", "short")]
    assert short.case_verdicts == ["AC", "AC", "WA"]
    # the checker accepts any valid pair, not only the one in the .out files
    assert verdicts[("pairsum", "cpp", "right")].verdict == "AC"


def score_context(image: str) -> ScoreContext:
    import contextlib

    @contextlib.asynccontextmanager
    async def factory(tag: str | None, *, reuse: bool = False,
                      **limits: Any) -> AsyncIterator[Any]:
        async with docker_sandbox(image, SandboxLimits(**limits), purpose="ojbench-test") as box:
            yield box

    spec = TEST_SPEC.with_overrides(sandbox_image=image)
    return ScoreContext(config=RunConfig(task=spec, model=ModelSpec("openai:test")),
                        sandbox_factory=factory)


def test_a_judge_internal_error_is_an_infrastructure_error_not_a_wrong_answer(
        ojbench_image: str) -> None:
    item = fixture_item("broken_checker", "python")
    attempt = Attempt(item_id=item.id, index=0,
                      output={"response": fenced(SUBMISSIONS[("broken_checker", "python", "echo")][0],
                                                 "python")})
    score = asyncio.run(OJBenchAdapter().score(item, attempt, score_context(ojbench_image)))
    assert score.status == "error" and not score.correct
    assert score.reason.startswith("judge internal error")
    assert score.details["verdict"] == "IE" and score.details["case_verdicts"] == ["IE"]
    assert "broken on purpose" in score.details["cases"][0]["feedback"]


# ---------------------------------------------------------------- end to end

REPLIES = {  # (problem, language) -> the model's reply
    ("loj-1001", "cpp"): fenced(SUBMISSIONS[("loj-1001", "cpp", "fast")][0], "cpp"),
    ("loj-1001", "python"): fenced(SUBMISSIONS[("loj-1001", "python", "slow")][0], "python"),
    ("loj-1002", "cpp"): fenced(SUBMISSIONS[("loj-1002", "cpp", "right")][0], "cpp"),
    ("loj-1002", "python"): fenced(SUBMISSIONS[("loj-1002", "python", "flood")][0], "python"),
    ("pairsum", "cpp"): fenced(SUBMISSIONS[("pairsum", "cpp", "wrong")][0], "cpp"),
    # no fence at all: the whole reply is the program
    ("pairsum", "python"): SUBMISSIONS[("pairsum", "python", "right")][0],
    ("nwerc2023_H", "cpp"): fenced("int main() {}", "cpp"),
    ("nwerc2023_H", "python"): fenced("print(1)", "python"),
}
STATEMENTS = {"loj-1001": "divisible by 3", "loj-1002": "last digit of i",
              "pairsum": "a + b = n", "nwerc2023_H": "the official judge skips"}


def scripted_model() -> Any:
    served: Counter[tuple[str, str]] = Counter()
    lock = threading.Lock()

    def respond(request: dict[str, Any]) -> Reply:
        prompt = last_user_text(request)
        pid = next(p for p, text in STATEMENTS.items() if text in prompt)
        language = "cpp" if "in C++." in prompt else "python"
        with lock:
            served[(pid, language)] += 1
        return Reply(text=REPLIES[(pid, language)], completion_tokens=80)

    return respond


@pytest.mark.slow
def test_k2eval_run_judges_both_languages_end_to_end(ojbench_image: str, fake_openai: Any,
                                                      tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    server = fake_openai(scripted_model())
    rc = k2eval_main(["run", "--task", "ojbench", "--model", "openai:kimi-k2",
                      "--base-url", server.base_url, "--data", str(FIXTURE_DATA),
                      "--out", str(tmp_path), "--run-id", "oj", "--sandboxes", "2",
                      "--option", "time_limit_s=6", "--no-progress"])
    assert rc == 0, capsys.readouterr()
    run = tmp_path / "oj"
    summary = json.loads((run / "summary.json").read_text())
    # cpp: AC, AC, WA, Skip -> 50; python: TLE, OLE, AC, Skip -> 25; headline: their mean
    assert summary["by_language"] == {"cpp": 50.0, "python": 25.0}
    assert summary["score"] == pytest.approx(37.5)
    assert summary["metric_label"] == "Pass@1" and summary["reported_k2"] == "27.1"
    assert summary["n_items"] == 8 and summary["n_errors"] == 0 and summary["n_score_errors"] == 0
    breakdowns = summary["breakdowns"]
    assert breakdowns["dataset"]["NOI"]["score"] == pytest.approx(50.0)
    assert breakdowns["dataset"]["ICPC"]["score"] == pytest.approx(25.0)
    assert breakdowns["difficulty"]["hard"]["score"] == pytest.approx(0.0)
    # python: the slow program passes every scale; the flood (3 cases, OLE from the first)
    # passes only at 1/8, where round(3/8) = 0 cases are counted; the skip passes none
    assert breakdowns["scales"]["python"] == {"1/8": 75.0, "1/4": 50.0, "1/2": 50.0, "1": 25.0}
    assert breakdowns["verdicts"]["cpp"] == {"AC": 2, "Skip": 1, "WA": 1}
    assert breakdowns["verdicts"]["python"] == {"AC": 1, "OLE": 1, "Skip": 1, "TLE": 1}
    scores = {row["item_id"]: row for row in
              map(json.loads, (run / "scores.jsonl").read_text().splitlines())}
    assert scores["loj-1001:python"]["reason"] == "TLE on case 8 of 8"
    assert scores["loj-1001:python"]["details"]["scale_verdicts"] == {
        "1/8": "AC", "1/4": "AC", "1/2": "AC"}
    assert scores["nwerc2023_H:cpp"]["details"]["verdict"] == "Skip"
    assert scores["pairsum:python"]["correct"]
    manifest = json.loads((run / "manifest.json").read_text())
    assert json.dumps({"time_limit_s": 6.0})[1:-1] in json.dumps(manifest)
    requests = server.requests
    assert len(requests) == 8
    assert all(r["max_tokens"] == 8192 and len(r["messages"]) == 1 for r in requests)
