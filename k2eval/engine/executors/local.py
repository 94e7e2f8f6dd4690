"""The local executor: every attempt runs on the driver's event loop (the default)."""

from __future__ import annotations

from k2eval.engine.executors.attempts import AttemptRunner
from k2eval.engine.executors.base import Executor, WorkPlan
from k2eval.engine.progress import LiveAttempt
from k2eval.records import Attempt, Item, Score


class LocalExecutor(Executor):
    """Solves with `concurrency` tasks and grades with `sandboxes` (sandboxed adapters) or
    `concurrency` tasks in this process."""

    name = "local"

    def __init__(self) -> None:
        self._runner: AttemptRunner | None = None
        self._plan: WorkPlan | None = None

    async def start(self, plan: WorkPlan) -> None:
        self._plan = plan
        self._runner = AttemptRunner(plan.config, plan.adapter, run_id=plan.run_id,
                                     models=plan.models, sandbox_limit=plan.config.sandboxes)

    @property
    def runner(self) -> AttemptRunner:
        if self._runner is None:
            raise RuntimeError("LocalExecutor used before start()")
        return self._runner

    @property
    def sandbox_slots(self) -> int:
        assert self._plan is not None
        return self._plan.config.sandboxes

    def live(self) -> list[LiveAttempt]:
        return self._runner.live() if self._runner is not None else []

    async def solve(self, item: Item, index: int) -> Attempt:
        return await self.runner.solve(item, index)

    async def score(self, item: Item, attempt: Attempt) -> Score:
        return await self.runner.score(item, attempt)

    async def aclose(self) -> None:
        if self._runner is not None:
            await self._runner.aclose()
