"""The toolcall-conformance task over real HTTP: an endpoint that plays the reference calls
conforms fully; one that breaks the protocol in hand-placed ways is counted exactly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import k2eval
from k2eval.adapters.base import Item, get_adapter
from k2eval.spec import load_task
from k2eval.testing.fake_openai import Reply, last_user_text


def load(shared_data: Path, **options: int) -> list[Item]:
    spec = load_task("toolcall-conformance").with_overrides(options=options)
    return get_adapter(spec.adapter).load(spec, str(shared_data))


def by_request(items: list[Item]) -> dict[str, Item]:
    table = {last_user_text({"messages": it.data["messages"]}): it for it in items}
    assert len(table) == len(items), "each request must be told apart by its user message"
    return table


def gold(item: Item, **changes: Any) -> Reply:
    calls = [(c["name"], c["arguments"]) for c in item.data["gold_calls"]]
    return Reply(tool_calls=calls, **changes)  # type: ignore[arg-type]


def test_the_fixed_request_set_comes_from_tau2_and_acebench(shared_data: Path) -> None:
    items = load(shared_data)
    sources = {}
    for it in items:
        sources[it.meta["category"]] = sources.get(it.meta["category"], 0) + 1
    assert sum(sources.values()) == 65
    assert sources["tau2-airline"] == sources["tau2-retail"] == 10
    assert sources["tau2-telecom"] == 5  # telecom's tasks have five distinct openings
    assert sources["normal_single_turn_parallel_function"] == 4
    assert all(set(it.data["reference"]) <= {t["function"]["name"] for t in it.data["tools"]}
               for it in items)
    assert [it.id for it in load(shared_data)] == [it.id for it in items]  # the same every run


def test_an_endpoint_playing_the_reference_calls_conforms_fully(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    table = by_request(load(shared_data))
    srv = fake_openai(lambda body: gold(table[last_user_text(body)]))
    run = k2eval.evaluate("toolcall-conformance", "openai:m", base_url=srv.base_url,
                          data=shared_data, out=tmp_path, run_id="gold")
    s = run.summary
    assert s["score"] == 100.0 and s["n_items"] == 65
    # 61 requests with one reference call, four parallel ones with 2 + 2 + 4 + 3
    assert s["toolcalls"] == {"calls": 72, "invalid_json": 0, "schema_violations": 0,
                              "unknown_tool": 0, "finish_mismatch": 0, "truncated": 0}
    assert s["breakdowns"]["conformance"] == {"requests": 65, "tool_call_rate": 100.0,
                                              "schema_accuracy": 100.0, "name_match": 100.0}
    assert all(body["temperature"] == 0.0 and body["tools"] for body in srv.requests)


def test_hand_placed_protocol_faults_are_counted_exactly(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    items = load(shared_data, per_domain=1, per_category=1)
    table = by_request(items)
    assert len(items) == 13

    def respond(body: dict[str, Any]) -> Reply:
        item = table[last_user_text(body)]
        name = item.data["reference"][0]
        script = {
            "tau2-airline": gold(item),                                     # conforming
            "tau2-retail": Reply(tool_calls=[(name, '{"user_id": ')]),      # bad JSON
            "tau2-telecom": Reply(tool_calls=[("teleport", {})]),           # unknown tool
            "normal_atom_bool": Reply(tool_calls=[(name, "[1, 2]")]),       # schema violation
            "normal_atom_enum": gold(item, finish_reason="stop"),           # finish mismatch
            "normal_atom_number": Reply(text="I would call it.",
                                        finish_reason="tool_calls"),        # finish mismatch
            "normal_atom_list": Reply(tool_calls=[(name, '{"kidsAges": ["5"')],
                                      finish_reason="length"),              # cut + bad JSON
            "normal_atom_object_deep": Reply(text="No tool needed."),      # no call
            "normal_atom_object_short": Reply(tool_calls=[                  # one unknown of two
                *[(c["name"], c["arguments"]) for c in item.data["gold_calls"]],
                ("made_up", {})]),
            "normal_single_turn_single_function": gold(item, reasoning="thinking first"),
        }
        return script.get(item.meta["category"], gold(item))

    srv = fake_openai(respond)
    run = k2eval.evaluate("toolcall-conformance", "openai:m", base_url=srv.base_url,
                          data=shared_data, out=tmp_path, run_id="faults",
                          options={"per_domain": 1, "per_category": 1})
    parallel = next(it for it in items
                    if it.meta["category"] == "normal_single_turn_parallel_function")
    assert len(parallel.data["gold_calls"]) == 2
    s = run.summary
    # calls: 1 + 1 + 1 + 1 + 1 + 0 + 1 + 0 + 2 + 1 + 2 (parallel) + 1 + 1
    assert s["toolcalls"] == {"calls": 13, "invalid_json": 2, "schema_violations": 1,
                              "unknown_tool": 2, "finish_mismatch": 2, "truncated": 1}
    # correct: airline, single function, parallel, similar API, preference
    assert s["score"] == pytest.approx(100 * 5 / 13)
    assert s["breakdowns"]["conformance"] == {
        "requests": 13, "tool_call_rate": round(100 * 11 / 13, 2),
        "schema_accuracy": round(100 * 8 / 13, 2), "name_match": round(100 * 9 / 13, 2)}
    attempts = {json.loads(line)["item_id"]: json.loads(line)
                for line in (run.path / "attempts.jsonl").read_text().splitlines()}
    scores = {json.loads(line)["item_id"]: json.loads(line)
              for line in (run.path / "scores.jsonl").read_text().splitlines()}
    retail = next(it.id for it in items if it.meta["category"] == "tau2-retail")
    assert attempts[retail]["toolcalls"]["invalid_json"] == 1
    assert scores[retail]["reason"] == "non-conforming reply: invalid_json=1"
    deep = next(it.id for it in items if it.meta["category"] == "normal_atom_object_deep")
    assert scores[deep]["reason"] == "no tool call"


def test_two_providers_side_by_side_in_report_and_compare(
        fake_openai: Any, shared_data: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import base64
    import gzip
    import re as regex

    from k2eval.cli import main

    items = load(shared_data, per_domain=1, per_category=1)
    table = by_request(items)
    exact = fake_openai(lambda body: gold(table[last_user_text(body)], reasoning="check",
                                          reasoning_tokens=10))
    sloppy = fake_openai(lambda body: Reply(tool_calls=[("made_up", "{oops")]))
    runs = {}
    for name, srv in (("providerA", exact), ("providerB", sloppy)):
        code = main(["run", "--task", "toolcall-conformance", "--model", "openai:k2",
                     "--base-url", srv.base_url, "--data", str(shared_data),
                     "--option", "per_domain=1", "--option", "per_category=1",
                     "--out", str(tmp_path / name), "--run-id", "r", "--no-progress"])
        assert code == 0
        runs[name] = tmp_path / name / "r"
    capsys.readouterr()
    assert main(["report", str(runs["providerA"]), "--format", "md"]) == 0
    report = capsys.readouterr().out
    assert "Reasoning tokens and tool-call conformance" in report
    # provider A: 14 calls, 13 requests x 10 reasoning tokens; no faults
    assert "| toolcall-conformance | openai:k2 | r | 10 | 14 | 0.0 | 0.0 | 0.0 | 0.0 | 0 |" in report
    table_page = tmp_path / "table.html"
    assert main(["report", str(runs["providerB"]), "--format", "html", "-o", str(table_page)]) == 0
    assert regex.search(r"<td>13</td><td>100.0</td><td>0.0</td><td>100.0</td><td>0.0</td>",
                        table_page.read_text())
    page = tmp_path / "compare.html"
    assert main(["compare", str(runs["providerA"]), str(runs["providerB"]), "-o", str(page)]) == 0
    html = page.read_text()
    assert "13 calls · invalid JSON 100.0% · schema 0.0% · unknown 100.0%" in html
    assert "14 calls · invalid JSON 0.0%" in html
    payloads = regex.findall(r'"[\w-]+":\s*"([A-Za-z0-9+/=]{40,})"', html)
    transcripts = [json.loads(gzip.decompress(base64.b64decode(p))) for p in payloads]
    assert any(side["attempts"][0]["messages"][-1].get("reasoning_content") == "check"
               for per_item in transcripts for side in per_item[:1])
