"""OJBench (Wang et al., 2025, arXiv:2506.16395), as judged by its official judger.

Data: `OJBench_testdata` (the Hugging Face dataset He-Ren/OJBench_testdata): `prompts/full.jsonl`
(one row per problem and language: `id`, `prompt`, `dataset` NOI|ICPC, `language` cpp|python,
`difficulty`) and the problems in DMOJ's format (`init.yml` + cases) under `NOI/` and `ICPC/`.
Prompt: the row's `prompt`, sent as the only user message. Extraction: OJBench's `proc_code`.
Grading: the DMOJ judge (`ojbench_judge.py`, inside the `ojbench` sandbox image) as OJBench's
`judger.judge`: executor CPP17 (g++) for cpp, PYPY3 for python; 10 s and 1 GiB per case; the
program compiled once, then every case judged (no early stop); a submission passes when every
case is AC. The verdicts "at 1/8, 1/4, 1/2" are OJBench's `verdict_after_scale`: the verdict
had only the first round(n x ratio) cases been judged. Headline: Pass@1 per language and the
mean of the two (which language the Kimi K2 report used is not stated).

Rules kept from the official code:
- an integer `id` names problem `loj-<id>`; `nwerc2023_H`, `swerc2023_L` and `loj-3897` are
  skipped by the judge: loaded, not judged, and not passed (verdict "Skip"), as the judger's
  output has them;
- `proc_code`: the text after the last "```<language>\\n" up to the next "\\n```"; without such
  a fence, the reply up to its first "\\n```"; a `def main():` that is never called gets a
  call appended;
- a problem is looked up by id in NOI/ then ICPC/, and a missing one stops loading.

Choices, where the official code leaves room:
- DMOJ is the PyPI release 4.1.0 (the version OJBench's requirements pin). OJBench's README
  installs judge-server commit f098cd3, which still calls itself 4.1.0 but is two years newer
  (a reworked GCC executor with the same flags, test input passed as a memfd, typing). Both
  APIs are handled, and both give the same verdicts on every hand-written submission
  (tests/ojbench/test_ojbench_reference_judge.py, opt-in); they could differ elsewhere.
- A judge internal error (IE: a crashing checker, a broken problem, an executor failing its
  self-test) or a judge that does not finish is an infrastructure error (Score status
  "error", retried by rescore), never a failed submission; the official judger would count
  it as not passed.
- Each judging loads and self-tests both executors (the official workers do it once) and
  compiles without the official cross-worker compile lock: with more concurrent sandboxes
  than cores a compile can reach DMOJ's compiler limits (10 s CPU, 30 s wall).
- Each submission is judged in a sandbox container (network off, non-root, 1 CPU, 4 GiB of
  memory for the 1 GiB programs plus the judge and compiler) that holds only its problem's
  directory; DMOJ's own ptrace sandbox runs inside it.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import math
import sys
import tarfile
import zipfile
from collections import Counter, defaultdict
from dataclasses import dataclass, fields
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
from k2eval.errors import ConfigError, DataError, InfraError, UserError

if TYPE_CHECKING:
    from k2eval.sandbox import Sandbox
    from k2eval.spec import RunConfig, TaskSpec

HUB_REPO = "He-Ren/OJBench_testdata"
PROMPTS_FILE = "prompts/full.jsonl"
PROBLEM_SETS = ("NOI", "ICPC")
EXECUTORS = {"cpp": "CPP17", "python": "PYPY3"}
DIFFICULTIES = ("easy", "medium", "hard")
SKIPPED_IDS = frozenset({"nwerc2023_H", "swerc2023_L", "loj-3897"})
SCALES = (8, 4, 2)
"""OJBench reports verdicts on the first 1/8, 1/4 and 1/2 of the cases."""
RUNTIME_PATHS = {"g++17": "/usr/bin/g++", "pypy3": "/usr/bin/pypy3"}
REQUIRED_FIELDS = ("id", "prompt", "dataset", "language", "difficulty")
SANDBOX_WORKDIR = "/work/problems"

JUDGE_SOURCE = Path(__file__).with_name("ojbench_judge.py").read_text(encoding="utf-8")


# ---------------------------------------------------------------- settings


def _words(value: Any) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(str(v).strip() for v in items if str(v).strip())


@dataclass(frozen=True)
class OJBenchSettings:
    """Task options. Filters take a list or a comma-separated string."""

    languages: tuple[str, ...] = ("cpp", "python")
    datasets: tuple[str, ...] = PROBLEM_SETS
    difficulties: tuple[str, ...] = DIFFICULTIES
    time_limit_s: float = 10.0
    """Per case, as officially; lower it only for quick checks (it is recorded)."""
    memory_limit_mb: int = 1024
    sandbox_memory_mb: int = 4096
    sandbox_disk_mb: int = 2048
    """Size of the container's scratch tmpfs, which holds the problem's cases (in memory: they
    count towards `sandbox_memory_mb` too)."""

    @classmethod
    def from_spec(cls, spec: TaskSpec) -> OJBenchSettings:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = spec.option(f.name)
            if raw is None:
                continue
            default = getattr(cls(), f.name)
            try:
                values[f.name] = _words(raw) if isinstance(default, tuple) else type(default)(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"option {f.name} must be a {type(default).__name__}, "
                                  f"got {raw!r}") from None
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        for name, allowed in (("languages", tuple(EXECUTORS)), ("datasets", PROBLEM_SETS),
                              ("difficulties", DIFFICULTIES)):
            unknown = sorted(set(getattr(self, name)) - set(allowed))
            if unknown or not getattr(self, name):
                raise ConfigError(f"option {name}: use one or more of {', '.join(allowed)} "
                                  f"(got {', '.join(getattr(self, name)) or 'nothing'})")
        if not 0 < self.time_limit_s <= 60:
            raise ConfigError(f"option time_limit_s must be in (0, 60] (got {self.time_limit_s})")
        if self.sandbox_disk_mb < 1:
            raise ConfigError(f"option sandbox_disk_mb must be >= 1 (got {self.sandbox_disk_mb})")
        if not 16 <= self.memory_limit_mb < self.sandbox_memory_mb:
            raise ConfigError("option memory_limit_mb must be >= 16 and below sandbox_memory_mb "
                              f"(got {self.memory_limit_mb} and {self.sandbox_memory_mb})")

    def differences(self) -> dict[str, Any]:
        """Settings that depart from the official judge, for the run's conditions."""
        out: dict[str, Any] = {}
        if self.time_limit_s != 10.0:
            out["time_limit_s"] = self.time_limit_s
        if self.memory_limit_mb != 1024:
            out["memory_limit_mb"] = self.memory_limit_mb
        return out


