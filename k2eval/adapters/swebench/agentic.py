"""The agentic single attempt: a tool-calling loop in the instance container at /testbed.

The model gets the issue and three tools (bash, str_replace_editor, submit). The loop ends
when it submits, or is ended for it (autosubmit) at the step or token budget, when the
conversation no longer fits the context window, or after repeated replies without a tool
call. In every case the patch is the container's `git diff` against the base commit,
without binary files and (by default) without edits to test files. Model API failures are
not autosubmitted: they propagate, and the engine records the attempt as an error.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from k2eval.adapters.base import AttemptContext, Item, SolveResult
from k2eval.agents.swe_tools import SweTools
from k2eval.errors import ConfigError, FatalModelError, InfraError, LimitExceeded
from k2eval.models.base import Message
from k2eval.sandbox.base import Sandbox

WORKDIR = "/testbed"
PATCH_PATH = "/tmp/k2eval_model.patch"

SYSTEM_PROMPT = """\
You are an expert software engineer working in a code repository checked out at /testbed \
inside a Linux container. You will be given an issue report. Change the repository's \
non-test source files so that the issue is resolved.

Work with the tools: `bash` runs shell commands (the project's environment is already set \
up), `str_replace_editor` views and edits files, and `submit` ends the task. A sensible \
approach: explore the relevant code, write a small script that reproduces the problem and \
run it, make the fix, run the script again to confirm it, think about edge cases, then \
submit. Hidden tests decide whether the issue is resolved; do not edit existing tests. \
Keep the change minimal and in the style of the code base. Call exactly one tool per \
reply when you can, and always answer with a tool call."""

ISSUE_PROMPT = """\
<issue>
{problem_statement}
</issue>

The repository is at /testbed (base commit {base_commit}). Resolve the issue above, then \
call `submit`."""

NO_TOOL_CALL_NUDGE = ("Your reply did not call a tool. Continue with a tool call: use bash or "
                      "str_replace_editor to work on the issue, or submit when you are done.")
ELIDED = "[older output elided to fit the context window]"
CONTEXT_ERROR = re.compile(r"context|too long|maximum.{0,40}tokens|prompt is too", re.I)
TEST_DIRS = {"tests", "__tests__"}
TEST_TOP_DIRS = {"test", "testing", "spec"}
TEST_FILE = re.compile(
    r"(^test_.*\.py$|_test\.(py|go|rb)$|(Test|Tests)\.(java|kt|php)$|_spec\.rb$"
    r"|\.(test|spec)\.[cm]?[jt]sx?$)")


class OptionSettings:
    """Base of frozen settings dataclasses read from task options."""

    @classmethod
    def from_options(cls: type[S], options: dict[str, Any]) -> S:
        """Settings from task options, each coerced to its field's type."""
        defaults = cls()
        values: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:  # type: ignore[attr-defined]
            if name not in options:
                continue
            kind, raw = type(getattr(defaults, name)), options[name]
            try:
                if kind is bool and isinstance(raw, str):
                    values[name] = raw.strip().lower() in ("1", "true", "yes", "on")
                else:
                    values[name] = kind(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"option {name} must be a {kind.__name__}, got {raw!r}") from None
        return cls(**values)


S = TypeVar("S", bound=OptionSettings)


@dataclass(frozen=True)
class AgentSettings(OptionSettings):
    command_timeout_s: float = 180.0
    max_observation_chars: int = 16000
    context_window_tokens: int = 131072
    keep_recent_observations: int = 5
    max_consecutive_format_errors: int = 3
    exclude_test_files: bool = True
    exclude_binary_files: bool = True


def env_setup_from(eval_script: str) -> str:
    """The environment activation lines of an official eval script (conda, exports)."""
    lines = []
    for line in eval_script.splitlines():
        if line.startswith("git "):
            break
        if line.startswith(("source ", "conda activate ", "export ")):
            lines.append(line)
    return " && ".join(lines)


def is_test_path(path: str) -> bool:
    """Heuristic for test files across the SWE-bench languages' conventions."""
    parts = path.split("/")
    return (bool(TEST_DIRS.intersection(parts[:-1])) or parts[0] in TEST_TOP_DIRS
            or "/src/test/" in f"/{path}" or bool(TEST_FILE.search(parts[-1])))


async def untracked_files(sandbox: Sandbox) -> set[str]:
    result = await sandbox.exec("git ls-files -z --others --exclude-standard", timeout=120,
                                workdir=WORKDIR)
    return {p for p in result.stdout.split("\0") if p}


async def collect_patch(sandbox: Sandbox, base_commit: str, preexisting: set[str],
                        settings: AgentSettings) -> tuple[str, dict[str, list[str]]]:
    """The working tree's diff against `base_commit`, and the files left out of it (by reason)."""
    stage = await sandbox.exec(f"git add -A && git diff --cached --no-renames --numstat -z "
                               f"{base_commit}", timeout=300, workdir=WORKDIR)
    if stage.exit_code != 0:
        raise InfraError(f"git diff failed in the agent container: {stage.stderr[-500:]}")
    excluded: dict[str, list[str]] = {"binary": [], "test": [], "preexisting": []}
    included: list[str] = []
    for entry in filter(None, stage.stdout.split("\0")):
        added, deleted, path = entry.split("\t", 2)
        if path in preexisting:
            excluded["preexisting"].append(path)
        elif settings.exclude_binary_files and added == "-" and deleted == "-":
            excluded["binary"].append(path)
        elif settings.exclude_test_files and is_test_path(path):
            excluded["test"].append(path)
        else:
            included.append(path)
    if not included:
        return "", excluded
    pathspecs = " ".join(shlex.quote(f":(literal){p}") for p in included)
    diff = await sandbox.exec(f"git diff --cached --no-renames --text {base_commit} -- "
                              f"{pathspecs} > {PATCH_PATH}", timeout=300, workdir=WORKDIR)
    if diff.exit_code != 0:
        raise InfraError(f"git diff failed in the agent container: {diff.stderr[-500:]}")
    # read back as a file: exec output is capped, a patch must arrive whole
    return (await sandbox.read_file(PATCH_PATH)).decode("utf-8", errors="replace"), excluded


def _estimate_tokens(messages: list[Message]) -> int:
    return len(json.dumps(messages, ensure_ascii=False)) // 4


def fit_context(messages: list[Message], budget_tokens: int, keep_recent: int) -> list[Message]:
    """The conversation with the oldest tool outputs elided until it fits `budget_tokens`."""
    if _estimate_tokens(messages) <= budget_tokens:
        return messages
    fitted = [dict(m) for m in messages]
    tool_positions = [i for i, m in enumerate(fitted) if m.get("role") == "tool"]
    for i in tool_positions[:max(0, len(tool_positions) - keep_recent)]:
        fitted[i]["content"] = ELIDED
        if _estimate_tokens(fitted) <= budget_tokens:
            break
    return fitted


async def run_agent(item: Item, ctx: AttemptContext, sandbox: Sandbox,
                    settings: AgentSettings) -> SolveResult:
    row = item.data
    tools = SweTools(sandbox, workdir=WORKDIR, env_setup=env_setup_from(row["eval_script"]),
                     command_timeout=settings.command_timeout_s,
                     max_observation_chars=settings.max_observation_chars)
    await tools.start()
    preexisting = await untracked_files(sandbox)
    messages: list[Message] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": ISSUE_PROMPT.format(problem_statement=row["problem_statement"],
                                                        base_commit=row["base_commit"])},
    ]
    budget = settings.context_window_tokens - ctx.spec.max_output_tokens - 1024
    steps_log: list[dict[str, Any]] = []
    format_errors = 0
    exit_status = ""
    while not exit_status:
        fitted = fit_context(messages, budget, settings.keep_recent_observations)
        if _estimate_tokens(fitted) > budget:
            exit_status = "autosubmit: context window exhausted"
            break
        try:
            completion = await ctx.chat(fitted, tools.schemas)
        except LimitExceeded as exc:
            exit_status = f"autosubmit: {exc}"
            break
        except FatalModelError as exc:
            if exc.status == 400 and CONTEXT_ERROR.search(str(exc)) and budget > 8192:
                budget = int(budget * 0.75)
                continue
            raise
        messages.append(completion.as_message())
        if not completion.tool_calls:
            format_errors += 1
            if format_errors >= settings.max_consecutive_format_errors:
                exit_status = f"autosubmit: {format_errors} replies without a tool call"
                break
            messages.append({"role": "user", "content": NO_TOOL_CALL_NUDGE})
            continue
        format_errors = 0
        for call in completion.tool_calls:
            if exit_status:
                output = "Not run: the task was already submitted."
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
                continue
            started = time.perf_counter()
            result = await tools.call(call.name, call.arguments)
            steps_log.append({"step": ctx.steps, "tool": call.name, "error": result.error,
                              "seconds": round(time.perf_counter() - started, 3)})
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result.output})
            if result.submitted:
                exit_status = "submitted"
    patch, excluded = await collect_patch(sandbox, row["base_commit"], preexisting, settings)
    return SolveResult(messages=messages, output={
        "patch": patch, "exit_status": exit_status, "steps": ctx.steps,
        "excluded_files": {k: v for k, v in excluded.items() if v}, "tool_calls": steps_log})
