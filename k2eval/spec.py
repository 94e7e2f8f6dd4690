"""Frozen task specs (from tasks/*.yaml) and run configs (spec + model + CLI overrides)."""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from k2eval.errors import ConfigError
from k2eval.records import Sampling

METRICS = ("avg@k", "pass@k", "pass^k", "acc")


def resource_dir(name: str) -> Path:
    """A shipped resource folder (tasks, sandboxes, reports): in the wheel or the checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "_resources" / name, here.parent / name):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"k2eval resource folder {name!r} is missing from the installation")


@dataclass(frozen=True)
class DatasetSpec:
    hub: str | None = None
    """Hugging Face dataset id."""
    configs: tuple[str, ...] = ()
    split: str = "test"
    files: tuple[str, ...] = ()
    """Files inside the hub repo to load directly (when the dataset script is unusable)."""
    gated: bool = False
    local_hint: str | None = None
    """What a user passes as --data, shown in errors and `k2eval tasks`."""

    def describe(self) -> str:
        if not self.hub:
            return self.local_hint or "--data PATH"
        cfg = f" [{', '.join(self.configs)}]" if self.configs else ""
        return f"hf:{self.hub}{cfg}"


@dataclass(frozen=True)
class Reported:
    """Reported numbers for the comparison table, as strings ('49.5', '72.7*', '')."""

    metric_label: str = ""
    values: tuple[tuple[str, str], ...] = ()

    def get(self, model: str) -> str | None:
        return dict(self.values).get(model)

    @property
    def k2(self) -> str | None:
        return self.get("Kimi-K2-Instruct") or self.get("Kimi-K2-Base")


@dataclass(frozen=True)
class Limits:
    max_steps: int | None = None
    max_total_tokens: int | None = None
    max_tool_errors: int | None = None
    timeout_s: float | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    adapter: str
    benchmark: str
    group: str
    metric: str
    k: int
    max_output_tokens: int
    temperature: float
    top_p: float | None = None
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    limits: Limits = field(default_factory=Limits)
    sandbox_image: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    """Adapter-specific settings (dates, tool format, ...) as sorted (key, value) pairs."""
    members: tuple[str, ...] = ()
    """For a group task (e.g. `tau2`): the member tasks whose results it aggregates."""
    reported: Reported = field(default_factory=Reported)
    description: str = ""

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)

    def sampling(self, seed: int | None = None) -> Sampling:
        return Sampling(max_tokens=self.max_output_tokens, temperature=self.temperature,
                        top_p=self.top_p, seed=seed)

    def with_overrides(self, **changes: Any) -> TaskSpec:
        """A copy with protocol fields replaced; `options` entries are merged, not replaced."""
        opts = dict(self.options)
        opts.update(changes.pop("options", {}) or {})
        limits = self.limits
        for key in ("max_steps", "max_total_tokens", "max_tool_errors", "timeout_s"):
            if changes.get(key) is not None:
                limits = dataclasses.replace(limits, **{key: changes[key]})
            changes.pop(key, None)
        changes = {k: v for k, v in changes.items() if v is not None}
        spec = dataclasses.replace(self, options=tuple(sorted(opts.items())), limits=limits,
                                   **changes)
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.metric not in METRICS:
            raise ConfigError(f"task {self.name}: metric {self.metric!r} is not one of {METRICS}")
        if self.k < 1:
            raise ConfigError(f"task {self.name}: k must be >= 1 (got {self.k})")
        if self.max_output_tokens < 1:
            raise ConfigError(f"task {self.name}: max output tokens must be >= 1")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"task {self.name}: temperature must be in [0, 2]")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["options"] = dict(self.options)
        d["reported"] = {"metric_label": self.reported.metric_label,
                         "values": dict(self.reported.values)}
        return d

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: str = "<dict>") -> TaskSpec:
        try:
            data = dict(raw)
            ds = dict(data.pop("dataset", None) or {})
            for key in ("configs", "files"):
                ds[key] = tuple(ds.get(key) or ())
            rep = data.pop("reported", None) or {}
            values = rep.get("values") or {}
            spec = cls(
                dataset=DatasetSpec(**ds),
                limits=Limits(**(data.pop("limits", None) or {})),
                options=tuple(sorted((data.pop("options", None) or {}).items())),
                members=tuple(data.pop("members", None) or ()),
                reported=Reported(str(rep.get("metric_label", "")),
                                  tuple((str(k), str(v)) for k, v in values.items())),
                **data,
            )
        except TypeError as exc:
            raise ConfigError(f"{source}: invalid task spec: {exc}") from None
        spec.validate()
        return spec


_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (far faster), else the pure-Python one."""


