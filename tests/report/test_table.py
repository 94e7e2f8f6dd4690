"""The comparison table: numbers equal summary.json, layout, reported numbers, bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from runfixtures import task_spec

from k2eval.cli import main
from k2eval.errors import RunDirError, UserError
from k2eval.report.runs import RunView, load_runs
from k2eval.report.table import build_table
from k2eval.scoring import ci95

MakeRun = Callable[..., Path]

MATH = task_spec("mathtask", k=2, benchmark="Math Task")
CODE = task_spec("codetask", k=1, metric="pass@k", group="Coding", benchmark="Code Task",
                 label="Pass@1", reported={"Kimi-K2-Instruct": "53.7", "GPT-4.1": "44.7"})


def _outcomes(n: int, right: Callable[[int], list[float]]) -> dict[str, list[float]]:
    return {f"q{i}": right(i) for i in range(n)}


@pytest.fixture
def runs(make_run: MakeRun) -> list[Path]:
    return [
        make_run(MATH, "alpha", _outcomes(12, lambda i: [float(i % 2), float(i % 3 == 0)])),
        make_run(MATH, "beta", _outcomes(12, lambda i: [1.0, float(i < 4)])),
        make_run(CODE, "alpha", _outcomes(9, lambda i: [float(i < 5)])),
    ]


def test_table_numbers_equal_summaries(runs: list[Path]) -> None:
    table = build_table(load_runs(runs), specs={})
    measured = table.frame[table.frame.kind == "measured"]
    assert len(measured) == 3
    for path in runs:
        summary = json.loads((path / "summary.json").read_text())
        cell = measured[(measured.task == summary["task"])
                        & (measured.model == summary["model"])].iloc[0]
        assert cell.score == summary["score"]
        assert [cell.ci_lo, cell.ci_hi] == summary["ci95"]
        assert cell.n_items == summary["n_items"]
    # hand check of one summary: alpha on mathtask, avg@2 over 12 items
    alpha = measured[(measured.task == "mathtask") & (measured.model == "openai:alpha")].iloc[0]
    per_item = [(i % 2 + (i % 3 == 0)) / 2 for i in range(12)]
    assert alpha.score == pytest.approx(100 * sum(per_item) / 12)


def test_layout_groups_rows_and_reported_columns(runs: list[Path]) -> None:
    table = build_table(load_runs(runs), specs={})
    wide = table.wide()
    assert list(wide.group) == ["Coding", "Math & STEM"]
    assert list(wide.columns[:3]) == ["group", "benchmark", "metric"]
    assert table.models == ["openai:alpha", "openai:beta"]
    assert "Kimi-K2-Instruct (reported)" in wide.columns
    math_row = wide[wide.benchmark == "Math Task"].iloc[0]
    assert math_row["Qwen3-235B-A22B (non-thinking) (reported)"] == "24.7*"
    assert math_row["GPT-4.1 (reported)"] == ""
    summary = json.loads((runs[1] / "summary.json").read_text())
    lo, hi = summary["ci95"]
    assert math_row["openai:beta"] == f"{summary['score']:.1f} [{lo:.1f}, {hi:.1f}]"
    copied = table.frame[(table.frame.kind == "reported") & table.frame.vendor_copied]
    assert set(copied.model) == {"Qwen3-235B-A22B (non-thinking)"}
    assert copied.score.tolist() == [24.7]

    md = table.to_markdown()
    lines = md.splitlines()
    assert lines[0].startswith("| Benchmark | Metric | openai:alpha | openai:beta |")
    assert lines.index("| **Coding** |" + " |" * (len(wide.columns) - 2)) < lines.index(
        "| **Math & STEM** |" + " |" * (len(wide.columns) - 2))
    assert "| Code Task | Pass@1 | 55.6 [" in md


def test_off_protocol_runs_get_their_own_row_without_reported_numbers(
        make_run: MakeRun, runs: list[Path]) -> None:
    small_k = task_spec("mathtask", k=1, benchmark="Math Task")
    # the run's own manifest says k=1, but the shipped spec of mathtask says k=2
    off = make_run(small_k, "gamma", _outcomes(4, lambda i: [1.0]), limit=4)
    table = build_table(load_runs([*runs, off]), specs={"mathtask": MATH})
    wide = table.wide()
    row = wide[wide.metric == "Avg@1 (protocol: Avg@2)"].iloc[0]
    assert row["openai:gamma"].endswith("†")
    assert row["Kimi-K2-Instruct (reported)"] == ""
    assert "subset of the items" in table.to_markdown()
    # alone, the off-protocol run sits just below the protocol row holding the reported numbers
    wide = build_table(load_runs([off]), specs={"mathtask": MATH}).wide()
    assert wide[["metric", "openai:gamma", "Kimi-K2-Instruct (reported)"]].values.tolist() == [
        ["Avg@2", "", "49.5"], ["Avg@1 (protocol: Avg@2)", "100.0 [100.0, 100.0] †", ""]]


def test_a_pass_at_k_run_is_labelled_pass_at_1_as_its_summary_is_at_any_k(
        make_run: MakeRun) -> None:
    more_samples = task_spec("codetask", k=3, metric="pass@k", group="Coding",
                             benchmark="Code Task", label="Pass@1")
    run = make_run(more_samples, "gamma", _outcomes(4, lambda i: [1.0, 0.0, float(i < 2)]))
    assert json.loads((run / "summary.json").read_text())["metric_label"] == "Pass@1"
    wide = build_table(load_runs([run]), specs={"codetask": CODE}).wide()
    assert wide.metric.tolist() == ["Pass@1", "Pass@1 (k=3, protocol: k=1)"]


def test_group_row_is_the_micro_average_over_member_items(make_run: MakeRun) -> None:
    members = ("m-retail", "m-airline")
    specs = {name: task_spec(name, k=2, group="Tool use", benchmark=name) for name in members}
    specs["m-all"] = task_spec("m-all", k=2, group="Tool use", benchmark="All domains",
                               members=members, reported={"Kimi-K2-Instruct": "66.1"})
    retail = make_run(specs["m-retail"], "alpha", _outcomes(3, lambda i: [1.0, float(i == 0)]))
    airline = make_run(specs["m-airline"], "alpha", _outcomes(5, lambda i: [0.0, float(i < 2)]))
    table = build_table(load_runs([retail, airline]), specs=specs)
    cell = table.frame[(table.frame.task == "m-all") & (table.frame.kind == "measured")].iloc[0]
    pooled = [1.0, 0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]  # retail items, then airline items
    assert cell.score == pytest.approx(100 * sum(pooled) / 8)  # 37.5, not the mean of 66.7 and 20
    lo, hi = ci95(pooled)
    assert (cell.ci_lo, cell.ci_hi) == (pytest.approx(100 * lo), pytest.approx(100 * hi))
    assert cell.n_items == 8
    reported = table.frame[(table.frame.task == "m-all") & (table.frame.kind == "reported")]
    assert reported.reported_text.tolist() == ["66.1"]

    # another model with one attempt per item: its own group row, without reported numbers
    quick = [make_run(specs[m].with_overrides(k=1), "quick", _outcomes(2, lambda i: [1.0]))
             for m in members]
    table = build_table(load_runs([retail, airline, *quick]), specs=specs)
    wide = table.wide().set_index(["benchmark", "metric"])
    assert wide.loc[("All domains", "Avg@2"), "Kimi-K2-Instruct (reported)"] == "66.1"
    off = wide.loc[("All domains", "Avg@1 (protocol: Avg@2)")]
    assert off["openai:quick"].startswith("100.0") and off["Kimi-K2-Instruct (reported)"] == ""
    # with a member missing there is no group cell
    table = build_table(load_runs([retail]), specs=specs)
    assert "m-all" not in set(table.frame.task)


def test_formats_from_the_command_line(runs: list[Path], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", *map(str, runs), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["models"] == ["openai:alpha", "openai:beta"]
    assert {c["task"] for c in data["cells"] if c["kind"] == "measured"} == {"mathtask", "codetask"}

    assert main(["report", str(runs[0].parent), "-o", str(tmp_path / "t.csv")]) == 0
    csv = (tmp_path / "t.csv").read_text().splitlines()
    assert csv[0].startswith("group,task,benchmark,metric,protocol,model,kind,score")
    assert main(["report", *map(str, runs), "-o", str(tmp_path / "t.html")]) == 0
    page = (tmp_path / "t.html").read_text()
    assert "<td>Math Task</td>" in page and "24.7*" in page
    assert main(["report", *map(str, runs), "-o", str(tmp_path / "t.txt")]) == 2


def test_bad_run_directories_are_named(make_run: MakeRun, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    run = make_run(MATH, "alpha", _outcomes(3, lambda i: [1.0, 0.0]))
    (run / "summary.json").unlink()
    assert RunView.load(run).status_text == "unfinished (no summary.json)"
    other = make_run(MATH, "gamma", _outcomes(3, lambda i: [1.0, 0.0]))
    (other / "attempts.jsonl").unlink()
    with pytest.raises(RunDirError, match=r"gamma/attempts\.jsonl is missing"):
        RunView.load(other)
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: no such run directory" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RunDirError, match="empty: neither a run directory"):
        load_runs([empty])

    damaged = make_run(MATH, "beta", _outcomes(3, lambda i: [1.0, 0.0]))
    lines = (damaged / "scores.jsonl").read_text().splitlines()
    lines[1] = "{not json"
    (damaged / "scores.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(RunDirError, match=r"scores\.jsonl:2: damaged"):
        _ = RunView.load(damaged).item_scores


def test_two_runs_of_the_same_cell_are_refused(make_run: MakeRun, tmp_path: Path) -> None:
    first = make_run(MATH, "alpha", _outcomes(3, lambda i: [1.0, 0.0]), run_id="one")
    second = make_run(MATH, "alpha", _outcomes(3, lambda i: [1.0, 1.0]), run_id="two")
    with pytest.raises(UserError, match="two runs of mathtask"):
        build_table(load_runs([first, second]), specs={})


def test_shipped_tau2_specs_give_the_micro_average_row(make_run: MakeRun) -> None:
    from k2eval.adapters.base import get_adapter
    from k2eval.report import build_comparison_table, comparison_table
    from k2eval.spec import load_task

    outcomes = {"tau2-airline": [[1.0, 1.0, 0.0, 0.0]] * 2, "tau2-retail": [[1.0] * 4] * 3,
                "tau2-telecom": [[0.0] * 4]}
    runs = [make_run(load_task(task), "kimi", {f"{task}-{i}": v for i, v in enumerate(rows)},
                     adapter=get_adapter("tau2"))  # its summary carries pass^1..4
            for task, rows in outcomes.items()]
    table = build_comparison_table(runs)
    df = comparison_table(runs)
    assert list(dict.fromkeys(df.benchmark)) == ["Tau2 retail", "Tau2 airline", "Tau2 telecom",
                                                 "Tau2-Bench (micro-average)"]
    assert list(df[df.benchmark == "Tau2 retail"].metric) == [
        "Avg@4", "Pass^1", "Pass^2", "Pass^3", "Pass^4"]
    for path in runs:
        summary = json.loads((path / "summary.json").read_text())
        cells = table.frame[(table.frame.task == summary["task"]) & (table.frame.metric == "Pass^2")]
        assert cells.score.tolist() == [summary["breakdowns"]["pass^k"]["pass^2"]["score"]]
    pooled = table.frame[table.frame.task == "tau2"].set_index("metric")
    # per item C(c, j) / C(4, j): airline c=2 (twice), retail c=4 (three times), telecom c=0
    assert pooled.loc["Pass^1", "score"] == pytest.approx(100 * (0.5 * 2 + 3) / 6)
    assert pooled.loc["Pass^2", "score"] == pytest.approx(100 * (2 * 1 / 6 + 3) / 6)
    assert pooled.loc["Pass^4", "score"] == pytest.approx(100 * 3 / 6)
    row = df[df.benchmark == "Tau2-Bench (micro-average)"].iloc[0]
    assert row["metric"] == "Avg@4" and row["Kimi-K2-Instruct (reported)"] == "66.1"
    assert row["openai:kimi"].startswith(f"{100 * (0.5 * 2 + 3) / 6:.1f} [")
    cell = table.frame[(table.frame.task == "tau2") & (table.frame.kind == "measured")].iloc[0]
    assert cell.n_items == 6


def test_the_pooled_pass_hat_caps_k_at_the_fewest_trials_as_tau2_does(make_run: MakeRun) -> None:
    """A task with an errored trial has 3 graded trials: the group's pass^k stops at k=3 and
    still counts every task (tau2's rule), as each member's summary does."""
    from k2eval.adapters.base import get_adapter
    from k2eval.report import build_comparison_table
    from k2eval.spec import load_task

    outcomes = {"tau2-airline": [[1.0, 1.0, 1.0, 0.0]], "tau2-retail": [[1.0] * 4, [1.0] * 4],
                "tau2-telecom": [[0.0] * 4]}
    runs = [make_run(load_task(task), "kimi", {f"{task}-{i}": v for i, v in enumerate(rows)},
                     adapter=get_adapter("tau2"),
                     errors={("tau2-airline-0", 3)} if task == "tau2-airline" else set())
            for task, rows in outcomes.items()]
    pooled = build_comparison_table(runs).frame
    pooled = pooled[pooled.task == "tau2"].set_index("metric")
    assert "Pass^4" not in pooled.index
    assert pooled.loc["Pass^3", "score"] == pytest.approx(100 * (1 + 1 + 1 + 0) / 4)
    assert pooled.loc["Pass^3", "n_items"] == 4