# ---------------------------------------------------------------- data


def data_root(data: str | None) -> Path:
    """The OJBench_testdata folder: `--data`, or a snapshot of the hub dataset."""
    if data:
        root = Path(data).expanduser()
        if not root.is_dir():
            raise UserError(f"--data {data}: expected an OJBench_testdata folder "
                            f"(with {PROMPTS_FILE}, NOI/ and ICPC/)")
    else:
        try:
            from huggingface_hub import snapshot_download

            root = Path(snapshot_download(HUB_REPO, repo_type="dataset"))
        except Exception as exc:
            cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
            raise UserError(f"cannot download {HUB_REPO} from the Hugging Face hub ({cause}); "
                            "pass --data PATH to a local clone (git lfs) of it") from None
    if not (root / PROMPTS_FILE).is_file():
        raise UserError(f"{root} has no {PROMPTS_FILE}: pass the OJBench_testdata folder itself")
    return root


def problem_id(raw: Any) -> str:
    """The judge's name for a row's id: integer ids are LOJ problems `loj-<id>`."""
    if isinstance(raw, bool):
        raise TypeError("a boolean is not a problem id")
    return f"loj-{raw}" if isinstance(raw, int) else str(raw)


def find_problem(root: Path, pid: str) -> Path | None:
    """The problem's directory, searched in NOI/ then ICPC/ as the judge's problem roots."""
    for name in PROBLEM_SETS:
        candidate = root / name / pid
        if (candidate / "init.yml").is_file():
            return candidate
    return None


