"""Tau2-Bench (airline, retail, telecom) without the tau2 package.

Data: a tau2 data directory (`--data DIR` or `$TAU2_DATA_DIR`); the task option `domain`
picks the domain. Each attempt is a half-duplex conversation between the agent (system
prompt: the domain policy), an LLM user simulator (`--user-model`, temperature 0) and the
domain's environment; its reward is tau2's product over the task's reward basis, with every
component's verdict stored in the score's details. Headline: Avg@k (mean reward); pass^k
(k up to the fewest trials of any task) and the per-task rewards are under `breakdowns`.

Texts: the agent's instruction and system prompt, the simulator's prompt layout and every
tool description and schema both sides see are tau2-bench's own, read (not imported) from a
tau2-bench source tree (see `texts.py`): `--option tau2_source=PATH`, `$TAU2_SOURCE_DIR`, or
the checkout the data directory belongs to. Without one the run uses k2eval's own wording,
says so in one line, and records `official_texts: false` in the manifest and summary
conditions. `--option agent_instructions_file=PATH` replaces the agent's instruction. Each
attempt records `official_texts` in its output; rescoring does not need the tree (without it
the rescored run's conditions say the texts are unknown). On Ray (`node_config`), workers get
the driver's data directory and the path options made absolute; `$TAU2_SOURCE_DIR` is each
node's own, and the nodes' conditions must agree.

Rules of tau2-bench 0.1.3 kept on purpose: tools get the model's argument values as they are
(no coercion: "2" stays a string, so a wrong type fails or corrupts the database there as it
does in tau2); the 10-tool-error cut-off of tau2 1.0 is off (0.1.3 never counts errors),
`--option max_tool_errors=10` turns it on; pass^k uses k up to the fewest trials of any task.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any, ClassVar

from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
)
from k2eval.adapters.tau2.data import (
    check_domain_files,
    load_guidelines,
    load_policy,
    load_tasks,
    read_text,
    resolve_data_dir,
)
from k2eval.adapters.tau2.environment import initial_environment
from k2eval.adapters.tau2.evaluation import JudgeError, compute_reward
from k2eval.adapters.tau2.metrics import pass_hat_ks
from k2eval.adapters.tau2.simulation import MAX_STEPS, run_conversation
from k2eval.adapters.tau2.texts import SourceError, Texts, load_texts
from k2eval.errors import ConfigError
from k2eval.scoring import group_by_item, mean
from k2eval.spec import RunConfig, TaskSpec

PATH_OPTIONS = ("tau2_source", "agent_instructions_file")


def _run_texts(config: RunConfig) -> Texts:
    """The texts of a run: every attempt and the run's conditions decide alike."""
    option = config.task.option("tau2_source")
    return load_texts(str(option) if option else None, resolve_data_dir(config.data))


def _max_tool_errors(spec: TaskSpec) -> int | None:
    """tau2 1.0's tool-error cut-off, when asked for (tau2 0.1.3 has none)."""
    value = spec.option("max_tool_errors", spec.limits.max_tool_errors)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"task {spec.name}: max_tool_errors must be a positive integer, "
                          f"got {value!r}")
    return value


class Tau2Adapter(Adapter):
    name: ClassVar[str] = "tau2"
    needs_user_model: ClassVar[bool] = True

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        domain = spec.option("domain")
        if spec.members:
            raise ConfigError(f"task {spec.name} is a group: run its members "
                              f"({', '.join(spec.members)}); reports aggregate their runs")
        if not domain:
            raise ConfigError(f"task {spec.name}: options.domain must name a tau2 domain")
        root = resolve_data_dir(data)
        check_domain_files(root, domain)
        return [Item(id=str(task["id"]),
                     data={"domain": domain, "data_dir": str(root.resolve()), "task": task},
                     meta={"domain": domain})
                for task in load_tasks(root, domain)]

    async def setup(self, config: RunConfig) -> None:
        texts = _run_texts(config)
        if texts.source is None:
            print("warning: tau2: no tau2-bench source tree (pass --option tau2_source=PATH "
                  "or set TAU2_SOURCE_DIR): the agent instruction and tool descriptions are "
                  "k2eval's own wording, and the run is marked so", file=sys.stderr)
        elif texts.own_models:
            print(f"warning: tau2: {texts.source} lacks the data models "
                  f"{', '.join(texts.own_models)}: their field descriptions are k2eval's "
                  "own wording, and the run is marked so", file=sys.stderr)

    def node_config(self, config: RunConfig) -> RunConfig:
        """Workers on other nodes get the data directory this process resolved (the items'
        own, also when it came from $TAU2_DATA_DIR) and the file options as absolute paths
        (a relative one names a file beside the driver, not beside a worker). The source tree
        $TAU2_SOURCE_DIR names is each node's own: the nodes' conditions must agree."""
        files = {name: str(Path(value).expanduser().resolve()) for name in PATH_OPTIONS
                 if (value := config.task.option(name))}
        return dataclasses.replace(config, data=str(resolve_data_dir(config.data).resolve()),
                                   task=config.task.with_overrides(options=files))

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        spec = config.task
        try:
            out = _run_texts(config).conditions()
        except SourceError as exc:  # only on rescore: a run checks its tree in `setup`
            out = {"tool_texts": f"unknown ({exc})", "official_texts": False}
        if spec.option("agent_instructions_file"):
            instructions = Path(spec.option("agent_instructions_file")).expanduser().resolve()
            out |= {"agent_instruction": f"file {instructions}", "official_texts": False}
        out["max_tool_errors"] = _max_tool_errors(spec)
        return out

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        root, domain, task = Path(item.data["data_dir"]), item.data["domain"], item.data["task"]
        env = await asyncio.to_thread(initial_environment, root, domain, task)
        texts = _run_texts(ctx.config)
        instructions_file = ctx.spec.option("agent_instructions_file")
        conversation = await run_conversation(
            ctx, env, task, texts=texts, policy=load_policy(root, domain),
            guidelines=load_guidelines(root, with_tools=env.user_tools is not None),
            instruction=read_text(Path(instructions_file)).strip() if instructions_file else None,
            max_steps=ctx.spec.limits.max_steps or MAX_STEPS,
            max_errors=_max_tool_errors(ctx.spec))
        return SolveResult(messages=conversation.trajectory,
                           output={"termination": conversation.termination,
                                   "steps": conversation.steps,
                                   "tool_errors": conversation.tool_errors,
                                   "official_texts": texts.official})

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        root, domain, task = Path(item.data["data_dir"]), item.data["domain"], item.data["task"]
        termination = attempt.output.get("termination") or "max_steps"  # engine-side limits
        try:
            reward = await compute_reward(root, domain, task, attempt.messages, termination,
                                          judge=ctx.judge_model)
        except JudgeError as exc:
            return Score(item.id, attempt.index, 0.0, reason=str(exc), status="error")
        failed = [name for name, value in reward.components.items() if value < 1.0]
        reason = (reward.details.get("reason")
                  or (f"failed: {', '.join(failed)}" if failed else "all reward components met"))
        return Score(item.id, attempt.index, reward.value, reason=reason,
                     details=reward.details | {"components": reward.components})

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        by_item = group_by_item(scores)
        return {"pass^k": pass_hat_ks(by_item),
                "item_rewards": {item_id: round(mean([s.value for s in item_scores]), 6)
                                 for item_id, item_scores in sorted(by_item.items())}}