@cache
def _load_all_tasks(root: str) -> dict[str, TaskSpec]:
    tasks: dict[str, TaskSpec] = {}
    for path in sorted(Path(root).glob("*.yaml")):
        with path.open() as fh:
            raw = yaml.load(fh, Loader=_YAML_LOADER)
        spec = TaskSpec.from_dict(raw, source=str(path))
        tasks[spec.name] = spec
    return tasks


def all_tasks() -> dict[str, TaskSpec]:
    return _load_all_tasks(str(resource_dir("tasks")))


LM_EVAL_PREFIX = "lm-eval:"


def lm_eval_task(task: str) -> TaskSpec:
    """`lm-eval:<task-or-group>`: an lm-eval task run with its own settings (k2eval/lmeval)."""
    if not task:
        raise ConfigError("lm-eval: names no task; use lm-eval:<task-or-group>, e.g. lm-eval:gsm8k")
    return TaskSpec(name=LM_EVAL_PREFIX + task, adapter="lmeval", benchmark=task, group="lm-eval",
                    metric="acc", k=1, max_output_tokens=256, temperature=0.0,
                    dataset=DatasetSpec(local_hint="lm-eval's datasets; --data DIR adds task YAMLs"),
                    options=(("lm_eval_task", task),),
                    description=f"lm-eval task {task} with its own prompts, filters and metrics")


def load_task(name: str) -> TaskSpec:
    if name.startswith(LM_EVAL_PREFIX):
        return lm_eval_task(name[len(LM_EVAL_PREFIX):])
    tasks = all_tasks()
    if name in tasks:
        return tasks[name]
    close = difflib.get_close_matches(name, tasks, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(sorted(tasks))}")


REDACTED = "[REDACTED]"
_URL_CREDENTIALS = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^/\s:@\"']*:)[^/\s\"']*@")


def split_url_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`http://user:pass@host/v1` -> (`http://host/v1`, user, pass); (url, None, None) without."""
    scheme, sep, rest = url.partition("://")
    netloc, slash, path = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if not sep or not at:
        return url, None, None
    user, _, password = userinfo.partition(":")
    return f"{scheme}://{host}{slash}{path}", unquote(user), unquote(password)


def redact_url_credentials(text: str) -> str:
    """Every `scheme://user:password@` in `text` with the password replaced by [REDACTED]."""
    return _URL_CREDENTIALS.sub(rf"\1{REDACTED}@", text)


RESERVED_BODY_KEYS = frozenset({"model", "messages", "tools", "max_tokens", "temperature",
                                "top_p", "seed", "stop", "stream"})
"""Request keys `--extra-body` may not override: the task's protocol owns them."""