def row_to_item(row: dict[str, Any], root: Path, where: str) -> Item:
    missing = [f for f in REQUIRED_FIELDS if f not in row]
    if missing:
        raise DataError(f"{where}: missing field(s) {', '.join(missing)}")
    try:
        pid = problem_id(row["id"])
    except TypeError:
        raise DataError(f"{where}: id {row['id']!r} is neither a string nor an integer") from None
    language = str(row["language"])
    skipped = pid in SKIPPED_IDS
    directory = find_problem(root, pid)
    if directory is None and not skipped:
        raise DataError(f"{where}: problem {pid} has no directory with an init.yml under "
                        f"{root / 'NOI'} or {root / 'ICPC'}")
    return Item(
        id=f"{pid}:{language}",
        data={"problem_id": pid, "prompt": str(row["prompt"]), "language": language,
              "problem_dir": str(directory.resolve()) if directory else None,
              "skipped": skipped},
        meta={"dataset": str(row["dataset"]), "language": language,
              "difficulty": str(row["difficulty"])},
    )


def load_items(spec: TaskSpec, data: str | None) -> list[Item]:
    settings = OJBenchSettings.from_spec(spec)
    root = data_root(data)
    path = root / PROMPTS_FILE
    items: list[Item] = []
    seen: dict[str, str] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{where}: expected a JSON object per line")
            if str(row.get("language")) not in EXECUTORS:
                raise DataError(f"{where}: language {row.get('language')!r} is not one of "
                                f"{', '.join(EXECUTORS)}")
            if (str(row.get("language")) not in settings.languages
                    or str(row.get("dataset")) not in settings.datasets
                    or str(row.get("difficulty")) not in settings.difficulties):
                continue
            item = row_to_item(row, root, where)
            if item.id in seen:
                raise DataError(f"{where}: problem {item.data['problem_id']} in "
                                f"{item.data['language']} repeats {seen[item.id]}")
            seen[item.id] = where
            items.append(item)
    return items


# ---------------------------------------------------------------- extraction


def proc_code(reply: str, language: str) -> str:
    """OJBench's code extraction (`judger_utils.proc_code`), rule for rule."""
    code = reply.split(f"```{language}\n")[-1].split("\n```")[0]
    if code.count("def main():") == 1 and code.count("main()") == 1:
        code += "\nmain()"
    return code


# ---------------------------------------------------------------- verdicts


def verdict_after_scale(final: str, case_verdicts: list[str], ratio: float) -> str:
    """OJBench's `Result.verdict_after_scale`: the verdict over the first round(n x ratio)
    cases (no cases, e.g. a compile error: the final verdict)."""
    if not case_verdicts:
        return final
    first_failure = next((i for i, v in enumerate(case_verdicts) if v != "AC"),
                         len(case_verdicts))
    return final if first_failure < round(len(case_verdicts) * ratio) else "AC"


def scale_verdicts(final: str, case_verdicts: list[str]) -> dict[str, str]:
    return {f"1/{d}": verdict_after_scale(final, case_verdicts, 1 / d) for d in SCALES}


@dataclass(frozen=True)
class Judgement:
    """What the judge said about one submission."""

    verdict: str
    cases: list[dict[str, Any]]
    message: str = ""
    compile_s: float | None = None
    judge_s: float | None = None

    @property
    def case_verdicts(self) -> list[str]:
        return [str(c["verdict"]) for c in self.cases]

    def details(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "scale_verdicts": scale_verdicts(self.verdict,
                                                                         self.case_verdicts),
                "case_verdicts": self.case_verdicts, "cases": self.cases,
                "message": self.message, "compile_s": self.compile_s, "judge_s": self.judge_s}


