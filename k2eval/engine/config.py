"""Building a `RunConfig` from a task name, a model spec and overrides (CLI or Python API)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from k2eval.errors import UserError
from k2eval.models import parse_model_spec
from k2eval.spec import ModelSpec, RunConfig, TaskSpec, load_task

REASONING_OPTIONS = ("reasoning_format", "reasoning_passback", "reasoning_effort", "extra_body")
_PROTOCOL_FIELDS = {"k": "k", "max_tokens": "max_output_tokens", "temperature": "temperature",
                    "top_p": "top_p", "max_steps": "max_steps",
                    "max_total_tokens": "max_total_tokens", "timeout_s": "timeout_s"}


def model_spec(spec: str | None, *, base_url: str | None = None, api_key_env: str | None = None,
               request_timeout_s: float | None = None, max_tries: int | None = None,
               http_client: str | None = None,
               max_retry_after_s: float | None = None,
               **reasoning: Any) -> ModelSpec | None:
    """`reasoning`: the `REASONING_OPTIONS` of `ModelSpec` (format, passback, effort, extra body)."""
    if not spec:
        return None
    unknown = set(reasoning) - set(REASONING_OPTIONS)
    if unknown:
        raise UserError(f"unknown model option(s): {', '.join(sorted(unknown))}")
    return parse_model_spec(spec, base_url=base_url, api_key_env=api_key_env,
                            request_timeout_s=request_timeout_s, max_tries=max_tries,
                            http_client=http_client, max_retry_after_s=max_retry_after_s,
                            **reasoning)


def build_run_config(task: str | TaskSpec, model: str | ModelSpec, *, data: str | Path | None = None,
                     limit: int | None = None, concurrency: int | None = None,
                     seed: int | None = None, sandboxes: int | None = None,
                     user_model: str | ModelSpec | None = None,
                     judge_model: str | ModelSpec | None = None,
                     item_ids: list[str] | None = None, options: dict[str, Any] | None = None,
                     base_url: str | None = None, api_key_env: str | None = None,
                     request_timeout_s: float | None = None, max_tries: int | None = None,
                     http_client: str | None = None, max_retry_after_s: float | None = None,
                     cache: str | None = None, cache_mode: str | None = None,
                     **protocol: Any) -> RunConfig:
    """Task defaults, then explicit overrides. `protocol` keys: k, max_tokens, temperature,
    top_p, max_steps, max_total_tokens, timeout_s; and the agent model's `REASONING_OPTIONS`.
    `cache`: a response cache path or URL ("default" for the default file), `cache_mode` one of
    `k2eval.store.cache.CACHE_MODES`."""
    spec = load_task(task) if isinstance(task, str) else task
    reasoning = {key: protocol.pop(key) for key in REASONING_OPTIONS if key in protocol}
    unknown = set(protocol) - set(_PROTOCOL_FIELDS)
    if unknown:
        raise UserError(f"unknown override(s): {', '.join(sorted(unknown))}")
    if protocol.get("k") is not None and int(protocol["k"]) < 1:
        raise UserError(f"--k must be >= 1 (got {protocol['k']})")
    if limit is not None and limit < 1:
        raise UserError(f"--limit must be >= 1 (got {limit})")
    if concurrency is not None and concurrency < 1:
        raise UserError(f"--concurrency must be >= 1 (got {concurrency})")
    changes = {_PROTOCOL_FIELDS[k]: v for k, v in protocol.items() if v is not None}
    spec = spec.with_overrides(options=options or {}, **changes)
    agent = model if isinstance(model, ModelSpec) else model_spec(
        model, base_url=base_url, api_key_env=api_key_env,
        request_timeout_s=request_timeout_s, max_tries=max_tries, http_client=http_client,
        max_retry_after_s=max_retry_after_s, **reasoning)
    assert agent is not None
    given = {key: value for key, value in reasoning.items() if value is not None}
    if isinstance(model, ModelSpec) and given:
        agent = dataclasses.replace(agent, **given)
    user = user_model if isinstance(user_model, ModelSpec) or user_model is None else model_spec(user_model)
    judge = judge_model if isinstance(judge_model, ModelSpec) or judge_model is None else model_spec(judge_model)
    data_path = str(Path(data).expanduser().resolve()) if data else None
    if data_path and not Path(data_path).exists():
        raise UserError(f"--data {data}: no such file or directory")
    return RunConfig(task=spec, model=agent, data=data_path, limit=limit,
                     concurrency=concurrency or 32, seed=0 if seed is None else seed,
                     user_model=user, judge_model=judge, sandboxes=sandboxes or 4,
                     item_ids=tuple(item_ids or ()), **_cache_settings(cache, cache_mode))


def _cache_settings(cache: str | None, mode: str | None) -> dict[str, Any]:
    """The run's cache location (password removed: libpq reads it from PGPASSWORD or
    ~/.pgpass, so it never reaches the manifest) and mode."""
    from k2eval.store.cache import CACHE_MODES, default_cache_path

    if mode is not None and mode not in CACHE_MODES:
        raise UserError(f"--cache-mode {mode}: use one of {', '.join(CACHE_MODES)}")
    if cache is None or mode == "off":
        return {"cache": None}
    if "://" in cache and urlsplit(cache).password is not None:
        raise UserError("--cache: put the database password in PGPASSWORD or ~/.pgpass, not in "
                        "the URL (run settings are recorded, and secrets never are)")
    location = str(default_cache_path()) if cache == "default" else cache
    return {"cache": location, "cache_mode": mode or "read-write"}
