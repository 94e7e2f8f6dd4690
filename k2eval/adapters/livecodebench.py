"""LiveCodeBench code generation (Jain et al., 2024), as graded by the official lcb_runner.

Data: `livecodebench/code_generation_lite` release files (`test.jsonl`, `test2.jsonl`, ...;
release_vN is the first N files), filtered to `start_date <= contest_date <= end_date`.
Prompt: the official OpenAI-chat prompt. Extraction: the text between the last two lines that
contain a triple backtick. Grading: every public and private test, in order, inside a sandbox,
by `livecodebench_runner.py` (which reproduces the official execution model); a generation
passes iff all tests pass. Headline: unbiased pass@1 over n samples per problem.

Choices, where the official code leaves room:
- The date window compares datetimes as lcb_runner does: `end_date` 2025-05-01 means
  2025-05-01T00:00:00, so a contest later that day is outside.
- The grader mirrors lcb_runner's current main branch (the stdin mock with `.buffer`, `exit()`
  allowed, `quit()` disabled). Its quirks are kept on purpose: iterating over `sys.stdin`
  fails, `sys.stdin.buffer.readline()` always returns the first line, `open(0)` reads an
  empty stdin, output written to fd 1 directly is not captured.
- Per-test alarms as officially (6 s by default); the whole program is killed after
  (timeout + 1) x tests + 5 s, the official grader's hard limit. The sandbox caps memory
  (2 GiB by default) where the official grader sets none.
- Test cases stay on disk until grading (rows can be tens of MB); an item records the file,
  offset and hash of its row. The compressed encoding is unpickled with no classes allowed.
- Malformed test encodings grade as a failure naming the question; sandbox failures are
  infrastructure errors (rescore retries them), never wrong answers.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import io
import json
import pickle
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from k2eval.adapters.base import (
    Adapter,
    Attempt,
    AttemptContext,
    Item,
    Score,
    ScoreContext,
    SolveResult,
    final_reply,
)
from k2eval.errors import DataError, InfraError, UserError

if TYPE_CHECKING:
    from k2eval.sandbox import ExecResult, Sandbox
    from k2eval.spec import TaskSpec

HUB_REPO = "livecodebench/code_generation_lite"
RELEASE_FILES = ("test.jsonl", "test2.jsonl", "test3.jsonl", "test4.jsonl", "test5.jsonl",
                 "test6.jsonl")
REQUIRED_FIELDS = ("question_title", "question_content", "platform", "question_id",
                   "contest_date", "starter_code", "difficulty", "public_test_cases",
                   "private_test_cases", "metadata")
DEFAULT_TIMEOUT_S = 6.0

RUNNER_SOURCE = (Path(__file__).with_name("livecodebench_runner.py")).read_text(encoding="utf-8")

# ---------------------------------------------------------------- data


def release_files(release: str) -> tuple[str, ...]:
    """Files of a release: `release_vN` = the first N files, `vN` = file N alone,
    `vA_vB` = files A..B, `release_latest` = all of them."""
    name = release.strip()
    count = len(RELEASE_FILES)
    try:
        if name == "release_latest":
            return RELEASE_FILES
        if name.startswith("release_v"):
            last = int(name.removeprefix("release_v"))
            if 1 <= last <= count:
                return RELEASE_FILES[:last]
        elif name.startswith("v"):
            first, _, last_part = name.partition("_")
            lo = int(first.removeprefix("v"))
            hi = int(last_part.removeprefix("v")) if last_part else lo
            if 1 <= lo <= hi <= count:
                return RELEASE_FILES[lo - 1:hi]
    except ValueError:
        pass
    raise UserError(f"unknown LiveCodeBench release {release!r}: use release_v1 .. "
                    f"release_v{count}, release_latest, v1 .. v{count} or a range like v5_v6")


def parse_day(value: str, option: str) -> datetime:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d")
    except ValueError:
        raise UserError(f"{option} must be a date like 2024-08-01 (got {value!r})") from None


def per_test_timeout(spec: TaskSpec) -> float:
    value = spec.option("timeout_per_test_s", DEFAULT_TIMEOUT_S)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not 0 < seconds < 3600:
        raise UserError(f"timeout_per_test_s must be a number of seconds > 0 (got {value!r})")
    return seconds


def contest_datetime(value: Any) -> datetime:
    """The row's contest date as a naive datetime: an ISO string in the release files, epoch
    milliseconds in some exports."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not a date")
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value / 1000, tz=UTC).replace(tzinfo=None)
    parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return parsed.replace(tzinfo=None)


