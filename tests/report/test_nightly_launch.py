"""How a night's runs are launched: one after another (the default), or concurrently
(`ConcurrentRuns`, what `nightly --executor ray` uses), with the same verdicts in suite order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from runfixtures import task_spec, write_run

from k2eval.errors import EndpointUnreachable
from k2eval.report.nightly import ConcurrentRuns, run_nightly
from k2eval.spec import RunConfig
from k2eval.store.history import open_history

SPEC = task_spec("aime2025", k=1)


class Scripted:
    """Async runs, the n-th taking 0.3/n s (later ones finish first), the second raising; they
    count how many are in flight at once."""

    def __init__(self) -> None:
        self.in_flight = self.peak = 0
        self.calls = 0

    async def __call__(self, config: RunConfig, out: Path) -> Path:
        n = self.calls = self.calls + 1
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.3 / n)  # later runs finish first
            if n == 2:
                raise EndpointUnreachable("http://127.0.0.1:9/v1 does not answer")
            return write_run(out, SPEC, "m", {"q0": [1.0], "q1": [float(n % 2)]},
                             run_id=f"run-{n}")
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize(("at_once", "peak"), [(None, 3), (2, 2), (1, 1)])
def test_concurrent_runs_stay_within_their_bound_and_are_judged_in_suite_order(
        tmp_path: Path, at_once: int | None, peak: int) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text("".join(f"- {{task: aime2025, model: 'openai:m', name: {name}}}\n"
                             for name in ("a", "b", "c")))
    runs, lines = Scripted(), []
    result = run_nightly(suite, open_history(f"sqlite:///{tmp_path}/h.db"), tmp_path / "nights",
                         runner=ConcurrentRuns(runs, at_once), log=lines.append)
    assert runs.peak == peak
    assert [(v.slot, v.status) for v in result.verdicts] == [
        ("a", "no-baseline"), ("b", "failed"), ("c", "no-baseline")]
    assert "does not answer" in result.verdicts[1].note
    assert [v.run.run_id for v in result.verdicts if v.run] == ["run-1", "run-3"]
    assert lines[0].endswith(f"running 3 runs, {peak} at a time")
