"""The executor contract: the engine decides what runs and journals it; an executor decides
where each attempt is solved and graded.

The engine hands an executor a `WorkPlan` (the run, its adapter, what is left to solve and to
grade) and then calls `solve` and `score` from at most `solve_slots` and `score_slots`
concurrent tasks. Every result comes back to the engine, which alone writes the run
directory; an executor never touches it. `start` validates everything it can (reaching a
cluster, sandbox capacity) before the engine makes its first model call.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from k2eval.adapters.base import Adapter
from k2eval.engine.executors.attempts import RunModels
from k2eval.engine.progress import LiveAttempt
from k2eval.records import Attempt, Item, Score
from k2eval.spec import RunConfig


@dataclass(frozen=True)
class WorkPlan:
    """What one engine pass needs from an executor."""

    config: RunConfig
    adapter: Adapter
    run_id: str
    models: RunModels | None
    """The driver's models (None when nothing is solved and no judge grades)."""
    n_solve: int
    """Attempts left to solve (0 for rescore)."""
    n_score: int
    """Attempts to grade that are already solved."""


class Executor(ABC):
    """Where attempts run. One instance serves one engine pass (`start` ... `aclose`)."""

    name: str

    @abstractmethod
    async def start(self, plan: WorkPlan) -> None:
        """Acquire workers. Raise `UserError` for anything the user must fix, before any
        model call."""

    _plan: WorkPlan | None = None
    """The pass `start` was given."""

    @property
    def solve_slots(self) -> int:
        """How many `solve` calls the engine may have in flight (the run's model concurrency)."""
        assert self._plan is not None, "executor used before start()"
        return self._plan.config.concurrency

    @property
    def score_slots(self) -> int:
        """How many `score` calls the engine may have in flight: the sandboxes it may hold
        for adapters that grade in sandboxes, else the run's concurrency."""
        assert self._plan is not None, "executor used before start()"
        plan = self._plan
        return self.sandbox_slots if plan.adapter.needs_sandbox else plan.config.concurrency

    @property
    @abstractmethod
    def sandbox_slots(self) -> int:
        """How many sandboxes this executor's workers may hold at once."""

    @abstractmethod
    async def solve(self, item: Item, index: int) -> Attempt:
        """One attempt, with `worker` set to where it ran. Model failures come back as an
        attempt with status "error"; only `UserError` propagates."""

    @abstractmethod
    async def score(self, item: Item, attempt: Attempt) -> Score:
        """The grade of a solved attempt; a grader failure is a Score with status "error"."""

    def live(self) -> list[LiveAttempt]:
        """The attempts in flight with their counters so far, for the progress line; empty
        where the executor cannot see them cheaply (attempts in other processes)."""
        return []

    async def setup(self) -> None:
        """Run the adapter's `setup` where the attempts will run (before any attempt of a
        pass that solves). Default: in this process."""
        assert self._plan is not None, "executor used before start()"
        await self._plan.adapter.setup(self._plan.config)

    async def conditions(self) -> dict[str, Any]:
        """The conditions the run's attempts are graded under (`Adapter.conditions`), where
        they are graded; called after the adapter's `setup`. Default: this process's."""
        assert self._plan is not None, "executor used before start()"
        return self._plan.adapter.conditions(self._plan.config)

    def describe(self) -> dict[str, Any]:
        """Recorded in the manifest under "executor"."""
        return {"name": self.name}

    async def aclose(self) -> None:  # noqa: B027 - optional hook
        """Release workers and sandboxes."""
