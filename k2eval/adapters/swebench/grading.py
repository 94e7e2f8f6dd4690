"""Official SWE-bench grading of one patch, run in one of our sandboxes.

The steps mirror `swebench.harness.run_evaluation.run_instance`: copy the patch to
`/tmp/patch.diff`, try the package's `GIT_APPLY_CMDS` in order (restoring a pristine
tree before each retry, accepting a patch that turns out to be applied already), run the
test spec's eval script with a timeout, then let `swebench.harness.grading.get_eval_report`
parse the log and decide. Nothing here parses test output itself.

Failures the package's `infra_failure` module attributes to the environment (a log saying
`Could not resolve host`, e.g. from an eval script's `pip install` without network) are
advisory there: the instance stays unresolved and in the denominator, only flagged for
triage. So here: such a verdict is unresolved like any other, with the classification
(`failure_reason`, `failure_tier`, `infra_failure`) attached as the run report attaches it.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k2eval.sandbox.base import Sandbox
from swebench.harness.constants import APPLY_PATCH_FAIL, APPLY_PATCH_PASS, CONTAINER_PATCH_FILE
from swebench.harness.grading import get_eval_report
from swebench.harness.infra_failure import TIER_ENVIRONMENT, classify_text
from swebench.harness.run_evaluation import GIT_APPLY_CMDS
from swebench.image_builder.constants import CONTAINER_WORKDIR
from swebench.types import TestSpec

DEFAULT_EVAL_TIMEOUT_S = 1800
EVAL_SCRIPT_PATH = "/eval.sh"
TEST_OUTPUT_PATH = "/tmp/k2eval_test_output.txt"
RESET_TREE = "git checkout -- . ; git clean -fd"
LOG_TAIL_CHARS = 4000


@dataclass
class Verdict:
    """The outcome of grading one patch."""

    resolved: bool
    reason: str
    """resolved | empty_patch | patch_apply_failed | tests_failed | timeout | no_test_output"""
    failure: tuple[str, str] | None = None
    """(reason, tier) of the package's infrastructure-failure signatures found in the logs of
    an unresolved instance; advisory, as in the official run report: never changes the grade."""
    report: dict[str, Any] = field(default_factory=dict)
    """The package's per-instance report (patch flags, FAIL_TO_PASS / PASS_TO_PASS lists)."""
    apply_command: str | None = None
    log_tail: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    def details(self) -> dict[str, Any]:
        return {"reason": self.reason, **failure_details(self.failure),
                "apply_command": self.apply_command, "report": self.report,
                "log_tail": self.log_tail,
                "timings": {k: round(v, 3) for k, v in self.timings.items()}}


def failure_details(failure: tuple[str, str] | None) -> dict[str, Any]:
    """The advisory triage fields of a score: `infra_failure` (an environment-tier signature,
    as the run report's `infra_failure_ids`), `failure_reason` and `failure_tier`."""
    reason, tier = failure or (None, None)
    return {"infra_failure": tier == TIER_ENVIRONMENT, "failure_reason": reason,
            "failure_tier": tier}


def is_empty_patch(patch: str | None) -> bool:
    return patch is None or not patch.strip()


async def apply_patch(sandbox: Sandbox, patch: str) -> tuple[str | None, str]:
    """Apply `patch` in /testbed with the official fallbacks: (command that worked, its output).

    The patch is copied to the official path by the first try's exec itself (on stdin).
    """
    output = ""
    for attempt, command in enumerate(GIT_APPLY_CMDS):
        if attempt:
            await sandbox.exec(["/bin/bash", "-c", RESET_TREE], timeout=300,
                               workdir=CONTAINER_WORKDIR)
            result = await sandbox.exec(f"{command} {CONTAINER_PATCH_FILE}", timeout=300,
                                        workdir=CONTAINER_WORKDIR)
        else:
            result = await sandbox.exec(
                f"cat > {CONTAINER_PATCH_FILE} && {command} {CONTAINER_PATCH_FILE}",
                timeout=300, workdir=CONTAINER_WORKDIR, stdin=patch)
        output = result.stdout + result.stderr
        if result.exit_code == 0:
            return command, output
    already = await sandbox.exec(f"git apply --check --reverse {CONTAINER_PATCH_FILE}",
                                 timeout=300, workdir=CONTAINER_WORKDIR)
    if already.exit_code == 0:
        return "already applied", output
    return None, output


async def run_eval_script(sandbox: Sandbox, spec: TestSpec, timeout: float) -> tuple[str, bool]:
    """Run the eval script (stdout and stderr interleaved, as docker exec streams them).

    The script arrives on stdin, is written to /eval.sh, and runs with its input at EOF.
    """
    result = await sandbox.exec(
        ["/bin/bash", "-c", f"cat > {EVAL_SCRIPT_PATH} && "
                            f"/bin/bash {EVAL_SCRIPT_PATH} > {TEST_OUTPUT_PATH} 2>&1"],
        timeout=timeout, stdin=spec.eval_script)
    try:
        log = (await sandbox.read_file(TEST_OUTPUT_PATH)).decode("utf-8", errors="replace")
    except Exception:
        log = result.stdout + result.stderr
    if result.timed_out:
        log += f"\n\nTimeout error: {int(timeout)} seconds exceeded."
    return log, result.timed_out


def grade_log(spec: TestSpec, patch: str, log: str, model_name: str = "k2eval") -> dict[str, Any]:
    """The package's report for this instance, from the eval script's log."""
    with tempfile.TemporaryDirectory(prefix="k2eval-swe-") as tmp:
        log_path = Path(tmp) / "test_output.txt"
        log_path.write_text(log, encoding="utf-8")
        prediction = {"instance_id": spec.instance_id, "model_name_or_path": model_name,
                      "model_patch": patch}
        report = get_eval_report(test_spec=spec, prediction=prediction,
                                 test_log_path=str(log_path), include_tests_status=True)
    return dict(report[spec.instance_id])


async def evaluate_patch(sandbox: Sandbox, spec: TestSpec, patch: str, *,
                         timeout: float = DEFAULT_EVAL_TIMEOUT_S,
                         model_name: str = "k2eval") -> Verdict:
    """Apply `patch` in a fresh instance container, run the tests, grade the log."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    command, apply_output = await apply_patch(sandbox, patch)
    timings["apply_s"] = time.perf_counter() - start
    if command is None:
        return Verdict(False, "patch_apply_failed", failure=classify_text(apply_output),
                       log_tail=f"{APPLY_PATCH_FAIL}:\n{apply_output[-LOG_TAIL_CHARS:]}",
                       timings=timings)
    start = time.perf_counter()
    log, timed_out = await run_eval_script(sandbox, spec, timeout)
    timings["tests_s"] = time.perf_counter() - start
    start = time.perf_counter()
    report = grade_log(spec, patch, log, model_name)
    timings["grade_s"] = time.perf_counter() - start
    tail = f"{APPLY_PATCH_PASS} ({command})\n...\n{log[-LOG_TAIL_CHARS:]}"
    if report.get("resolved") and not timed_out:
        return Verdict(True, "resolved", report=report, apply_command=command, log_tail=tail,
                       timings=timings)
    if timed_out:
        reason = "timeout"
    else:
        reason = "tests_failed" if report.get("patch_successfully_applied") else "no_test_output"
    return Verdict(False, reason, failure=classify_text(f"{apply_output}\n{log}"),
                   report=report, apply_command=command, log_tail=tail, timings=timings)