@dataclass(frozen=True)
class ModelSpec:
    """How to reach a model. Holds the *name* of the key's environment variable, never the key.

    A base URL may carry credentials (`http://user:pass@host/v1`); they are sent as HTTP basic
    auth and redacted from everything k2eval writes, so `resume` asks for the URL again."""

    spec: str
    """`openai:<model-name>` or `reference:<checkpoint-dir>`."""
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    request_timeout_s: float = 600.0
    """Bound on one whole model call (connect, wait, body), not on each read."""
    max_tries: int = 6
    http_client: str = "aiohttp"
    """`aiohttp` (direct, the default) or `sdk` (the openai SDK, for endpoints that need it)."""
    max_retry_after_s: float = 60.0
    """Longest wait a server's Retry-After header can impose before the next try."""
    reasoning_format: str = "auto"
    """Where the endpoint puts reasoning: auto, reasoning_content, reasoning, think-tags or
    none (`k2eval.models.reasoning`)."""
    reasoning_passback: str = "auto"
    """Whether earlier reasoning is sent back in assistant turns: auto, keep or drop."""
    reasoning_effort: str | None = None
    """Sent as the request's `reasoning_effort` (e.g. low, medium, high) when set."""
    extra_body: dict[str, Any] | None = None
    """JSON object merged into every request body (recorded in the manifest: no secrets)."""

    def __post_init__(self) -> None:
        for flag, value in (("--request-timeout", self.request_timeout_s),
                            ("--max-retry-after", self.max_retry_after_s)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0 or (
                    flag == "--request-timeout" and value == 0):
                raise ConfigError(f"{flag} must be a positive number of seconds (got {value})")
        if not isinstance(self.max_tries, int) or self.max_tries < 1:
            raise ConfigError(f"--max-tries must be >= 1 (got {self.max_tries})")
        if self.http_client not in ("sdk", "aiohttp"):
            raise ConfigError(f"unknown HTTP client {self.http_client!r}: use sdk or aiohttp")
        from k2eval.models.reasoning import REASONING_FORMATS, REASONING_PASSBACK

        for option, choice, allowed in (("--reasoning-format", self.reasoning_format,
                                         REASONING_FORMATS),
                                        ("--reasoning-passback", self.reasoning_passback,
                                         REASONING_PASSBACK)):
            if choice not in allowed:
                raise ConfigError(f"{option} {choice!r}: use one of {', '.join(allowed)}")
        if self.extra_body is not None:
            if not isinstance(self.extra_body, dict):
                raise ConfigError("--extra-body must be a JSON object, e.g. "
                                  '\'{"chat_template_kwargs": {"thinking": true}}\'')
            clash = sorted(set(self.extra_body) & RESERVED_BODY_KEYS)
            if clash:
                raise ConfigError(f"--extra-body may not set {', '.join(clash)}: k2eval sets "
                                  "them from the task (use --max-tokens, --temperature, ...)")

    @property
    def scheme(self) -> str:
        return self.spec.split(":", 1)[0] if ":" in self.spec else ""

    @property
    def target(self) -> str:
        return self.spec.split(":", 1)[1] if ":" in self.spec else self.spec

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        return cls(**d)

    def with_base_url(self, url: str, flag: str) -> ModelSpec:
        """This spec with its base URL given again (credentials included), after checking that
        it names the recorded endpoint."""
        if redact_url_credentials(url) != redact_url_credentials(self.base_url or ""):
            raise ConfigError(f"{flag} {redact_url_credentials(url)} is not this run's endpoint "
                              f"({redact_url_credentials(self.base_url or '(default)')})")
        return dataclasses.replace(self, base_url=url)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run; recorded in the manifest and enough to reproduce it."""

    task: TaskSpec
    model: ModelSpec
    data: str | None = None
    limit: int | None = None
    concurrency: int = 32
    seed: int = 0
    user_model: ModelSpec | None = None
    judge_model: ModelSpec | None = None
    sandboxes: int = 4
    item_ids: tuple[str, ...] = ()
    cache: str | None = None
    """The response cache (a SQLite path or a database URL; no password), or None for none."""
    cache_mode: str = "read-write"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task.to_dict(),
            "model": self.model.to_dict(),
            "data": self.data,
            "limit": self.limit,
            "concurrency": self.concurrency,
            "seed": self.seed,
            "user_model": self.user_model.to_dict() if self.user_model else None,
            "judge_model": self.judge_model.to_dict() if self.judge_model else None,
            "sandboxes": self.sandboxes,
            "item_ids": list(self.item_ids),
            "cache": self.cache,
            "cache_mode": self.cache_mode,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunConfig:
        return cls(
            task=TaskSpec.from_dict(d["task"], source="manifest.json"),
            model=ModelSpec.from_dict(d["model"]),
            data=d.get("data"),
            limit=d.get("limit"),
            concurrency=int(d.get("concurrency", 32)),
            seed=int(d.get("seed", 0)),
            user_model=ModelSpec.from_dict(d["user_model"]) if d.get("user_model") else None,
            judge_model=ModelSpec.from_dict(d["judge_model"]) if d.get("judge_model") else None,
            sandboxes=int(d.get("sandboxes", 4)),
            item_ids=tuple(d.get("item_ids") or ()),
            cache=d.get("cache"),
            cache_mode=d.get("cache_mode") or "read-write",
        )

    def with_base_urls(self, urls: dict[str, str]) -> RunConfig:
        """The run's base URLs given again by role ("model", "user_model", "judge_model"), for
        `resume` of a run whose URLs carried credentials (they are never recorded)."""
        changes: dict[str, Any] = {}
        for role, url in urls.items():
            spec = getattr(self, role)
            flag = "--base-url" if role == "model" else f"--{role.split('_')[0]}-base-url"
            if spec is None:
                raise ConfigError(f"{flag}: this run has no {role.replace('_', ' ')}")
            changes[role] = spec.with_base_url(url, flag)
        return dataclasses.replace(self, **changes)
