"""lm-eval tasks inside k2eval runs: `k2eval run --task lm-eval:<task-or-group>`.

Everything benchmark-specific is lm-eval's own: its `TaskManager` loads the task or group
(`--data DIR` adds DIR to its include path, for local task YAMLs and data), the task objects
render prompts and sample few-shot examples (`build_all_requests`, few-shot seed as in
`simple_evaluate`), and after the model answers they filter (`FilterEnsemble.apply`), grade
(`process_results`) and aggregate, metrics, stderr and group scores alike, through the
evaluator's own aggregation (`_collect_results` + `aggregate_groups`). This module only maps
that onto k2eval's records:

- one item per document (`<task>/<doc_id>`), holding its request group: the rendered
  prompts and request arguments;
- one attempt per item, with the prompt and the model's answer as messages and the raw
  responses (log-likelihoods, generations) as output;
- one score per attempt: the value of the task's primary metric for that document, with
  every metric of every filter in `details`;
- the summary's headline is lm-eval's aggregate of the primary metric (its stderr, and a
  95% CI of ±1.96 stderr); `lm_eval` holds every task's and group's metrics and stderrs.

Choices: k2eval's `--k`, `--temperature`, `--top-p` and `--max-tokens` are refused (lm-eval
tasks carry their own generation settings and repeats; `--option gen_kwargs={...}` overrides
them as lm-eval's `--gen_kwargs` does); `--limit` counts documents across all subtasks in
order. This module reads lm-eval 0.4.x internals (`Task._filters`, the evaluator's
`_collect_results`), hence the `lm-eval<0.5` pin of the `lmeval` extra. The primary metric is the task option `metric` (`name,filter`, e.g.
`exact_match,strict-match`), else the task's first metric under its first filter.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import json
import math
from typing import Any

from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
)
from k2eval.errors import ConfigError
from k2eval.models.base import Message
from k2eval.scoring import Z95
from k2eval.spec import RunConfig, TaskSpec

DEFAULT_FEWSHOT_SEED = 1234
"""lm-eval's default few-shot sampler seed (`simple_evaluate`'s `fewshot_random_seed`)."""

BOOTSTRAP_ITERS = 100_000
"""lm-eval's default bootstrap iterations for metrics without a closed-form stderr."""


@dataclasses.dataclass(frozen=True)
class LmEvalSettings:
    """The task options an lm-eval spec may set."""

    task: str
    num_fewshot: int | None = None
    fewshot_seed: int = DEFAULT_FEWSHOT_SEED
    metric: str | None = None
    """`name,filter` of the headline metric; default: the first metric, first filter."""
    add_bos_token: bool = False
    batch_size: int = 16
    confirm_run_unsafe_code: bool = False
    """lm-eval's own flag for tasks whose grader executes model output on the host."""

    api: str = "chat"
    """How endpoints generate: `chat` completions, or raw `completions` (base models)."""
    gen_kwargs: dict[str, Any] | None = None
    """Overrides of the tasks' generation settings, as lm-eval's `--gen_kwargs`."""

    @classmethod
    def from_spec(cls, spec: TaskSpec) -> LmEvalSettings:
        task = spec.option("lm_eval_task")
        if not task:
            raise ConfigError(f"task {spec.name}: an lm-eval task spec needs option lm_eval_task")
        if spec.k != 1 or spec.temperature != 0.0 or spec.top_p is not None or spec.max_output_tokens != 256:
            raise ConfigError(
                f"task {spec.name}: lm-eval tasks carry their own sampling settings and repeats, so "
                "--k, --temperature, --top-p and --max-tokens do not apply; override generation with "
                "--option 'gen_kwargs={temperature: 0.7, max_gen_toks: 512}'")
        gen_kwargs = spec.option("gen_kwargs")
        if gen_kwargs is not None and not isinstance(gen_kwargs, dict):
            raise ConfigError(f"task {spec.name}: option gen_kwargs must be a mapping, e.g. "
                              "--option 'gen_kwargs={temperature: 0.7}'")
        shots = spec.option("num_fewshot")
        return cls(task=str(task), num_fewshot=None if shots is None else int(shots),
                   fewshot_seed=int(spec.option("fewshot_seed", DEFAULT_FEWSHOT_SEED)),
                   metric=spec.option("metric"),
                   add_bos_token=_flag(spec.option("add_bos_token", False)),
                   batch_size=int(spec.option("batch_size", 16)),
                   confirm_run_unsafe_code=_flag(spec.option("confirm_run_unsafe_code", False)),
                   gen_kwargs=gen_kwargs, api=str(spec.option("api", "chat")))


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def config_hash(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _resps(request_type: str, raw: list[Any]) -> list[Any]:
    """Responses as lm-eval's filters expect them (log-likelihoods are tuples)."""
    return [tuple(r) if request_type == "loglikelihood" else r for r in raw]


# ---------------------------------------------------------------- loading


@functools.cache
def task_manager(include_path: str | None, defaults: bool = True) -> Any:
    """lm-eval's task index (built once per process: it reads every task YAML)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=defaults)


def load_lm_eval_tasks(settings: LmEvalSettings, include_path: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(leaf tasks by name, groups by name), configured as `simple_evaluate` would."""
    manager = None
    if include_path:  # indexing lm-eval's 1,000+ built-in YAMLs takes seconds: look locally first
        local = task_manager(include_path, defaults=False)
        if settings.task in {*local.all_tasks, *local.all_groups, *local.all_tags}:
            manager = local
    manager = manager or task_manager(include_path)
    try:
        loaded = manager.load([settings.task])
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"lm-eval has no task or group {settings.task!r}"
                          f"{'' if include_path else ' (pass --data DIR for local task YAMLs)'}: {exc}") from None
    tasks, groups = loaded["tasks"], loaded.get("groups", {})
    if not tasks:
        raise ConfigError(f"lm-eval task {settings.task!r} resolved to no tasks")
    for name, task in tasks.items():
        if getattr(task, "UNSAFE_CODE", False) and not settings.confirm_run_unsafe_code:
            raise ConfigError(
                f"lm-eval task {name} grades by running model-written code on this host, outside "
                "k2eval's sandboxes; pass --option confirm_run_unsafe_code=true to accept that")
        if settings.gen_kwargs and task.get_config("output_type") == "generate_until":
            task.set_config(key="generation_kwargs", value=dict(settings.gen_kwargs), update=True)
        default = task.get_config("num_fewshot")
        if settings.num_fewshot is not None and default != 0:
            task.set_config(key="num_fewshot", value=settings.num_fewshot)
        elif default is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=settings.fewshot_seed)
    return tasks, groups


