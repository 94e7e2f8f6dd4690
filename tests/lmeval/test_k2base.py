"""The K2-Base protocol specs: lm-eval tasks with the Kimi K2 report's shots and numbers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from k2eval.lmeval.adapter import task_manager
from k2eval.spec import all_tasks

REPORTED = Path(__file__).resolve().parents[2] / ".." / "shared" / "reference" / "k2_base_reported.csv"
MODELS = ("Kimi-K2-Base", "DeepSeek-V3-Base", "Qwen2.5-72B", "Llama 4 Maverick")


def base_specs() -> dict[str, object]:
    return {s.benchmark: s for s in all_tasks().values() if s.name.startswith("k2base-")}


def reported_rows() -> list[dict[str, str]]:
    with REPORTED.open() as fh:
        return list(csv.DictReader(fh))


NOT_WRAPPED = {"SimpleQA", "SuperGPQA", "LiveCodeBench v6", "EvalPlus", "CSimpleQA"}
"""No lm-eval task, or one that runs model code outside the sandboxes (README, K2-Base protocol)."""


def test_the_benchmarks_left_unwrapped_are_the_documented_ones() -> None:
    assert {r["benchmark"] for r in reported_rows()} - set(base_specs()) == NOT_WRAPPED


@pytest.mark.parametrize("row", [r for r in reported_rows() if r["benchmark"] not in NOT_WRAPPED],
                         ids=lambda r: r["benchmark"])
def test_each_wrapped_benchmark_has_the_reported_shots_and_numbers(row: dict[str, str]) -> None:
    spec = base_specs()[row["benchmark"]]
    assert spec.adapter == "lmeval"  # type: ignore[attr-defined]
    assert spec.option("num_fewshot") == int(row["shots"])  # type: ignore[attr-defined]
    assert spec.reported.metric_label == row["metric"]  # type: ignore[attr-defined]
    assert {m: spec.reported.get(m) for m in MODELS} == {m: row[m] for m in MODELS}  # type: ignore[attr-defined]
    assert spec.reported.k2 == row["Kimi-K2-Base"]  # type: ignore[attr-defined]
    assert "," in spec.option("metric")  # type: ignore[attr-defined]
    assert spec.option("api") == "completions"  # type: ignore[attr-defined]  (base models: raw prompts)


def test_every_wrapped_task_exists_in_lm_eval() -> None:
    index = task_manager(None)
    known = {*index.all_tasks, *index.all_groups, *index.all_tags}
    specs = base_specs()
    assert len(specs) == 8
    missing = {b: s.option("lm_eval_task") for b, s in specs.items()  # type: ignore[attr-defined]
               if s.option("lm_eval_task") not in known}  # type: ignore[attr-defined]
    assert not missing
