"""Opt-in: the judge on the DMOJ that OJBench's README installs (judge-server commit f098cd3,
which is not on PyPI) gives the same verdicts as the shipped DMOJ 4.1.0, submission by
submission and case by case.

Build it once and point the test at it:
    git clone https://github.com/DMOJ/judge-server && git -C judge-server checkout f098cd3
    DMOJ_REDIST=1 pip install --no-deps --target /opt/dmoj-f098cd3 ./judge-server
    K2EVAL_OJBENCH_REFERENCE_DMOJ=/opt/dmoj-f098cd3 pytest tests/ojbench -k reference
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from oj_solutions import FIXTURE_DATA, SUBMISSIONS

from k2eval.adapters.ojbench import Judgement, OJBenchSettings, judge_job, read_judgement
from k2eval.spec import load_task

REFERENCE_ENV = "K2EVAL_OJBENCH_REFERENCE_DMOJ"
REPO = Path(__file__).resolve().parents[2]
SETTINGS = OJBenchSettings.from_spec(load_task("ojbench").with_overrides(
    options={"time_limit_s": 6}))


def judge_with(dmoj_path: str | None, key: tuple[str, str, str]) -> Judgement:
    """The judge module run on the host with the DMOJ found first on `dmoj_path`."""
    job = judge_job(key[0], key[1], SUBMISSIONS[key][0],
                    [str(FIXTURE_DATA / "NOI"), str(FIXTURE_DATA / "ICPC")], SETTINGS)
    path = [p for p in (dmoj_path, str(REPO), os.environ.get("PYTHONPATH")) if p]
    done = subprocess.run([sys.executable, "-m", "k2eval.adapters.ojbench_judge"],
                          input=json.dumps(job).encode(), capture_output=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(path)})
    judgement = read_judgement(done.stdout.decode())
    assert judgement is not None, done.stderr.decode()[-2000:]
    return judgement


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get(REFERENCE_ENV),
                    reason=f"set {REFERENCE_ENV} to a DMOJ f098cd3 install (see the docstring)")
def test_the_readmes_dmoj_commit_gives_the_same_verdicts_as_the_shipped_release(
        host_judge: None) -> None:
    reference = os.environ[REFERENCE_ENV]
    probe = subprocess.run([sys.executable, "-c", "import dmoj.problem as p; "
                            "print(p.__file__, hasattr(p.Problem, 'cases'))"],
                           capture_output=True, text=True, env={**os.environ,
                                                                "PYTHONPATH": reference})
    assert probe.stdout.strip().endswith("True"), f"{reference} is not a DMOJ newer than 4.1.0"
    keys = list(SUBMISSIONS)
    with ThreadPoolExecutor(2) as pool:
        shipped = list(pool.map(lambda key: judge_with(None, key), keys))
        pinned = list(pool.map(lambda key: judge_with(reference, key), keys))
    for key, ours, theirs in zip(keys, shipped, pinned, strict=True):
        assert (ours.verdict, ours.case_verdicts) == (theirs.verdict, theirs.case_verdicts), key
        assert theirs.verdict == SUBMISSIONS[key][1], key
