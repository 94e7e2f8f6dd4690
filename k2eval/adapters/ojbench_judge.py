"""Judge one OJBench submission with the DMOJ judge, as OJBench's `judger.judge` does.

Standalone: it needs only the standard library and the `dmoj` package, so that it runs both
inside the `ojbench` sandbox image (sent as `python3 -c`) and directly on a host with DMOJ
installed (`python3 -m k2eval.adapters.ojbench_judge`, the reference the sandbox is checked
against). The job is one JSON object on stdin:

    {"problem_dirs": [...], "problem_id": "...", "executor": "CPP17" | "PYPY3",
     "source": "...", "time_limit": 10, "memory_limit_kb": 1048576,
     "runtime": {"g++17": "/usr/bin/g++", "pypy3": "/usr/bin/pypy3"}}

and the result the last line of stdout: `{"verdict": ..., "cases": [...], "phase": ...}`.

What it mirrors: the executor self-tests run (`skip_self_test` off), the contrib modules are
loaded, the program is compiled once (building the grader), then every case is graded with no
early stop. A compile error, internal error, output limit or invalid command while compiling
gives CE / IE / OLE / IE and no cases; an exception while grading a case is that case's IE. The
final verdict is the first non-AC case's main code (DMOJ's display order IE, TLE, MLE, OLE,
RTE, IR, WA, SC), else AC. Everything DMOJ prints goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any

FEEDBACK_CHARS = 500


def _configure(job: dict[str, Any]) -> None:
    import dmoj.judgeenv as judgeenv
    from dmoj.contrib import load_contrib_modules
    from dmoj.executors import executors, load_executors

    judgeenv._problem_dirs_cache = list(job["problem_dirs"])
    judgeenv.skip_self_test = False
    judgeenv.only_executors = set(job["executors"])
    judgeenv.env.update({"runtime": dict(job["runtime"])})
    load_executors()
    if job["executor"] not in executors:
        raise RuntimeError(f"DMOJ executor {job['executor']} failed its self-test or is missing "
                           f"(runtime paths {job['runtime']})")
    load_contrib_modules()


def _case_record(case: Any, result: Any) -> dict[str, Any]:
    codes = list(result.readable_codes())
    return {
        "position": getattr(case, "position", None),
        "in_file": case.config.get("in"),
        "verdict": codes[0],
        "codes": codes,
        "time": result.execution_time,
        "wall_time": result.wall_clock_time,
        "memory_kb": result.max_memory,
        "feedback": str(result.feedback or "")[:FEEDBACK_CHARS],
    }


def judge(job: dict[str, Any]) -> dict[str, Any]:
    from dmoj.error import CompileError, InternalError, InvalidCommandException, OutputLimitExceeded
    from dmoj.problem import Problem
    from dmoj.result import Result

    started = time.monotonic()
    _configure(job)
    problem = Problem(job["problem_id"], job["time_limit"], job["memory_limit_kb"], {})
    verdict, message = "AC", ""
    try:
        grader = problem.grader_class(judge=None, problem=problem, language=job["executor"],
                                      source=job["source"])
    except CompileError as exc:
        verdict, message, grader = "CE", str(exc.args[0] if exc.args else exc), None
    except (InternalError, InvalidCommandException) as exc:
        verdict, message, grader = "IE", f"{type(exc).__name__}: {exc}", None
    except OutputLimitExceeded as exc:
        verdict, message, grader = "OLE", f"compiler output limit exceeded: {exc}", None
    compiled = time.monotonic()
    cases: list[dict[str, Any]] = []
    if grader is not None:
        # DMOJ after 4.1.0 lists cases on the problem, 4.1.0 on the grader.
        listed = problem.cases() if hasattr(problem, "cases") else grader.cases()
        for case in listed:
            try:
                result = grader.grade(case)
            except Exception as exc:  # as the reference: the case is an internal error
                result = Result(case, result_flag=Result.IE,
                                feedback=f"Exception {type(exc).__name__}: {exc}")
            record = _case_record(case, result)
            if verdict == "AC":
                verdict = record["verdict"]
            cases.append(record)
    return {"verdict": verdict, "message": message[:2000], "cases": cases,
            "compile_s": round(compiled - started, 3),
            "judge_s": round(time.monotonic() - compiled, 3)}


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    real_stdout = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # DMOJ and the executors' self-tests print; keep stdout for the result
    sys.stdout = sys.stderr
    try:
        outcome = judge(job)
    except Exception as exc:
        outcome = {"verdict": "IE", "phase": "setup", "cases": [],
                   "message": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc(limit=6)[-2000:]}
    real_stdout.write(json.dumps(outcome) + "\n")
    real_stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
