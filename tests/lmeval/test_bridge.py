"""Both directions of the lm-eval bridge on the toy tasks: lm-eval running k2eval's models,
and k2eval running lm-eval's tasks, with the same metrics either way."""

from __future__ import annotations

import base64
import gzip
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from lm_eval import simple_evaluate
from lm_eval.tasks import TaskManager

import k2eval
from k2eval.errors import ConfigError
from k2eval.lmeval.model import K2EvalLM
from k2eval.report.compare import build_comparison, render_compare_page
from k2eval.spec import load_task
from k2eval.testing.fake_openai import Reply, last_user_text


def lm_eval_results(lm: K2EvalLM, task: str, tasks_dir: Path) -> dict[str, Any]:
    out = simple_evaluate(model=lm, tasks=[task], task_manager=TaskManager(include_path=str(tasks_dir), include_defaults=False))
    assert out is not None
    return out["results"]


def metrics_of(entry: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in entry.items() if "," in k and isinstance(v, float)}


def adder(body: dict[str, Any]) -> Reply:
    """Answers the last 'What is A plus B?' of the prompt; wrong beyond ten, then rambles on."""
    a, b = map(int, re.findall(r"What is (\d+) plus (\d+)\?", last_user_text(body))[-1])
    answer = a + b if a + b <= 10 else a + b + 1
    return Reply(text=f" {answer}\nQ: What is next?")


def test_reference_run_directory_reports_what_lm_eval_reports(tiny: Path, toy_tasks: Path, tmp_path: Path) -> None:
    run = k2eval.evaluate("lm-eval:k2eval_toy", f"reference:{tiny}", data=str(toy_tasks), out=tmp_path)
    lm = K2EvalLM(model=f"reference:{tiny}")
    theirs = lm_eval_results(lm, "k2eval_toy", toy_tasks)
    lm.close()
    ours = run.summary["lm_eval"]["results"]
    assert set(ours) == set(theirs) == {"k2eval_toy", "k2eval_toy_mc", "k2eval_toy_mc_zeroshot"}
    for name, entry in theirs.items():
        assert metrics_of(ours[name]) == pytest.approx(metrics_of(entry), abs=1e-12), name
    assert run.summary["score"] == pytest.approx(100 * theirs["k2eval_toy"]["acc,none"], abs=1e-4)
    assert run.summary["stderr"] == pytest.approx(100 * theirs["k2eval_toy"]["acc_stderr,none"], abs=1e-4)
    assert run.summary["complete"] and run.summary["n_items"] == 12

    manifest = json.loads((run.path / "manifest.json").read_text())
    conditions = manifest["conditions"]
    assert conditions["lm_eval_version"] and conditions["fewshot_seed"] == 1234
    assert conditions["tasks"]["k2eval_toy_mc"]["num_fewshot"] == 2
    assert re.fullmatch(r"[0-9a-f]{16}", conditions["tasks"]["k2eval_toy_mc"]["config_hash"])
    attempts = [json.loads(line) for line in (run.path / "attempts.jsonl").read_text().splitlines()]
    assert len(attempts) == 12
    first = next(a for a in attempts if a["item_id"] == "k2eval_toy_mc_zeroshot/0")
    assert first["messages"][0]["content"] == "Question: Which animal barks?\nAnswer:"
    assert first["messages"][1]["content"] in (" dog", " fish", " snake", " bird")
    assert len(first["output"]["responses"]) == 4


def test_perplexity_task_agrees_on_the_reference_model(tiny: Path, toy_tasks: Path, tmp_path: Path) -> None:
    """Rolling log-likelihoods; the headline is a perplexity, reported raw (not as percent)."""
    run = k2eval.evaluate("lm-eval:k2eval_toy_text", f"reference:{tiny}", data=str(toy_tasks), out=tmp_path)
    lm = K2EvalLM(model=f"reference:{tiny}")
    theirs = lm_eval_results(lm, "k2eval_toy_text", toy_tasks)["k2eval_toy_text"]
    lm.close()
    ours = run.summary["lm_eval"]["results"]["k2eval_toy_text"]
    assert metrics_of(ours) == pytest.approx(metrics_of(theirs), rel=1e-9)
    assert run.summary["score_unit"] == "raw"
    assert run.summary["score"] == pytest.approx(theirs["word_perplexity,none"], rel=1e-6)
    assert run.summary["score"] > 1


