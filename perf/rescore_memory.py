"""Peak memory of `k2eval rescore` against the size of the journal it regrades.

Makes a real AIME 2025 run (k attempts per item against a local server), then pads every
transcript's reply so that attempts.jsonl reaches --journal-mb, and runs `k2eval rescore` on
it in a fresh process, printing its peak resident memory as a multiple of the journal's size.
With --baseline PATH (a checkout of another k2eval version) the same rescore runs on that
code too, in the same script, and both scores are checked to agree.

    python perf/rescore_memory.py [--journal-mb 300] [--k 8] [--baseline /tmp/k2eval-old]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scripted_server import AIME, REPO, scripted_server

MEASURE = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
if done.returncode != 0:
    sys.exit(done.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def make_run(out: Path, k: int) -> Path:
    with scripted_server() as url:
        env = {**os.environ, "OPENAI_API_KEY": "sk-perf", "PYTHONPATH": str(REPO)}
        subprocess.run([sys.executable, "-m", "k2eval.cli", "run", "--task", "aime2025",
                        "--model", "openai:m", "--base-url", url, "--data", str(AIME), "--k",
                        str(k), "--out", str(out), "--run-id", "run", "--no-progress"],
                       env=env, check=True, capture_output=True)
    return out / "run"


def pad_journal(run_dir: Path, journal_mb: float) -> int:
    """Pad each reply (before its answer) so that the journal reaches `journal_mb`."""
    path = run_dir / "attempts.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines()]
    per_row = int(journal_mb * 1e6 / len(rows))
    with path.open("w") as fh:
        for row in rows:
            reply = row["messages"][-1]
            reply["content"] = "reasoning " * (per_row // 10) + reply["content"]
            fh.write(json.dumps(row) + "\n")
    return path.stat().st_size


def rescore_peak(run_dir: Path, code: Path) -> tuple[int, float]:
    """Peak RSS (bytes) of `k2eval rescore` run from `code`, and the score it gave. (It runs
    outside the checkout: `python -m` would import the package in the working directory.)"""
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, "-c", MEASURE, sys.executable, "-m", "k2eval.cli",
                          "rescore", str(run_dir), "--no-progress"], env=env,
                         capture_output=True, text=True, check=True, cwd=run_dir.parent)
    score = json.loads((run_dir / "summary.json").read_text())["score"]
    return int(out.stdout.strip()) * 1024, float(score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--journal-mb", type=float, default=300)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--baseline", type=Path, help="a checkout of another k2eval version")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = make_run(Path(tmp), args.k)
        size = pad_journal(run_dir, args.journal_mb)
        print(f"journal: {size / 1e6:.0f} MB, {30 * args.k} attempts")
        trees = [("this tree", REPO)] + ([("baseline", args.baseline)] if args.baseline else [])
        scores = []
        for label, code in trees:
            peak, score = rescore_peak(run_dir, code)
            scores.append(score)
            print(f"{label:>10}: peak RSS {peak / 1e6:7.0f} MB = {peak / size:.2f}x the journal"
                  f" (score {score:.2f})")
        if len(set(scores)) > 1:
            raise SystemExit(f"the scores differ: {scores}")


if __name__ == "__main__":
    main()
