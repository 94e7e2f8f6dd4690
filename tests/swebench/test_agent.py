"""The agentic and agentless solvers end to end: scripted model (real HTTP), real Docker,
the engine's run directory, and `k2eval swebench eval` on the exported predictions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from k2eval.adapters.swebench.agentic import ELIDED
from k2eval.cli import main
from k2eval.testing.fake_openai import Reply

pytestmark = [pytest.mark.docker, pytest.mark.slow]

FIX_OLD = 'if not text:\n        return 0\n    return len(text.split(" "))'
FIX_NEW = "return len(text.split())"

AGENT_SCRIPT: list[tuple[str, dict[str, Any]]] = [
    ("str_replace_editor", {"command": "view", "path": "/testbed/wordstats/core.py",
                            "view_range": [4, 8]}),
    ("bash", {"command": "python -c 'from wordstats import count_words; "
                         "print(count_words(\"hello   world\"))'"}),
    ("str_replace_editor", {"command": "str_replace", "path": "/testbed/wordstats/core.py",
                            "old_str": FIX_OLD, "new_str": FIX_NEW}),
    ("str_replace_editor", {"command": "create", "path": "/testbed/tests/test_mine.py",
                            "file_text": "def test_mine():\n    assert True\n"}),
    ("bash", {"command": "printf '\\000\\001\\002' > /testbed/blob.bin && cd /testbed && "
                         "pytest -q tests 2>&1 | tail -1"}),
    ("submit", {}),
]


def agent_turns(request: dict[str, Any]) -> int:
    return sum(1 for m in request["messages"] if m["role"] == "assistant")


def scripted_agent(request: dict[str, Any]) -> Reply:
    name, args = AGENT_SCRIPT[agent_turns(request)]
    return Reply(text="", tool_calls=[(name, args)], prompt_tokens=100, completion_tokens=20)


def run(task: str, base_url: str, data: Path, out: Path, *extra: str) -> Path:
    code = main(["run", "--task", task, "--model", "openai:fake-model", "--base-url", base_url,
                 "--data", str(data), "--out", str(out), "--run-id", "r", "--no-progress",
                 *extra])
    assert code == 0
    return out / "r"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_agent_fixes_the_bug_and_external_grading_agrees(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    server = fake_openai(scripted_agent)
    rundir = run("swebench-verified", server.base_url, synthetic_data, tmp_path / "runs")
    summary = json.loads((rundir / "summary.json").read_text())
    assert summary["score"] == 100.0 and summary["n_errors"] == 0

    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    output = attempt["output"]
    assert output["exit_status"] == "submitted" and output["steps"] == len(AGENT_SCRIPT)
    assert "+    return len(text.split())" in output["patch"]
    assert "test_mine" not in output["patch"] and "blob.bin" not in output["patch"]
    assert output["excluded_files"] == {"binary": ["blob.bin"], "test": ["tests/test_mine.py"]}
    tool_outputs = [m["content"] for m in attempt["messages"] if m["role"] == "tool"]
    assert tool_outputs[1] == "4"  # the bug reproduced before the fix
    assert "5 passed" in tool_outputs[4]  # the original tests plus the agent's own
    first = server.requests[0]
    assert first["max_tokens"] == 8192
    assert [t["function"]["name"] for t in first["tools"]] == \
        ["bash", "str_replace_editor", "submit"]
    assert "count_words gives wrong results" in first["messages"][1]["content"]

    [prediction] = read_jsonl(rundir / "predictions.jsonl")
    assert prediction == {"instance_id": "k2eval__wordstats-1",
                          "model_name_or_path": "openai:fake-model",
                          "model_patch": output["patch"]}
    capsys.readouterr()
    code = main(["swebench", "eval", "--predictions", str(rundir / "predictions.jsonl"),
                 "--data", str(synthetic_data), "--out", str(tmp_path / "eval"),
                 "--run-id", "x"])
    assert code == 0
    assert "resolved 1/1 (100.0%)" in capsys.readouterr().out
    report = json.loads((tmp_path / "eval" / "x" / "report.json").read_text())
    assert report["resolved_ids"] == ["k2eval__wordstats-1"]
    [run_score] = read_jsonl(rundir / "scores.jsonl")
    [eval_score] = read_jsonl(tmp_path / "eval" / "x" / "scores.jsonl")
    assert run_score["correct"] is eval_score["correct"] is True
    assert run_score["details"]["report"] == eval_score["details"]["report"] | {
        k: v for k, v in run_score["details"]["report"].items() if k == "tests_status"}


def test_a_thinking_agent_keeps_its_reasoning_across_tool_calls(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path) -> None:
    def thinking_agent(request: dict[str, Any]) -> Reply:
        name, args = AGENT_SCRIPT[agent_turns(request)]
        return Reply(text="", tool_calls=[(name, args)], reasoning=f"now {name}",
                     reasoning_form="reasoning", reasoning_tokens=7)

    server = fake_openai(thinking_agent, require_reasoning_back=True)
    rundir = run("swebench-verified", server.base_url, synthetic_data, tmp_path / "runs")
    summary = json.loads((rundir / "summary.json").read_text())
    assert summary["score"] == 100.0 and summary["n_errors"] == 0
    assert summary["usage"]["reasoning_tokens"] == 7 * len(AGENT_SCRIPT)
    assert summary["toolcalls"]["calls"] == len(AGENT_SCRIPT)
    assert summary["toolcalls"]["schema_violations"] == summary["toolcalls"]["invalid_json"] == 0
    last = server.requests[-1]["messages"]
    assert [m.get("reasoning") for m in last if m["role"] == "assistant"] == \
        [f"now {name}" for name, _ in AGENT_SCRIPT[:-1]]


def test_limits_and_silence_autosubmit_what_is_there(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path) -> None:
    def edits_then_loops(request: dict[str, Any]) -> Reply:
        if agent_turns(request) == 0:
            name, args = AGENT_SCRIPT[2]
            return Reply(tool_calls=[(name, args)])
        return Reply(tool_calls=[("bash", {"command": "true"})])

    server = fake_openai(edits_then_loops)
    rundir = run("swebench-verified", server.base_url, synthetic_data, tmp_path / "a",
                 "--max-steps", "3")
    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    assert attempt["output"]["exit_status"] == "autosubmit: step limit reached (3 model calls)"
    assert FIX_NEW in attempt["output"]["patch"]
    assert json.loads((rundir / "summary.json").read_text())["score"] == 100.0

    quiet = fake_openai(lambda request: Reply(text="I think the fix is easy."))
    rundir = run("swebench-verified", quiet.base_url, synthetic_data, tmp_path / "b")
    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    assert attempt["output"]["exit_status"] == "autosubmit: 3 replies without a tool call"
    assert attempt["output"]["patch"] == ""
    [score] = read_jsonl(rundir / "scores.jsonl")
    assert score["reason"] == "empty patch" and score["score"] == 0.0


BROKEN_HUNK_COUNTS = (Path(__file__).parent / "patches" / "agentless_reply.txt").read_text()


def test_agentless_bm25_single_patch_with_retrieval(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path) -> None:
    server = fake_openai(lambda request: Reply(text=BROKEN_HUNK_COUNTS))
    rundir = run("swebench-verified-agentless", server.base_url, synthetic_data, tmp_path,
                 "--option", "localization=bm25")
    [request] = server.requests
    assert request["max_tokens"] == 16384 and not request.get("tools")
    prompt = request["messages"][0]["content"]
    assert "count_words gives wrong results" in prompt
    assert "[start of wordstats/core.py]\n1 \"\"\"Word statistics over plain text.\"\"\"" in prompt
    assert "tests/test_core.py" not in prompt  # test files are not retrieved
    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    assert attempt["output"]["retrieved_files"][0] == "wordstats/core.py"
    assert attempt["output"]["repaired"] is True  # the hunk header counts were wrong
    assert json.loads((rundir / "summary.json").read_text())["score"] == 100.0


AGENTLESS_REPLIES = {
    "<repository_structure>": "The counting lives in the core module.\n```\n"
                              "wordstats/core.py\nwordstats/nonexistent.py\n```",
    "<skeletons>": "```\nwordstats/core.py\nfunction: count_words\n```",
    "line numbers added": "```\nwordstats/core.py\nline: 8\n```",
    "SEARCH/REPLACE": ("The split on a single space keeps empty strings.\n```python\n"
                       "### wordstats/core.py\n<<<<<<< SEARCH\n    if not text:\n"
                       "        return 0\n    return len(text.split(\" \"))\n=======\n"
                       "    return len(text.split())\n>>>>>>> REPLACE\n```\n"),
}


def agentless_step(request: dict[str, Any]) -> Reply:
    prompt = request["messages"][-1]["content"]
    [reply] = [text for marker, text in AGENTLESS_REPLIES.items() if marker in prompt]
    return Reply(text=reply)


def test_agentless_localizes_files_elements_and_lines_then_repairs(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path) -> None:
    server = fake_openai(agentless_step)
    rundir = run("swebench-verified-agentless", server.base_url, synthetic_data, tmp_path)
    files, elements, edits, repair = (r["messages"][0]["content"] for r in server.requests)
    assert all(r["max_tokens"] == 16384 and not r.get("tools") for r in server.requests)
    assert [r["temperature"] for r in server.requests] == [0.0, 0.0, 0.0, 0.6]
    # 1: the repository structure, test files left out
    assert "wordstats/\n    __init__.py\n    core.py" in files and "test_core" not in files
    # 2: skeletons, bodies elided
    assert "def count_words(text):\n    ...\n" in elements and "split(" not in elements
    # 3: the named function's code, line-numbered
    assert '8     return len(text.split(" "))' in edits and "def longest_word" not in edits
    # 4: a window around line 8, without line numbers
    assert '### wordstats/core.py\n"""Word statistics' in repair
    assert '    return len(text.split(" "))' in repair
    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    output = attempt["output"]
    # the model's ranking combined with retrieval's (a path not in the repository dropped)
    assert output["localization"]["files"] == ["wordstats/core.py", "wordstats/__init__.py"]
    assert output["localization"]["model_files"] == ["wordstats/core.py"]
    assert output["localization"]["elements"] == {"wordstats/core.py": ["function: count_words"]}
    assert output["localization"]["edit_locations"] == {"wordstats/core.py": ["line: 8"]}
    assert output["edit_format"] == "search_replace" and output["applies"] is True
    assert output["patch"].startswith("diff --git a/wordstats/core.py b/wordstats/core.py\n")
    assert len(attempt["messages"]) == 8  # four prompts and four replies
    assert json.loads((rundir / "summary.json").read_text())["score"] == 100.0


def test_long_conversations_elide_old_outputs_to_fit_the_window(
        fake_openai: Any, synthetic_data: Path, tmp_path: Path) -> None:
    def chatty(request: dict[str, Any]) -> Reply:
        turn = agent_turns(request)
        if turn == 8:
            return Reply(tool_calls=[("submit", {})])
        return Reply(tool_calls=[("bash", {"command": f"printf '{turn}%.0s' $(seq 15000)"})])

    server = fake_openai(chatty)
    rundir = run("swebench-verified", server.base_url, synthetic_data, tmp_path, "--max-tokens",
                 "1000", "--option", "context_window_tokens=30000")
    [attempt] = read_jsonl(rundir / "attempts.jsonl")
    assert attempt["output"]["exit_status"] == "submitted"
    stored = [m["content"] for m in attempt["messages"] if m["role"] == "tool"]
    assert [len(c) for c in stored[:8]] == [15000] * 8  # the stored trajectory is complete
    last = [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]
    assert last[0] == ELIDED and last[-5:] == stored[3:8]
    assert len(json.dumps(server.requests[-1]["messages"])) // 4 <= 30000 - 1000 - 1024