def test_generation_task_agrees_on_the_reference_model(tiny: Path, toy_tasks: Path, tmp_path: Path) -> None:
    run = k2eval.evaluate("lm-eval:k2eval_toy_gen", f"reference:{tiny}", data=str(toy_tasks), out=tmp_path)
    lm = K2EvalLM(model=f"reference:{tiny}")
    theirs = lm_eval_results(lm, "k2eval_toy_gen", toy_tasks)["k2eval_toy_gen"]
    lm.close()
    assert metrics_of(run.summary["lm_eval"]["results"]["k2eval_toy_gen"]) == pytest.approx(metrics_of(theirs))
    scores = [json.loads(line) for line in (run.path / "scores.jsonl").read_text().splitlines()]
    assert all("exact_match,strict-match" in s["details"]["metrics"] for s in scores)


def test_generation_on_an_endpoint_agrees_and_cuts_at_stop_strings(fake_openai: Callable[..., Any],
                                                                   toy_tasks: Path, tmp_path: Path) -> None:
    server = fake_openai(adder)
    run = k2eval.evaluate("lm-eval:k2eval_toy_gen", "openai:toy", base_url=server.base_url,
                          data=str(toy_tasks), out=tmp_path)
    assert run.summary["score"] == pytest.approx(60.0)  # 2+2, 5+3, 6+3 right; 10+10, 7+5 wrong
    assert run.summary["usage"]["calls"] == 5
    lm = K2EvalLM(model="openai:toy", base_url=server.base_url)
    theirs = lm_eval_results(lm, "k2eval_toy_gen", toy_tasks)["k2eval_toy_gen"]
    lm.close()
    assert theirs["exact_match,strict-match"] == pytest.approx(0.6)
    assert metrics_of(run.summary["lm_eval"]["results"]["k2eval_toy_gen"]) == pytest.approx(metrics_of(theirs))
    attempt = json.loads((run.path / "attempts.jsonl").read_text().splitlines()[0])
    assert attempt["messages"][1]["content"] == " 4"  # cut at "\n"
    sent = server.requests[0]
    assert sent["stop"] == ["\n", "Q:"] and sent["max_tokens"] == 6


def test_loglikelihood_on_an_endpoint_without_prompt_logprobs_is_a_clear_error(
        fake_openai: Callable[..., Any], toy_tasks: Path, tmp_path: Path) -> None:
    server = fake_openai(adder)
    with pytest.raises(ConfigError, match="does not return prompt log-probabilities"):
        k2eval.evaluate("lm-eval:k2eval_toy_mc", "openai:toy", base_url=server.base_url,
                        data=str(toy_tasks), out=tmp_path)
    lm = K2EvalLM(model="openai:toy", base_url=server.base_url)
    with pytest.raises(ConfigError, match="does not return prompt log-probabilities"):
        lm_eval_results(lm, "k2eval_toy_mc", toy_tasks)
    lm.close()


def test_a_changed_checkpoint_gets_a_paired_comparison_page(make_checkpoint: Callable[[int], Path],
                                                            toy_tasks: Path, tmp_path: Path) -> None:
    runs = [k2eval.evaluate("lm-eval:k2eval_toy_mc", f"reference:{make_checkpoint(seed)}",
                            data=str(toy_tasks), out=tmp_path / f"seed{seed}") for seed in (0, 1)]
    comparison = build_comparison([r.path for r in runs])
    [task] = comparison.tasks
    [test] = task.tests
    assert test.n == 6 and test.method == "mcnemar-exact"
    assert test.mean_a == pytest.approx(runs[0].summary["score"] / 100, abs=1e-6)
    assert test.mean_b == pytest.approx(runs[1].summary["score"] / 100, abs=1e-6)
    page = render_compare_page(comparison)
    assert "mcnemar-exact" in page
    data = json.loads(re.search(r'<script type="application/json" id="data-t0">(.*?)</script>', page, re.S)[1])
    per_run = json.loads(gzip.decompress(base64.b64decode(data["items"]["k2eval_toy_mc/5"])))
    prompts = [run["attempts"][0]["messages"][0]["content"] for run in per_run]
    assert len(prompts) == 2 and all(p.endswith("Question: What is the opposite of hot?\nAnswer:") for p in prompts)


@pytest.mark.parametrize(("name", "task"), [("lm-eval:gsm8k", "gsm8k"), ("lm-eval:mmlu_stem", "mmlu_stem")])
def test_lm_eval_task_names_resolve_to_lm_eval_specs(name: str, task: str) -> None:
    spec = load_task(name)
    assert spec.adapter == "lmeval" and spec.option("lm_eval_task") == task and spec.name == name