def data_files(spec: TaskSpec, data: str | None) -> list[Path]:
    """The release files to read: from `--data` (a JSONL file, or a directory holding the
    release files) or downloaded from the hub."""
    names = release_files(str(spec.option("release", "release_v6")))
    if data:
        path = Path(data).expanduser()
        if path.is_file():
            return [path]
        if path.is_dir():
            missing = [n for n in names if not (path / n).is_file()]
            if missing:
                raise UserError(f"{path} lacks {', '.join(missing)} (needed by release "
                                f"{spec.option('release', 'release_v6')}); pass a JSONL file "
                                f"or a directory with the {HUB_REPO} release files")
            return [path / n for n in names]
        raise UserError(f"--data {data}: no such file or directory")
    try:
        from huggingface_hub import hf_hub_download

        return [Path(hf_hub_download(HUB_REPO, n, repo_type="dataset")) for n in names]
    except Exception as exc:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"cannot download {HUB_REPO} from the Hugging Face hub ({cause}); "
                        "pass --data PATH to a local copy of its test*.jsonl files") from None


def read_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset, raw line) for each non-blank line of a JSONL file."""
    with path.open("rb") as fh:
        offset = 0
        for lineno, line in enumerate(fh, 1):
            start, offset = offset, offset + len(line)
            if line.strip():
                yield lineno, start, line


def parse_row(line: bytes, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: expected a JSON object per line")
    return row


_CONTEST_DATE = re.compile(rb'"contest_date"\s*:\s*"([^"\\]*)"')


def peek_contest_date(line: bytes) -> datetime | None:
    """The contest date read without parsing the row, so that rows outside the window (most of
    a release, each up to tens of MB) are skipped cheaply; None when it cannot be read so.
    (Inside a JSON string the key's quotes would be escaped, so a match is the row's key.)"""
    match = _CONTEST_DATE.search(line)
    if match is None:
        return None
    try:
        return contest_datetime(match.group(1).decode("utf-8"))
    except ValueError:
        return None


def row_to_item(row: dict[str, Any], where: str, tests_ref: dict[str, Any]) -> Item:
    """An item without its test cases (they can be very large): `tests_ref` says where the
    row lies so that `problem_tests` reads them when grading."""
    missing = [f for f in REQUIRED_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        metadata = row["metadata"]
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    except json.JSONDecodeError as exc:
        raise DataError(f"{where}: metadata is not valid JSON ({exc.msg})") from None
    fn_name = metadata.get("func_name") if isinstance(metadata, dict) else None
    return Item(
        id=str(row["question_id"]),
        data={"title": row["question_title"], "content": row["question_content"],
              "starter_code": row["starter_code"] or "", "fn_name": fn_name,
              "contest_id": row.get("contest_id"), "contest_date": str(row["contest_date"]),
              "tests": tests_ref},
        meta={"platform": row["platform"], "difficulty": row["difficulty"]},
    )


def load_items(spec: TaskSpec, data: str | None) -> list[Item]:
    per_test_timeout(spec)
    start = parse_day(spec.option("start_date", "2024-08-01"), "start_date")
    end = parse_day(spec.option("end_date", "2025-05-01"), "end_date")
    items: list[Item] = []
    seen: dict[str, str] = {}
    for path in data_files(spec, data):
        for lineno, offset, line in read_lines(path):
            where = f"{path}:{lineno}"
            peeked = peek_contest_date(line)
            if peeked is not None and not start <= peeked <= end:
                continue
            row = parse_row(line, where)
            try:
                when = contest_datetime(row.get("contest_date"))
            except (TypeError, ValueError):
                raise DataError(f"{where}: contest_date {row.get('contest_date')!r} is not an "
                                "ISO date") from None
            if not start <= when <= end:
                continue
            tests_ref = {"file": str(path.resolve()), "offset": offset, "line": lineno,
                         "sha256": hashlib.sha256(line).hexdigest()}
            item = row_to_item(row, where, tests_ref)
            if item.id in seen:
                raise DataError(f"{where}: question_id {item.id} repeats {seen[item.id]}")
            seen[item.id] = where
            items.append(item)
    return items


# ---------------------------------------------------------------- test cases


class _PlainUnpickler(pickle.Unpickler):
    """The private tests pickle a plain string; refuse anything that would run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def decode_test_list(raw: Any) -> list[dict[str, Any]]:
    """A test list given as JSON, or as base64(zlib(pickle(JSON string)))."""
    if isinstance(raw, list):
        return raw
    try:
        decoded: list[dict[str, Any]] = json.loads(raw)
        return decoded
    except (json.JSONDecodeError, TypeError):
        pass
    packed = zlib.decompress(base64.b64decode(str(raw).encode("utf-8"), validate=True))
    unpacked: list[dict[str, Any]] = json.loads(_PlainUnpickler(io.BytesIO(packed)).load())
    return unpacked


