"""Hand-made run directories in the engine's format (written with its own writer and summary)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from k2eval.adapters.base import Adapter, Attempt, Item, Score
from k2eval.engine.runner import summarize
from k2eval.spec import ModelSpec, RunConfig, TaskSpec
from k2eval.store.rundir import RunDir
from k2eval.store.runlog import DatasetRecord, ModelRecord, RunManifest

REPORTED = {"Kimi-K2-Instruct": "49.5", "Qwen3-235B-A22B (non-thinking)": "24.7*"}


def task_spec(name: str = "mathtask", *, k: int = 1, metric: str = "avg@k",
              group: str = "Math & STEM", benchmark: str = "Math Task",
              label: str | None = None, reported: dict[str, str] | None = None,
              members: tuple[str, ...] = ()) -> TaskSpec:
    return TaskSpec.from_dict({
        "name": name, "adapter": "aime", "benchmark": benchmark, "group": group, "metric": metric,
        "k": k, "max_output_tokens": 512, "temperature": 0.6, "members": list(members),
        "reported": {"metric_label": label if label is not None else f"Avg@{k}",
                     "values": REPORTED if reported is None else reported},
    })


class _MetaAdapter(Adapter):
    """Only what `summarize` needs (the default breakdowns by item meta)."""

    name = "meta"

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        raise NotImplementedError

    async def solve(self, item: Item, ctx: Any) -> Any:
        raise NotImplementedError

    async def score(self, item: Item, attempt: Attempt, ctx: Any) -> Score:
        raise NotImplementedError


def write_run(root: Path, spec: TaskSpec, model: str, outcomes: dict[str, list[float]], *,
              run_id: str | None = None, meta: dict[str, dict[str, Any]] | None = None,
              texts: dict[str, str] | None = None, errors: set[tuple[str, int]] = frozenset(),
              limit: int | None = None, details: dict[str, dict[str, Any]] | None = None,
              messages: dict[str, list[dict[str, Any]]] | None = None,
              adapter: Adapter | None = None) -> Path:
    """A finished run: one attempt per value in `outcomes[item]` (1.0 right, 0.0 wrong)."""
    config = RunConfig(task=spec, model=ModelSpec(f"openai:{model}"), limit=limit)
    run_id = run_id or f"{spec.name}-{model}"
    manifest = RunManifest(run_id=run_id, config=config.to_dict(),
                           model=ModelRecord(label=f"openai:{model}"), started=time.time(),
                           dataset=DatasetRecord(source="test", fingerprint="f" * 16,
                                                 n_items=len(outcomes)))
    rundir = RunDir.create(root / run_id, manifest)
    items = [Item(item_id, {}, (meta or {}).get(item_id, {})) for item_id in outcomes]
    attempts: dict[tuple[str, int], Attempt] = {}
    scores: dict[tuple[str, int], Score] = {}
    for item_id, values in outcomes.items():
        for index, value in enumerate(values):
            failed = (item_id, index) in errors
            text = (texts or {}).get(item_id, f"The answer is \\boxed{{{int(value)}}}")
            conversation = (messages or {}).get(item_id) or [
                {"role": "user", "content": f"Problem {item_id}"},
                {"role": "assistant", "content": text}]
            attempt = Attempt(item_id, index, status="error" if failed else "ok",
                              messages=conversation,
                              output={"answer": str(int(value))}, started=1.0, ended=2.0,
                              error={"type": "RetryableModelError", "message": "HTTP 500"}
                              if failed else None)
            rundir.append_attempt(attempt)
            attempts[(item_id, index)] = attempt
            if not failed:
                score = Score(item_id, index, value, reason="matches" if value else "differs",
                              details=(details or {}).get(item_id, {}))
                rundir.append_score(score)
                scores[(item_id, index)] = score
    rundir.write_summary(summarize(config, adapter or _MetaAdapter(), items, attempts, scores,
                                   f"openai:{model}"))
    rundir.close()
    return rundir.path