def test_an_unknown_lm_eval_task_is_a_clear_error(tiny: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lm-eval has no task or group 'k2eval_nonesuch'.*--data DIR"):
        k2eval.evaluate("lm-eval:k2eval_nonesuch", f"reference:{tiny}", out=tmp_path)
    with pytest.raises(ConfigError, match="names no task"):
        load_task("lm-eval:")


def test_tasks_that_run_model_code_on_the_host_need_explicit_consent(fake_openai: Callable[..., Any],
                                                                     toy_tasks: Path, tmp_path: Path) -> None:
    server = fake_openai(adder)
    with pytest.raises(ConfigError, match="confirm_run_unsafe_code=true"):
        k2eval.evaluate("lm-eval:k2eval_toy_unsafe", "openai:toy", base_url=server.base_url,
                        data=str(toy_tasks), out=tmp_path)
    run = k2eval.evaluate("lm-eval:k2eval_toy_unsafe", "openai:toy", base_url=server.base_url,
                          data=str(toy_tasks), out=tmp_path, options={"confirm_run_unsafe_code": True})
    assert run.summary["score"] == pytest.approx(60.0)


def test_lm_eval_command_line_runs_the_k2eval_model_type(fake_openai: Callable[..., Any], toy_tasks: Path,
                                                         tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`python -m k2eval.lmeval run --model k2eval ...` (lm-eval's own command line)."""
    from k2eval.lmeval.__main__ import main

    server = fake_openai(adder)
    monkeypatch.setattr(sys, "argv", [
        "lm_eval", "run", "--model", "k2eval", "--model_args", f"model=openai:toy,base_url={server.base_url}",
        "--tasks", "k2eval_toy_gen", "--include_path", str(toy_tasks), "--output_path", str(tmp_path)])
    main()
    [written] = tmp_path.rglob("results_*.json")
    results = json.loads(written.read_text())["results"]
    assert results["k2eval_toy_gen"]["exact_match,strict-match"] == pytest.approx(0.6)


def test_concurrent_documents_share_the_reference_models_batches(tiny: Path, toy_tasks: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from k2eval.models.reference import scoring

    sizes: list[int] = []
    real = scoring.score_continuations

    def recording(model: Any, requests: list[Any], **kwargs: Any) -> Any:
        sizes.append(len(requests))
        return real(model, requests, **kwargs)

    monkeypatch.setattr(scoring, "score_continuations", recording)
    k2eval.evaluate("lm-eval:k2eval_toy_mc", f"reference:{tiny}", data=str(toy_tasks), out=tmp_path)
    assert sum(sizes) == 24 and max(sizes) > 4  # six documents of four choices, not one at a time


def test_nightly_tracks_an_lm_eval_task(fake_openai: Callable[..., Any], toy_tasks: Path, tmp_path: Path) -> None:
    from k2eval.report.nightly import run_nightly
    from k2eval.store.history import open_history

    behaviour = {"respond": adder}
    server = fake_openai(lambda body: behaviour["respond"](body))
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"- task: lm-eval:k2eval_toy_gen\n  model: openai:toy\n"
                     f"  base_url: {server.base_url}\n  data: {toy_tasks}\n")
    store = open_history(f"sqlite:///{tmp_path / 'history.db'}")
    first = run_nightly(suite, store, tmp_path / "nightly", log=lambda line: None)
    behaviour["respond"] = lambda body: Reply(text=" 0")
    second = run_nightly(suite, store, tmp_path / "nightly", log=lambda line: None)
    assert [v.status for v in first.verdicts] == ["no-baseline"]
    [verdict] = second.verdicts
    assert verdict.test is not None and verdict.test.n == 5
    assert verdict.test.delta == pytest.approx(-0.6) and len(verdict.worse_items) == 3
    assert (second.night_dir / "regression.md").is_file()


def test_k2eval_sampling_flags_are_refused_and_gen_kwargs_override(fake_openai: Callable[..., Any],
                                                                   toy_tasks: Path, tmp_path: Path) -> None:
    server = fake_openai(adder)
    common = {"base_url": server.base_url, "data": str(toy_tasks), "out": tmp_path}
    with pytest.raises(ConfigError, match="--k, --temperature, --top-p and --max-tokens do not apply"):
        k2eval.evaluate("lm-eval:k2eval_toy_gen", "openai:toy", k=4, **common)
    k2eval.evaluate("lm-eval:k2eval_toy_gen", "openai:toy", options={"gen_kwargs": {"max_gen_toks": 3}}, **common)
    assert {r["max_tokens"] for r in server.requests} == {3}


def test_rescoring_an_lm_eval_run_regrades_the_stored_answers_alike(fake_openai: Callable[..., Any],
                                                                   toy_tasks: Path, tmp_path: Path) -> None:
    server = fake_openai(adder)
    run = k2eval.evaluate("lm-eval:k2eval_toy_gen", "openai:toy", base_url=server.base_url,
                          data=str(toy_tasks), out=tmp_path)
    calls = len(server.requests)
    again = k2eval.rescore_run(run.path, progress=False)
    assert len(server.requests) == calls  # no model calls
    assert again.summary["score"] == run.summary["score"] == pytest.approx(60.0)
    assert again.summary["lm_eval"]["results"] == run.summary["lm_eval"]["results"]