@dataclass(frozen=True)
class ProblemTests:
    fn_name: str | None
    inputs: list[str]
    outputs: list[str]



class MalformedTests(ValueError):
    """An item's test cases cannot be decoded; the message names the question."""


def read_row_at(ref: dict[str, Any]) -> dict[str, Any]:
    """The dataset row an item came from, checked against the hash taken at load time."""
    where = f"{ref['file']}:{ref['line']}"
    try:
        with open(ref["file"], "rb") as fh:
            fh.seek(int(ref["offset"]))
            line = fh.readline()
    except OSError as exc:
        raise InfraError(f"cannot reread {where}: {exc}") from None
    if hashlib.sha256(line).hexdigest() != ref["sha256"]:
        raise InfraError(f"{where} changed since the items were loaded; reload the run")
    row: dict[str, Any] = json.loads(line)
    return row


@functools.lru_cache(maxsize=4)  # the k samples of an item are scored close together
def _load_tests(question_id: str, fn_name: str | None, file: str, offset: int, line: int,
                sha256: str) -> ProblemTests:
    row = read_row_at({"file": file, "offset": offset, "line": line, "sha256": sha256})
    try:
        tests = (decode_test_list(row["public_test_cases"])
                 + decode_test_list(row["private_test_cases"]))
        inputs = [str(t["input"]) for t in tests]
        outputs = [str(t["output"]) for t in tests]
    except Exception as exc:
        raise MalformedTests(f"malformed test cases for question {question_id} ({file}:{line}): "
                             f"{type(exc).__name__}: {str(exc)[:200]}") from None
    if not inputs:
        raise MalformedTests(f"question {question_id} ({file}:{line}) has no test cases")
    return ProblemTests(fn_name, inputs, outputs)


def problem_tests(item: Item) -> ProblemTests:
    """All tests of an item, public then private (the official order). `MalformedTests` names
    the question when they cannot be decoded; `InfraError` when the data file is gone."""
    ref = item.data["tests"]
    return _load_tests(item.id, item.data["fn_name"], ref["file"], int(ref["offset"]),
                       int(ref["line"]), ref["sha256"])


# ---------------------------------------------------------------- prompt and extraction

SYSTEM_PROMPT = ("You are an expert Python programmer. You will be given a question (problem "
                 "specification) and will generate a correct Python program that matches the "
                 "specification and passes all tests.")
WITH_STARTER_CODE = ("You will use the following starter code to write the solution to the "
                     "problem and enclose your code within delimiters.")
WITHOUT_STARTER_CODE = ("Read the inputs from stdin solve the problem and write the answer to "
                        "stdout (do not directly test on the sample inputs). Enclose your code "
                        "within delimiters as follows. Ensure that when the python program runs, "
                        "it reads the inputs, runs the algorithm and writes output to STDOUT.")


def user_prompt(content: str, starter_code: str) -> str:
    prompt = f"### Question:\n{content}\n\n"
    if starter_code:
        prompt += f"### Format: {WITH_STARTER_CODE}\n```python\n{starter_code}\n```\n\n"
    else:
        prompt += f"### Format: {WITHOUT_STARTER_CODE}\n```python\n# YOUR CODE HERE\n```\n\n"
    return prompt + "### Answer: (use the provided format with backticks)\n\n"


def extract_code(text: str) -> str | None:
    """The lines between the last two lines containing ```; None if there are fewer than two."""
    lines = text.split("\n")
    fences = [i for i, line in enumerate(lines) if "```" in line]
    if len(fences) < 2:
        return None
    return "\n".join(lines[fences[-2] + 1:fences[-1]])


# ---------------------------------------------------------------- grading


@dataclass
class Verdict:
    """The outcome of running one program against its tests."""

    verdict: str
    n_tests: int
    failed_test: int | None = None
    message: str = ""
    timings: list[float] = field(default_factory=list)
    shown: dict[str, str] = field(default_factory=dict)
    """Truncated input / expected / output of the failing test."""

    @property
    def passed(self) -> bool:
        return self.verdict == "passed"

    def details(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "n_tests": self.n_tests, "failed_test": self.failed_test,
                "tests_run": len(self.timings), "timings": self.timings,
                "message": self.message, **self.shown}


def global_timeout(n_tests: int, timeout: float) -> float:
    """The official grader's hard limit for one program: (timeout + 1) per test, plus 5 s."""
    return (timeout + 1) * n_tests + 5


