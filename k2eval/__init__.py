"""k2eval: reproduce the Kimi K2 benchmark protocol on any model.

The public Python API is deliberately thin:

    import k2eval
    run = k2eval.evaluate("aime2025", "openai:kimi-k2", base_url="http://localhost:8000/v1",
                          data="aime25.jsonl", k=4)
    print(run.summary.score, run.summary.ci95)
    record = k2eval.load_run(run.path)
"""

from __future__ import annotations

import asyncio
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from k2eval.adapters.base import (
        Adapter,
        Attempt,
        AttemptContext,
        Item,
        Score,
        ScoreContext,
        SolveResult,
    )
    from k2eval.engine.executors import Executor
    from k2eval.engine.runner import Run, rescore_run, resume_run
    from k2eval.errors import K2EvalError, ModelError, UserError
    from k2eval.models.base import ChatModel, Completion, Sampling, ToolCall, Usage
    from k2eval.spec import ModelSpec, RunConfig, TaskSpec, all_tasks, load_task
    from k2eval.store.rundir import RunRecord, load_run
    from k2eval.store.runlog import RunManifest, RunSummary

_HOMES = {
    "k2eval.adapters.base": ("Adapter", "Attempt", "AttemptContext", "Item", "Score",
                             "ScoreContext", "SolveResult"),
    "k2eval.engine.executors": ("Executor",),
    "k2eval.engine.runner": ("Run", "rescore_run", "resume_run"),
    "k2eval.errors": ("K2EvalError", "ModelError", "UserError"),
    "k2eval.models.base": ("ChatModel", "Completion", "Sampling", "ToolCall", "Usage"),
    "k2eval.spec": ("ModelSpec", "RunConfig", "TaskSpec", "all_tasks", "load_task"),
    "k2eval.store.rundir": ("RunRecord", "load_run"),
    "k2eval.store.runlog": ("RunManifest", "RunSummary"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "Adapter", "Attempt", "AttemptContext", "ChatModel", "Completion", "Executor", "Item",
    "K2EvalError", "ModelError", "ModelSpec", "Run", "RunConfig", "RunManifest", "RunRecord",
    "RunSummary", "Sampling", "Score", "ScoreContext", "SolveResult", "TaskSpec", "ToolCall",
    "Usage", "UserError", "all_tasks", "evaluate", "load_run", "load_task", "rescore_run",
    "resume_run",
]


def __getattr__(name: str) -> Any:
    """The public names load on first use, so that `k2eval --help` imports none of them."""
    module = _HOME_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'k2eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__version__ = "0.1.0"


def evaluate(task: str, model: str, *, out: str | Path = "runs", run_id: str | None = None,
             progress: bool = False, executor: str | Executor = "local",
             ray_address: str | None = None,
             ray_workers: int | None = None, **overrides: Any) -> Run:
    """Run `task` on `model` (`openai:<name>` or `reference:<dir>`) and return the finished run.

    Overrides are those of `k2eval run`: data, k, limit, concurrency, max_tokens, temperature,
    top_p, seed, base_url, api_key_env, user_model, judge_model, sandboxes, options, and the
    model's request options reasoning_format, reasoning_passback, reasoning_effort, extra_body.
    `executor="ray"` runs the attempts on a Ray cluster (`ray_address`, default $RAY_ADDRESS
    or "auto"), as `k2eval run --executor ray`; an `Executor` instance is used as given.
    """
    from k2eval.engine.config import build_run_config
    from k2eval.engine.executors import make_executor
    from k2eval.engine.runner import run_async

    config = build_run_config(task, model, **overrides)
    chosen = make_executor(executor, address=ray_address, workers=ray_workers) \
        if isinstance(executor, str) else executor
    return asyncio.run(run_async(config, Path(out), run_id, progress=progress, executor=chosen))