def read_judgement(stdout: str) -> Judgement | None:
    """The judge's result line (its last JSON line), or None when there is none."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "verdict" in record:
            return Judgement(str(record["verdict"]), list(record.get("cases") or []),
                             str(record.get("message", "")), record.get("compile_s"),
                             record.get("judge_s"))
    return None


# ---------------------------------------------------------------- judging


def judge_job(pid: str, language: str, source: str, problem_dirs: list[str],
              settings: OJBenchSettings) -> dict[str, Any]:
    """The job `ojbench_judge.py` reads on stdin."""
    return {"problem_dirs": problem_dirs, "problem_id": pid, "executor": EXECUTORS[language],
            "executors": sorted(EXECUTORS.values()), "source": source,
            "time_limit": settings.time_limit_s, "memory_limit_kb": settings.memory_limit_mb * 1024,
            "runtime": RUNTIME_PATHS}


@functools.lru_cache(maxsize=4)  # both languages and the k samples of a problem come together
def _problem_archive(directory: str, stamp: float) -> tuple[bytes, int]:
    """A tar of the problem directory (named after it) and how many files it holds, zip
    members included (a bound on the number of cases)."""
    root = Path(directory)
    buffer = io.BytesIO()
    files = 0
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(root, arcname=root.name)
    for path in root.rglob("*"):
        if path.is_file():
            files += 1
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    files += len(archive.namelist())
    return buffer.getvalue(), files


def problem_archive(directory: str) -> tuple[bytes, int]:
    return _problem_archive(directory, Path(directory, "init.yml").stat().st_mtime)


def judge_timeout(files: int, settings: OJBenchSettings) -> float:
    """A bound on the whole judging: executor self-tests and compilation, then per case DMOJ's
    wall-clock limit (3x the time limit) plus a checker; reaching it means the judge hung."""
    return 180.0 + files * (3 * settings.time_limit_s + 20.0)


async def judge_in_sandbox(sandbox: Sandbox, item: Item, source: str,
                           settings: OJBenchSettings) -> Judgement:
    """Copy the problem into the sandbox and judge `source` there (one compile, every case)."""
    archive, files = await asyncio.to_thread(problem_archive, item.data["problem_dir"])
    if len(archive) > (settings.sandbox_disk_mb << 20) // 2:
        raise InfraError(f"problem {item.data['problem_id']} holds {len(archive) / 2**20:.1f} "
                         f"MB of data, too much for a {settings.sandbox_disk_mb} MB scratch space: "
                         "raise --option sandbox_disk_mb (and sandbox_memory_mb by as much)")
    unpacked = await sandbox.exec(["sh", "-c", f"mkdir -p {SANDBOX_WORKDIR} && "
                                   f"tar -x -C {SANDBOX_WORKDIR}"], timeout=600, stdin=archive)
    if unpacked.exit_code != 0:
        raise InfraError(f"cannot copy problem {item.data['problem_id']} into the sandbox "
                         f"(exit {unpacked.exit_code}): {unpacked.stderr.strip()[-300:]}")
    job = judge_job(item.data["problem_id"], item.data["language"], source, [SANDBOX_WORKDIR],
                    settings)
    limit = judge_timeout(files, settings)
    result = await sandbox.exec(["python3", "-c", JUDGE_SOURCE], timeout=limit,
                                stdin=json.dumps(job).encode("utf-8"))
    judgement = read_judgement(result.stdout)
    if judgement is None:
        cause = (f"did not finish within {limit:.0f} s" if result.timed_out
                 else "was killed: out of memory" if result.oom_killed
                 else f"exited {result.exit_code} without a verdict")
        tail = result.stderr.strip().splitlines()[-3:]
        raise InfraError(f"the judge {cause} on {item.id}: {' | '.join(tail)}"[:600])
    return judgement


async def judge_on_host(item: Item, source: str, settings: OJBenchSettings,
                        problem_dirs: list[str]) -> Judgement:
    """The reference the sandbox is checked against: the same judge run directly on this
    machine (unisolated; needs `dmoj`, g++ and pypy3 installed), on the problems in place."""
    job = judge_job(item.data["problem_id"], item.data["language"], source, problem_dirs, settings)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "k2eval.adapters.ojbench_judge", stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(json.dumps(job).encode("utf-8"))
    judgement = read_judgement(out.decode("utf-8", "replace"))
    if judgement is None:
        raise InfraError(f"the host judge gave no verdict on {item.id}: "
                         f"{err.decode('utf-8', 'replace').strip()[-600:]}")
    return judgement


# ---------------------------------------------------------------- adapter


class OJBenchAdapter(Adapter):
    name: ClassVar[str] = "ojbench"
    needs_sandbox: ClassVar[bool] = True

    def load(self, spec: TaskSpec, data: str | None) -> list[Item]:
        return load_items(spec, data)

    async def solve(self, item: Item, ctx: AttemptContext) -> SolveResult:
        messages: list[dict[str, Any]] = [{"role": "user", "content": item.data["prompt"]}]
        completion = await ctx.chat(messages)
        return SolveResult(messages=[*messages, completion.as_message()],
                           output={"finish_reason": completion.finish_reason})

    def conditions(self, config: RunConfig) -> dict[str, Any]:
        """Limits that depart from the official 10 s / 1 GiB, when a run sets them."""
        return OJBenchSettings.from_spec(config.task).differences()

    async def score(self, item: Item, attempt: Attempt, ctx: ScoreContext) -> Score:
        meta = {**item.meta, "problem_id": item.data["problem_id"]}
        if item.data["skipped"]:
            return Score(item.id, attempt.index, 0.0, reason="skipped by the official judge",
                         details={"verdict": "Skip", "skipped": True, **meta})
        settings = OJBenchSettings.from_spec(ctx.spec)
        source = proc_code(final_reply(attempt, "response"), item.data["language"])
        try:
            async with ctx.sandbox(reuse=True, memory_mb=settings.sandbox_memory_mb,
                                   disk_mb=settings.sandbox_disk_mb, cpus=1.0) as sandbox:
                judgement = await judge_in_sandbox(sandbox, item, source, settings)
        except (UserError, InfraError):
            raise
        except Exception as exc:
            raise InfraError(f"sandbox failed while judging {item.id}: {exc}") from exc
        details = {**judgement.details(), "code_chars": len(source), **meta}
        if judgement.verdict == "IE":
            return Score(item.id, attempt.index, 0.0, status="error",
                         reason=f"judge internal error: {judgement.message or 'see cases'}"[:500],
                         details=details)
        passed = judgement.verdict == "AC"
        reason = "AC" if passed else _failure_reason(judgement)
        return Score(item.id, attempt.index, 1.0 if passed else 0.0, reason=reason,
                     details=details)

    def headline(self, items: list[Item], scores: list[Score], k: int) -> dict[str, Any] | None:
        """Pass@1 per language and, as the headline, their mean (the K2 report does not say
        which language it used). CI and stderr are those of all items pooled."""
        from k2eval.scoring import group_by_item, summarize_metric

        by_item = group_by_item(scores)
        language = {it.id: it.meta["language"] for it in items}
        per_language: dict[str, dict[str, Any]] = {}
        for lang in sorted(set(language.values())):
            subset = {i: s for i, s in by_item.items() if language.get(i) == lang}
            per_language[lang] = summarize_metric("pass@k", subset, 1)
        pooled = summarize_metric("pass@k", by_item, 1)
        values = [v["score"] for v in per_language.values() if v["score"] is not None]
        score = round(sum(values) / len(values), 4) if values else None
        return {**pooled, "score": score, "metric_label": "Pass@1",
                "by_language": {lang: v["score"] for lang, v in per_language.items()}}

    def breakdowns(self, items: list[Item], scores: list[Score]) -> dict[str, Any]:
        """By dataset, language and difficulty (Pass@1), plus per language the pass rates at
        OJBench's 1/8, 1/4 and 1/2 scales and the verdict counts."""
        from k2eval.scoring import breakdown_by_meta

        out = breakdown_by_meta(items, scores, keys=("dataset", "language", "difficulty"))
        language = {it.id: it.meta["language"] for it in items}
        scaled: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        verdicts: dict[str, Counter[str]] = defaultdict(Counter)
        for s in scores:
            if s.status != "ok" or s.item_id not in language:
                continue
            lang = language[s.item_id]
            verdict = str(s.details.get("verdict", ""))
            verdicts[lang][verdict] += 1
            at_scale = s.details.get("scale_verdicts") or {}
            for d in SCALES:
                scaled[lang][f"1/{d}"].append(float(at_scale.get(f"1/{d}", verdict) == "AC"))
            scaled[lang]["1"].append(float(verdict == "AC"))
        out["scales"] = {lang: {name: round(100 * math.fsum(v) / len(v), 4)
                                for name, v in by_scale.items()}
                         for lang, by_scale in sorted(scaled.items())}
        out["verdicts"] = {lang: dict(sorted(c.items())) for lang, c in sorted(verdicts.items())}
        return out


def _failure_reason(judgement: Judgement) -> str:
    if not judgement.cases:
        first = judgement.message.strip().splitlines()[:1]
        return f"{judgement.verdict}: {first[0][:200]}" if first else judgement.verdict
    failed = next((i for i, v in enumerate(judgement.case_verdicts) if v != "AC"), 0)
    return f"{judgement.verdict} on case {failed + 1} of {len(judgement.cases)}"