def read_verdict(result: ExecResult, n_tests: int, limit: float) -> Verdict:
    """Parse the runner's JSON lines; a killed or crashed runner is a failing verdict."""
    timings: list[float] = []
    final: dict[str, Any] | None = None
    for line in result.stdout.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            continue
        if "test" in record:
            timings.append(float(record.get("time", 0.0)))
        elif record.get("done"):
            final = record
    if final is not None:
        shown: dict[str, str] = {k: str(final[k]) for k in ("input", "expected", "output")
                                 if k in final}
        return Verdict(str(final["verdict"]), n_tests, final.get("failed_test"),
                       str(final.get("message", "")), timings, shown)
    if result.timed_out:
        return Verdict("time limit", n_tests, len(timings),
                       f"killed after the {limit:.0f} s limit for the whole program", timings)
    cause = "killed: out of memory" if result.oom_killed else f"exit status {result.exit_code}"
    tail = result.stderr.strip().splitlines()[-1:] or [""]
    return Verdict("runtime error", n_tests, len(timings), f"{cause} {tail[0]}".strip(), timings)


def runner_job(code: str, tests: ProblemTests, timeout: float) -> tuple[list[str], bytes]:
    """The command and stdin that grade `code`: the runner source travels as `python3 -c`
    and the job as stdin, so one exec does everything."""
    job = {"code": code, "fn_name": tests.fn_name, "timeout": timeout,
           "inputs": tests.inputs, "outputs": tests.outputs}
    return ["python3", "-c", RUNNER_SOURCE], json.dumps(job).encode("utf-8")


async def run_tests(sandbox: Sandbox, code: str, tests: ProblemTests, timeout: float) -> Verdict:
    """Run `code` against `tests` in one sandbox session."""
    argv, stdin = await asyncio.to_thread(runner_job, code, tests, timeout)
    limit = global_timeout(len(tests.inputs), timeout)
    result = await sandbox.exec(argv, timeout=limit, stdin=stdin)
    return read_verdict(result, len(tests.inputs), limit)


# ---------------------------------------------------------------- adapter


class LiveCodeBenchAdapter(Adapter):
    name: ClassVar[str] = "livecodebench"
    needs_sandbox: ClassVar[bool] = True

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        return load_items(spec, data)

    def item_image(self, item: Item, spec: TaskSpec) -> str | None:
        """A configured full tag (a shipped name such as `python` is built on each node)."""
        image = spec.sandbox_image
        return image if image and (":" in image or "/" in image) else None

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user_prompt(item.data["content"],
                                                    item.data["starter_code"])},
        ]
        completion = await ctx.chat(messages)
        return SolveResult(messages=[*messages, completion.as_message()],
                           output={"finish_reason": completion.finish_reason})

    def headline(self, items: list[Item], scores: list[Score], k: int) -> dict[str, Any] | None:
        """Pass@1 (unbiased, c/n per problem) whatever the number of samples n; the summary's
        `pass_at_k` adds pass@5 when n >= 5. Breakdowns (platform, difficulty) use the
        default per-`meta` mean, which is the same pass@1."""
        from k2eval.scoring import group_by_item, summarize_metric

        return {**summarize_metric("pass@k", group_by_item(scores), 1), "metric_label": "Pass@1"}

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        def failing(reason: str, **details: Any) -> Score:
            return Score(item.id, attempt.index, 0.0, reason=reason,
                         details={**details, **item.meta})

        code = extract_code(final_reply(attempt, "response"))
        if code is None:
            return failing("no code block", verdict="no code block")
        try:  # rows can be tens of MB: decode off the event loop
            tests = await asyncio.to_thread(problem_tests, item)
        except MalformedTests as exc:
            return failing(str(exc), verdict="malformed tests")
        timeout = per_test_timeout(ctx.spec)
        try:
            # Warm pool: each generation's tests need a clean, not a new, container.
            async with ctx.sandbox(reuse=True) as sandbox:
                verdict = await run_tests(sandbox, code, tests, timeout)
        except UserError:
            raise
        except Exception as exc:
            raise InfraError(f"sandbox failed while grading {item.id}: {exc}") from exc
        reason = verdict.verdict if verdict.passed else (
            f"{verdict.verdict} on test {verdict.failed_test}" if verdict.failed_test is not None
            else f"{verdict.verdict}: {verdict.message}")
        return Score(item.id, attempt.index, 1.0 if verdict.passed else 0.0, reason=reason,
                     details={**verdict.details(), **item.meta})