# ---------------------------------------------------------------- adapter


class LmEvalAdapter(Adapter):
    name = "lmeval"

    def __init__(self) -> None:
        self.settings: LmEvalSettings | None = None
        self.tasks: dict[str, Any] = {}
        self.groups: dict[str, Any] = {}
        self.instances: dict[str, list[Any]] = {}
        """Each item's lm-eval request group (the task's Instance objects, in order)."""
        self._backend: Any = None
        self._backend_lock = asyncio.Lock()

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        self.settings = settings = LmEvalSettings.from_spec(spec)
        self.tasks, self.groups = load_lm_eval_tasks(settings, data)
        items: list[Item] = []
        for name, task in self.tasks.items():
            task.build_all_requests(rank=0, world_size=1)
            by_doc: dict[int, list[Any]] = {}
            for inst in task.instances:
                by_doc.setdefault(inst.doc_id, []).append(inst)
            for doc_id, group in sorted(by_doc.items()):
                group.sort(key=lambda inst: inst.idx)
                item_id = f"{name}/{doc_id}"
                self.instances[item_id] = group
                items.append(Item(item_id, {
                    "task": name, "doc_id": doc_id, "target": _jsonable(task.doc_to_target(group[0].doc)),
                    "requests": [{"type": inst.request_type, "args": _jsonable(list(inst.args)),
                                  "repeats": inst.repeats} for inst in group],
                }, meta={"subtask": name} if len(self.tasks) > 1 else {}))
        return items

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        import lm_eval

        assert self.settings is not None
        return {
            "lm_eval_version": lm_eval.__version__,
            "lm_eval_task": self.settings.task,
            "fewshot_seed": self.settings.fewshot_seed,
            "tasks": {name: {"config_hash": config_hash(task.dump_config()),
                             "num_fewshot": task.get_config("num_fewshot"),
                             "version": task.VERSION}
                      for name, task in sorted(self.tasks.items())},
            "include_path": config.data,
        }

    # ------------------------------------------------------------ solve

    async def _backend_for(self, ctx: AttemptContext) -> Any:
        from k2eval.lmeval.backends import backend_for

        async with self._backend_lock:
            if self._backend is None:
                assert self.settings is not None
                self._backend = await backend_for(
                    ctx.model, batch_size=self.settings.batch_size,
                    add_bos_token=self.settings.add_bos_token, concurrency=ctx.config.concurrency,
                    api=self.settings.api)
        return self._backend

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        backend = await self._backend_for(ctx)
        requests = item.data["requests"]
        answers: list[list[Any]] = []
        for request in requests:
            kind, args, repeats = request["type"], request["args"], request["repeats"] or 1
            if kind == "loglikelihood":
                got: list[Any] = [list(r) for r in await backend.loglikelihood([tuple(args)] * repeats)]
            elif kind == "loglikelihood_rolling":
                got = await backend.loglikelihood_rolling([args[0]] * repeats)
            elif kind == "generate_until":
                got = await backend.generate([(args[0], dict(args[1]))] * repeats,
                                             complete=lambda m, s: ctx.chat(m, sampling=s))
            else:
                raise ConfigError(f"lm-eval request type {kind!r} is not supported")
            answers.append(got)
        return SolveResult(messages=_transcript(requests, answers), output={"responses": answers})

    # ------------------------------------------------------------ score

    def _primary(self, task: Any) -> str:
        assert self.settings is not None
        if self.settings.metric:
            return self.settings.metric
        metric = next(iter(task.aggregation()))
        return f"{metric},{task._filters[0].name}"

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        task = self.tasks[item.data["task"]]
        group = [dataclasses.replace(inst, resps=_resps(inst.request_type, raw), filtered_resps={})
                 for inst, raw in zip(self.instances[item.id], attempt.output["responses"], strict=True)]
        for ensemble in task._filters:
            ensemble.apply(group)
        metrics: dict[str, Any] = {}
        for key in group[0].filtered_resps:
            for name, value in task.process_results(group[0].doc, [i.filtered_resps[key] for i in group]).items():
                metrics[f"{name},{key}"] = _jsonable(value)
        primary = self._primary(task)
        if primary not in metrics:
            raise ConfigError(f"lm-eval task {task.config.task} reports no metric {primary!r} "
                              f"(it has {', '.join(sorted(metrics))}): fix option metric")
        value = metrics[primary]
        number = float(value) if isinstance(value, (int, float, bool)) else 0.0
        return Score(item.id, attempt.index, number, reason=f"{primary} = {value}",
                     details={"metrics": metrics,
                              "filtered": {k: [_jsonable(i.filtered_resps[k]) for i in group]
                                           for k in group[0].filtered_resps}})

    # ------------------------------------------------------------ summary

    def headline(self, items: list[Item], scores: list[Score], k: int) -> dict[str, Any] | None:
        results = self.aggregate(items, scores)
        assert self.settings is not None
        name = self.settings.task
        top = results["groups"].get(name) or results["results"].get(name)
        if top is None:  # a tag: several tasks, no group; report the first
            name = next(iter(results["results"]))
            top = results["results"][name]
        first = self.tasks[next(iter(self.tasks))]
        metric, _, filt = self._primary(first).partition(",")
        value = top.get(f"{metric},{filt}")
        stderr = top.get(f"{metric}_stderr,{filt}")
        base = {"n_scored_items": len({s.item_id for s in scores}), "metric_label": metric,
                "headline_metric": f"{metric},{filt}", "lm_eval": results}
        if not isinstance(value, (int, float)):
            return {"score": None, "ci95": None, "stderr": None, **base}
        se = float(stderr) if isinstance(stderr, (int, float)) and not math.isnan(stderr) else 0.0
        if first.higher_is_better().get(metric) is False or not 0 <= value <= 1:
            # perplexities, bits per byte, ...: reported as lm-eval reports them, not as percent
            return {"score": round(value, 6), "ci95": [round(value - Z95 * se, 6), round(value + Z95 * se, 6)],
                    "stderr": round(se, 6), "score_unit": "raw", **base}
        return {"score": round(100 * value, 4),
                "ci95": [round(100 * max(0.0, value - Z95 * se), 4), round(100 * min(1.0, value + Z95 * se), 4)],
                "stderr": round(100 * se, 4), **base}

    def aggregate(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        """lm-eval's own per-task and per-group aggregation of the per-document metrics."""
        from lm_eval.evaluator_utils import _collect_results, aggregate_groups

        item_task = {it.id: it.data["task"] for it in items}
        raw: dict[str, dict[tuple[str, str], list[Any]]] = {name: {} for name in self.tasks}
        for s in sorted(scores, key=lambda s: (item_task[s.item_id], int(s.item_id.rsplit("/", 1)[1]))):
            if s.status != "ok" or s.index != 0:
                continue
            for key, value in s.details.get("metrics", {}).items():
                metric, _, filt = key.partition(",")
                raw[item_task[s.item_id]].setdefault((metric, filt), []).append(value)
        acc = {name: {"task": task, "raw_metrics": raw[name], "logged_samples": []}
               for name, task in self.tasks.items() if raw[name]}
        collected = aggregate_groups(_collect_results(acc, dict(self.groups),
                                                      BOOTSTRAP_ITERS))
        task_data, group_data = collected.collect()
        return _jsonable({"results": task_data, "groups": group_data or {},
                          "n-shot": dict(collected.num_fewshot),
                          "versions": dict(collected.versions)})


def _transcript(requests: list[dict[str, Any]], answers: list[list[Any]]) -> list[Message]:
    """The prompt and the model's answer, as a reader of the run directory wants them: the
    shared context once, then each continuation with its log-likelihood (or the generation)."""
    first = requests[0]
    messages: list[Message] = [{"role": "user", "content": first["args"][0]}]
    if first["type"] == "loglikelihood":
        lines = [f"{got[0][0]:.4f}{' (greedy)' if got[0][1] else ''}\t{req['args'][1]!r}"
                 for req, got in zip(requests, answers, strict=True)]
        best = max(range(len(requests)), key=lambda i: answers[i][0][0])
        messages.append({"role": "assistant", "content": requests[best]["args"][1],
                         "loglikelihoods": "\n".join(lines)})
    elif first["type"] == "loglikelihood_rolling":
        messages.append({"role": "assistant", "content": f"log-likelihood {answers[0][0]:.4f}"})
    else:
        messages.append({"role": "assistant", "content": answers[0][0]})
    return messages
