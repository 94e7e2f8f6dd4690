"""File-level recall of agentless localisation on SWE-bench Verified, from release sources.

Instance images are not needed: each instance's repository is read from a source
distribution (sdist) of its project at the instance's version (`pip download --no-deps
--no-binary :all: Django==3.0 -d DIR`), which is close to, but not, the base commit. The
gold files are those the gold patch edits (that exist in the sdist). Printed per repository
and version, as recall (gold files found / gold files) and the share of instances with every
gold file found:

- `bm25@27k`: the files the one-call `localization: bm25` mode shows (BM25 top files filling
  27000 tokens);
- `bm25@3`: the retrieval half of the agentless combination (BM25 top 3);
- `structure`: gold files listed in the structure the model ranks from (60000 tokens);
- with `--model`: `model@5` (the files the model lists from the structure, step 1 for real)
  and `combined@3` (the three files the pipeline goes on with).

Also the prompt sizes that decide whether each step fits: structure tokens, and the gold
files' skeleton tokens against their full size.

    python perf/swebench_localization.py --sdists DIR [--data verified.parquet]
        [--model openai:NAME --base-url URL] [--limit N]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from k2eval.adapters.swebench import SweBenchAdapter
from k2eval.adapters.swebench.agentless import (
    FILES_PROMPT,
    MAX_MODEL_FILES,
    AgentlessSettings,
    build_context,
    is_candidate,
    rank_files,
)
from k2eval.adapters.swebench.localize import (
    fit_structure,
    merge_rankings,
    parse_files,
    skeleton,
    structure_text,
    tokens,
)
from k2eval.spec import load_task

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "swebench" / \
    "verified.parquet"
PROJECTS = {"django/django": "django", "pallets/flask": "flask", "sympy/sympy": "sympy",
            "pydata/xarray": "xarray", "psf/requests": "requests", "pytest-dev/pytest": "pytest",
            "pylint-dev/pylint": "pylint", "sphinx-doc/sphinx": "sphinx",
            "astropy/astropy": "astropy", "mwaskom/seaborn": "seaborn",
            "scikit-learn/scikit-learn": "scikit-learn", "matplotlib/matplotlib": "matplotlib"}
GOLD_FILE = re.compile(r"^diff --git a/(\S+) b/", re.M)


def find_sdist(folder: Path, repo: str, version: str) -> Path | None:
    """The sdist in `folder` of the repo's project whose version starts with `version`."""
    project = PROJECTS.get(repo)
    if project is None:
        return None
    for path in sorted(folder.glob("*.tar.gz")):
        name, _, release = path.name[:-len(".tar.gz")].rpartition("-")
        if name.lower().replace("_", "-") == project and \
                release.split(".")[:len(version.split("."))] == version.split("."):
            return path
    return None


def read_sdist(path: Path) -> dict[str, str]:
    """Candidate source files of an sdist, paths relative to its top folder."""
    files: dict[str, str] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            _, _, relative = member.name.partition("/")
            if not member.isfile() or member.size > 400_000 or not is_candidate(relative):
                continue
            handle = tar.extractfile(member)
            if handle is not None:
                try:
                    files[relative] = handle.read().decode("utf-8")
                except UnicodeDecodeError:
                    continue
    return files


async def model_files(model: Any, issue: str, structure: str, known: set[str]) -> list[str]:
    from k2eval.models.base import Sampling

    completion = await model.complete(
        [{"role": "user", "content": FILES_PROMPT.format(problem_statement=issue,
                                                         structure=structure)}],
        None, Sampling(max_tokens=16384, temperature=0.0))
    return parse_files(completion.text or "", known, MAX_MODEL_FILES)


def recall(gold: list[str], found: list[str]) -> tuple[float, bool]:
    hit = sum(1 for g in gold if g in found)
    return hit / len(gold), hit == len(gold)


async def measure(args: argparse.Namespace) -> None:
    settings = AgentlessSettings()
    items = SweBenchAdapter().load(load_task("swebench-verified"), str(args.data))
    model = None
    if args.model:
        from k2eval.models import parse_model_spec, resolve_model

        model = resolve_model(parse_model_spec(args.model, base_url=args.base_url))
    sources: dict[Path, dict[str, str]] = {}
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    skipped = 0
    for item in items:
        row = item.data
        sdist = find_sdist(args.sdists, row["repo"], row["version"])
        if sdist is None:
            continue
        if sdist not in sources:
            sources[sdist] = read_sdist(sdist)
        files = sources[sdist]
        gold = [g for g in GOLD_FILE.findall(row["patch"]) if g in files]
        if not gold:
            skipped += 1
            continue
        ranked = rank_files(files, row["problem_statement"])
        _, shown = build_context(files, ranked, settings.retrieval_context_tokens)
        listed = fit_structure(sorted(files), ranked, settings.structure_tokens)
        structure = structure_text(listed)
        result = {"id": item.id, "bm25@27k": recall(gold, shown),
                  "bm25@3": recall(gold, ranked[:settings.top_files]),
                  "structure": recall(gold, listed), "structure_tokens": tokens(structure),
                  "gold_rank": min(ranked.index(g) for g in gold) + 1,
                  "skeleton_ratio": [tokens(skeleton(g, files[g], 10**9)) / tokens(files[g])
                                     for g in gold]}
        if model is not None:
            picked = await model_files(model, row["problem_statement"], structure, set(files))
            result["model@5"] = recall(gold, picked)
            result["combined@3"] = recall(gold, merge_rankings(
                picked, ranked, settings.top_files)[:settings.top_files])
        rows[f"{row['repo']} {sdist.name}"].append(result)
        if args.limit and sum(map(len, rows.values())) >= args.limit:
            break
    if model is not None:
        await model.aclose()
    columns = ["bm25@27k", "bm25@3", "structure"] + (["model@5", "combined@3"] if model else [])
    print(f"{'repository / sdist':42} {'n':>4} " + " ".join(f"{c:>16}" for c in columns)
          + f" {'structure tok':>13} {'skeleton':>8} {'bm25 rank':>9}")
    every = [r for group in rows.values() for r in group]
    for name, group in [*sorted(rows.items()), ("all", every)]:
        cells = []
        for column in columns:
            mean = statistics.mean(r[column][0] for r in group)
            full = sum(r[column][1] for r in group)
            cells.append(f"{100 * mean:6.1f}% ({full:3}/{len(group):3})")
        ratios = [x for r in group for x in r["skeleton_ratio"]]
        print(f"{name:42} {len(group):4} " + " ".join(f"{c:>16}" for c in cells)
              + f" {statistics.median(r['structure_tokens'] for r in group):13.0f}"
              + f" {statistics.median(ratios):7.0%}"
              + f" {statistics.median(r['gold_rank'] for r in group):9.0f}")
    print(f"instances measured: {len(every)}; skipped (no gold file in the sdist): {skipped}; "
          f"recall = gold files found / gold files (instances with all found / instances); "
          f"structure tok and bm25 rank are medians; skeleton = median skeleton/full size")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sdists", type=Path, required=True,
                        help="folder of downloaded .tar.gz source distributions")
    parser.add_argument("--data", type=Path, default=DATA, help="SWE-bench Verified rows")
    parser.add_argument("--model", help="measure step 1 with this model, e.g. openai:NAME")
    parser.add_argument("--base-url", help="the model's OpenAI-compatible endpoint")
    parser.add_argument("--limit", type=int, default=None, help="stop after N instances")
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
