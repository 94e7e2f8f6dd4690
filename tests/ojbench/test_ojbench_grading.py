"""OJBench's code extraction and per-scale verdicts, rule for rule; the judge's result line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from k2eval.adapters.base import Item, Score
from k2eval.adapters.ojbench import (
    Judgement,
    OJBenchAdapter,
    OJBenchSettings,
    judge_in_sandbox,
    proc_code,
    read_judgement,
    scale_verdicts,
    verdict_after_scale,
)
from k2eval.errors import InfraError

FENCE = "```"


@pytest.mark.parametrize(("reply", "language", "code"), [
    (f"text\n{FENCE}cpp\nint main(){{}}\n{FENCE}\nmore", "cpp", "int main(){}"),
    # the last block fenced with the language wins
    (f"{FENCE}cpp\nA\n{FENCE}\n{FENCE}cpp\nB\n{FENCE}", "cpp", "B"),
    # a block fenced with another language name is not taken ...
    (f"{FENCE}c++\nint x;\n{FENCE}", "cpp", f"{FENCE}c++\nint x;"),
    # ... and without the language fence the reply is cut at its first closing fence
    ("print(1)\n" + FENCE + "\nrest", "python", "print(1)"),
    ("just code, no fence", "python", "just code, no fence"),
    # the fence needs its newline: "```python " (a space) does not open a block
    (f"{FENCE}python \nprint(2)\n{FENCE}", "python", f"{FENCE}python \nprint(2)"),
    # the block runs to the end when it is never closed
    (f"{FENCE}python\nprint(3)\n", "python", "print(3)\n"),
    # an uncalled main() gets its call; a called one, or two definitions, do not
    (f"{FENCE}python\ndef main():\n    print(4)\n{FENCE}", "python",
     "def main():\n    print(4)\nmain()"),
    (f"{FENCE}python\ndef main():\n    print(5)\nmain()\n{FENCE}", "python",
     "def main():\n    print(5)\nmain()"),
    (f"{FENCE}python\ndef main():\n    pass\ndef main():\n    pass\n{FENCE}", "python",
     "def main():\n    pass\ndef main():\n    pass"),
    ("", "cpp", ""),
])
def test_proc_code_follows_the_official_extraction(reply: str, language: str, code: str) -> None:
    assert proc_code(reply, language) == code


@pytest.mark.parametrize(("final", "cases", "expected"), [
    # a failure only on the last of 8 cases: every scale passes
    ("TLE", ["AC"] * 7 + ["TLE"], {"1/8": "AC", "1/4": "AC", "1/2": "AC"}),
    # the first failure at case 3 (index 2): 1/8 (1 case) and 1/4 (2 cases) pass, 1/2 fails
    ("WA", ["AC", "AC", "WA", "AC", "AC", "AC", "AC", "AC"], {"1/8": "AC", "1/4": "AC", "1/2": "WA"}),
    ("RTE", ["RTE", "AC", "AC"], {"1/8": "AC", "1/4": "RTE", "1/2": "RTE"}),
    # 3 cases: round(3/8) = 0, round(3/4) = 2, round(3/2) = 2 (Python rounds half to even)
    ("WA", ["AC", "AC", "WA"], {"1/8": "AC", "1/4": "AC", "1/2": "AC"}),
    # 5 cases: round(2.5) = 2
    ("WA", ["AC", "AC", "WA", "AC", "AC"], {"1/8": "AC", "1/4": "AC", "1/2": "AC"}),
    # no cases (compile error): the final verdict at every scale
    ("CE", [], {"1/8": "CE", "1/4": "CE", "1/2": "CE"}),
    ("AC", ["AC"], {"1/8": "AC", "1/4": "AC", "1/2": "AC"}),
])
def test_scale_verdicts_judge_a_prefix_of_the_cases(final: str, cases: list[str],
                                                   expected: dict[str, str]) -> None:
    assert scale_verdicts(final, cases) == expected
    assert verdict_after_scale(final, cases, 1.0) == final


def test_the_judge_result_is_its_last_json_line() -> None:
    out = 'noise\n{"verdict": "WA", "cases": [{"verdict": "AC"}, {"verdict": "WA"}], "message": ""}\n'
    judgement = read_judgement(out)
    assert judgement == Judgement("WA", [{"verdict": "AC"}, {"verdict": "WA"}], "")
    # 2 cases: 1/2 judges round(1.0) = 1 case, which passed
    assert judgement.details()["scale_verdicts"] == {"1/8": "AC", "1/4": "AC", "1/2": "AC"}
    assert read_judgement("Traceback ...\nKilled\n") is None
    assert read_judgement('{"not": "a result"}') is None


class NoSandbox:
    """Fails the test if anything is run: the check must come first."""

    async def exec(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("nothing should run")


def test_a_problem_too_large_for_the_scratch_space_is_an_infrastructure_error(
        tmp_path: Path) -> None:
    problem = tmp_path / "big"
    problem.mkdir()
    (problem / "init.yml").write_text("test_cases:\n- {in: 1.in, out: 1.out, points: 1}\n")
    (problem / "1.in").write_bytes(b"7\n" * 400_000)
    (problem / "1.out").write_text("7\n")
    item = Item(id="big:cpp", data={"problem_id": "big", "language": "cpp",
                                    "problem_dir": str(problem), "skipped": False})
    with pytest.raises(InfraError, match=r"problem big holds 0.8 MB.*raise --option sandbox_disk_mb"):
        asyncio.run(judge_in_sandbox(NoSandbox(), item, "int main() {}",  # type: ignore[arg-type]
                                     OJBenchSettings(sandbox_disk_mb=1)))


def scored(pid: str, language: str, verdict: str, scales: dict[str, str] | None = None,
           status: str = "ok") -> tuple[Item, Score]:
    item = Item(id=f"{pid}:{language}", data={}, meta={"language": language, "dataset": "NOI",
                                                      "difficulty": "easy"})
    details = {"verdict": verdict, "scale_verdicts": scales or {}}
    return item, Score(item.id, 0, float(verdict == "AC"), details=details, status=status)


def test_the_headline_is_the_mean_of_the_languages_pass_at_1() -> None:
    pairs = [scored("a", "cpp", "AC"), scored("b", "cpp", "WA"), scored("c", "cpp", "AC"),
             scored("d", "cpp", "TLE"), scored("a", "python", "AC"), scored("b", "python", "WA")]
    items, scores = [p[0] for p in pairs], [p[1] for p in pairs]
    headline = OJBenchAdapter().headline(items, scores, 1)
    assert headline is not None
    assert headline["by_language"] == {"cpp": 50.0, "python": 50.0}
    assert headline["score"] == pytest.approx(50.0) and headline["metric_label"] == "Pass@1"
    # one language only: its own Pass@1
    cpp_only = OJBenchAdapter().headline(items[:4], scores[:4], 1)
    assert cpp_only is not None and cpp_only["score"] == pytest.approx(50.0)
    # unequal counts: the mean of the two, not the pooled 2/3
    three = OJBenchAdapter().headline(items[:2] + items[4:5], scores[:2] + scores[4:5], 1)
    assert three is not None and three["score"] == pytest.approx(75.0)


def test_breakdowns_give_scales_and_verdict_counts_per_language_without_grader_errors() -> None:
    pairs = [scored("a", "cpp", "TLE", {"1/8": "AC", "1/4": "AC", "1/2": "TLE"}),
             scored("b", "cpp", "AC", {"1/8": "AC", "1/4": "AC", "1/2": "AC"}),
             scored("c", "cpp", "IE", status="error"),
             scored("d", "cpp", "Skip")]
    out = OJBenchAdapter().breakdowns([p[0] for p in pairs], [p[1] for p in pairs])
    # the skip has no scale verdicts: its own verdict stands at every scale
    assert out["scales"]["cpp"] == pytest.approx(
        {"1/8": 100 * 2 / 3, "1/4": 100 * 2 / 3, "1/2": 100 / 3, "1": 100 / 3}, abs=1e-3)
    assert out["verdicts"]["cpp"] == {"AC": 1, "Skip": 1, "TLE": 1}
