"""SWE-bench Verified and Multilingual: agentic single attempt, agentless single patch.

Data: the official rows (hub `SWE-bench/SWE-bench_Verified` / `_Multilingual`, or a local
parquet / JSON Lines file) carrying the harness columns of the `swebench` 5.x package.
Solve: `mode: agentic` runs a bash + str_replace_editor tool loop in the instance image
(agentic.py); `mode: agentless` localises as Agentless does and asks once for the fix
(agentless.py, localize.py).
Score: the official grading (grading.py) in a fresh instance container: apply the patch with
the package's fallbacks, run the row's eval script, `get_eval_report` decides. Resolved iff
every FAIL_TO_PASS and PASS_TO_PASS test passes as the package decides; the package's
infrastructure-failure flags are advisory. Containers get Docker's default network unless
the task's `network` option says `none` (network.py); the network used is recorded in the
run's conditions.
"""

from __future__ import annotations

import asyncio
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
from k2eval.adapters.swebench.agentic import AgentSettings, run_agent
from k2eval.adapters.swebench.agentless import AgentlessSettings, run_agentless
from k2eval.adapters.swebench.data import apply_image_options, build_test_spec, load_rows, to_item
from k2eval.adapters.swebench.grading import (
    DEFAULT_EVAL_TIMEOUT_S,
    evaluate_patch,
    failure_details,
    is_empty_patch,
)
from k2eval.adapters.swebench.images import pull_images, require_images
from k2eval.adapters.swebench.network import NetworkChoice, NetworkResolver, requested_network
from k2eval.adapters.swebench.predictions import prediction_rows
from k2eval.errors import ConfigError, InfraError
from k2eval.spec import RunConfig, TaskSpec
from swebench.harness.infra_failure import classify_text

MODES = ("agentic", "agentless")
SANDBOX_DEFAULTS = {"memory_mb": 8192, "cpus": 2.0, "pids": 4096}
DOCKER_DEFAULT_CAPS = ("AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL",
                       "MKNOD", "NET_BIND_SERVICE", "NET_RAW", "SETFCAP", "SETGID", "SETPCAP",
                       "SETUID", "SYS_CHROOT")
GRADING_EXTRA_CAPS = ("SYS_ADMIN",)
"""The official harness adds SYS_ADMIN to Docker's defaults (browser sandboxes in karma tests)."""


def sandbox_limits(spec: TaskSpec, network: NetworkChoice, *,
                   grading: bool = False) -> dict[str, Any]:
    """Instance containers as the official harness runs them: root with Docker's default
    capabilities (plus SYS_ADMIN when grading), no disk quota, the network `network` says;
    memory/cpus/pids from `sandbox_*` options."""
    caps = DOCKER_DEFAULT_CAPS + (GRADING_EXTRA_CAPS if grading else ())
    return {"user": "root", "disk_mb": None, "cap_add": caps,
            "network": network.used == "bridge",
            **{key: spec.option(f"sandbox_{key}", value)
               for key, value in SANDBOX_DEFAULTS.items()}}


class SweBenchAdapter(Adapter):
    name: ClassVar[str] = "swebench"
    needs_sandbox: ClassVar[bool] = True

    def __init__(self) -> None:
        self.network = NetworkResolver()

    # -- data ------------------------------------------------------------------------------

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        mode = spec.option("mode", "agentic")
        if mode not in MODES:
            raise ConfigError(f"task {spec.name}: option mode must be one of {MODES}, got {mode!r}")
        AgentSettings.from_options(dict(spec.options))  # bad option values fail before the run
        AgentlessSettings.from_options(dict(spec.options))
        requested_network(spec)
        items = []
        for row in load_rows(spec, data):
            row = apply_image_options(row, spec)
            build_test_spec(row)  # the official spec must build for every row before any run starts
            items.append(to_item(row))
        return items

    async def setup(self, config: RunConfig) -> None:
        """Fail before any model call when an instance image is missing (on Ray, each node
        pulls the images of its attempts instead)."""
        if self.images_on_nodes:
            return
        from k2eval.engine.runner import load_items

        images = [it.data["image"] for it in load_items(self, config)]
        await require_images(images, config.task.name)

    def item_image(self, item: Item, spec: TaskSpec) -> str | None:
        return str(item.data["image"])

    async def prepare_image(self, image: str, spec: TaskSpec) -> None:
        """Pull it, as `k2eval swebench images --pull` does."""
        failures = await asyncio.to_thread(pull_images, [image], False)
        if failures:
            raise InfraError(f"cannot prepare instance image {image}: {failures[0][1]}")

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        """The network instance containers had (see network.py)."""
        return self.network.resolve(config.task).conditions()

    # -- solve -----------------------------------------------------------------------------

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        spec = ctx.spec
        await require_images([item.data["image"]], spec.name)
        limits = sandbox_limits(spec, self.network.resolve(spec))
        async with ctx.sandbox(item.data["image"], **limits) as sandbox:
            if spec.option("mode", "agentic") == "agentless":
                return await run_agentless(item, ctx, sandbox,
                                           AgentlessSettings.from_options(dict(spec.options)))
            return await run_agent(item, ctx, sandbox,
                                   AgentSettings.from_options(dict(spec.options)))

    # -- grade -----------------------------------------------------------------------------

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        patch = attempt.output.get("patch")
        if is_empty_patch(patch):
            return Score(item.id, attempt.index, 0.0, reason="empty patch",
                         details={"reason": "empty_patch",
                                  "exit_status": attempt.output.get("exit_status")})
        assert isinstance(patch, str)
        timeout = float(ctx.spec.option("eval_timeout_s", DEFAULT_EVAL_TIMEOUT_S))
        await require_images([item.data["image"]], ctx.spec.name)
        limits = sandbox_limits(ctx.spec, self.network.resolve(ctx.spec), grading=True)
        try:
            async with ctx.sandbox(item.data["image"], **limits) as sandbox:
                verdict = await evaluate_patch(sandbox, build_test_spec(item.data), patch,
                                               timeout=timeout, model_name=ctx.config.model.spec)
        except (InfraError, OSError) as exc:
            # the container could not be run at all: no verdict exists, rescore retries it
            return Score(item.id, attempt.index, 0.0, status="error",
                         reason=f"infrastructure failure: {exc}",
                         details={"infra": True, **failure_details(classify_text(str(exc)))})
        details = verdict.details()
        reason = verdict.reason.replace("_", " ")
        if details["infra_failure"]:  # advisory, as in the official run report: the grade stands
            reason += f" (log suggests an environment failure: {details['failure_reason']})"
        return Score(item.id, attempt.index, 1.0 if verdict.resolved else 0.0,
                     reason=reason, details=details)

    # -- run outputs -----------------------------------------------------------------------

    def exports(self, config: RunConfig, items: list[Item],
                attempts: list[Attempt]) -> dict[str, list[dict[str, Any]]]:
        """predictions.jsonl in the official format, for cross-checking with `swebench`."""
        return {"predictions.jsonl": prediction_rows(attempts, config.model.spec)}
