"""The journal's reading and writing API: lazy reads, the latest record of each attempt by
offset, whole lines only after a failed write, and a reserve for the last manifest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from storecli import bare_manifest

from k2eval.errors import RunDirError, StorageError
from k2eval.records import Attempt, Score
from k2eval.store.rundir import (
    ATTEMPTS,
    RESERVE,
    RunDir,
    check_writable,
    iter_journal,
    repair_journal,
)


def line(item: str, index: int, status: str = "ok", text: str = "") -> str:
    return json.dumps(Attempt(item, index, status, messages=[
        {"role": "assistant", "content": text}]).to_dict()) + "\n"


@pytest.mark.parametrize(("tail", "kept"), [
    ("", 2),
    ('{"item_id": "c", "att', 2),  # a write cut short
    ("not json\n", 2),  # a last line that is not JSON: cut short, then a newline
])
def test_a_journal_is_read_lazily_up_to_its_last_whole_line(tmp_path: Path, tail: str,
                                                            kept: int) -> None:
    path = tmp_path / ATTEMPTS
    path.write_text(line("a", 0) + line("b", 0) + tail)
    rows = iter_journal(path)
    assert next(rows)["item_id"] == "a"
    assert len([next(rows), *rows]) == kept - 1
    repair_journal(path)
    assert path.read_text() == line("a", 0) + line("b", 0)


def test_a_damaged_line_before_the_end_is_named(tmp_path: Path) -> None:
    path = tmp_path / ATTEMPTS
    path.write_text(line("a", 0) + "garbage\n" + line("b", 0))
    with pytest.raises(RunDirError, match=r"attempts\.jsonl:2: damaged journal line"):
        list(iter_journal(path))


def test_the_latest_record_of_each_attempt_is_found_by_offset(tmp_path: Path) -> None:
    (tmp_path / ATTEMPTS).write_text(line("a", 0, "error") + line("b", 0, text="first") +
                                     line("a", 0, text="retried") + line("a", 1))
    run = RunDir(tmp_path)
    index = run.attempt_index()
    assert {key: status for key, (_, status) in index.items()} == {
        ("a", 0): "ok", ("b", 0): "ok", ("a", 1): "ok"}
    read = list(run.attempts_at(offset for offset, _ in index.values()))
    assert [(a.item_id, a.index, a.messages[0]["content"]) for a in read] == [
        ("b", 0, "first"), ("a", 0, "retried"), ("a", 1, "")]
    assert {k: a.messages for k, a in run.attempts().items()} == {
        (a.item_id, a.index): a.messages for a in read}


def test_new_scores_replace_the_old_ones_only_when_all_are_written(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    with run.scores_writer() as write:
        write(Score("a", 0, 1.0))
    with pytest.raises(ZeroDivisionError), run.scores_writer() as write:
        write(Score("a", 0, 0.0))
        _ = 1 / 0
    assert [s.value for s in run.scores().values()] == [1.0]
    assert not list(tmp_path.glob(".*.tmp"))


def test_a_full_disk_leaves_whole_lines_and_room_for_the_manifest(
        small_fs: Callable[..., Path]) -> None:
    tiny_fs = small_fs("256k")
    run = RunDir.create(tiny_fs / "r", bare_manifest(status="running"))
    assert (tiny_fs / "r" / RESERVE).exists()
    big = Attempt("x", 0, messages=[{"role": "assistant", "content": "y" * 3000}])
    with pytest.raises(StorageError, match=r"cannot write .*attempts\.jsonl \(No space left"):
        for i in range(200):
            big.index = i
            run.append_attempt(big)
    raw = (tiny_fs / "r" / ATTEMPTS).read_bytes()
    assert raw.endswith(b"\n") and 0 < raw.count(b"\n") < 200
    assert not (tiny_fs / "r" / RESERVE).exists()  # freed: the manifest still fits
    run.write_manifest(bare_manifest(status="failed", error="disk full"))
    assert run.read_manifest().status == "failed"
    run.close()


def test_an_unwritable_out_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StorageError, match=r"--out .*file/runs: cannot write there"):
        check_writable(tmp_path / "file" / "runs")


def test_rescore_streams_the_journal_and_grades_the_latest_record_of_each_attempt(
        fake_openai: Any, shared_data: Path, tmp_path: Path) -> None:
    import k2eval
    from k2eval.testing.fake_openai import Reply

    aime = shared_data / "aime" / "aime25.jsonl"
    answers = [json.loads(x)["answer"] for x in aime.read_text().splitlines()[:3]]
    srv = fake_openai(lambda body: Reply(text="\\boxed{0}"))
    run = k2eval.evaluate("aime2025", "openai:m", base_url=srv.base_url, data=aime, k=2,
                          limit=3, out=tmp_path)
    assert run.summary["score"] == 0.0
    journal = run.path / ATTEMPTS
    rows = [json.loads(x) for x in journal.read_text().splitlines()]
    with journal.open("a") as fh:  # later records of attempts 0: now right
        for row in rows:
            if row["attempt"] == 0:
                row["messages"][-1]["content"] = f"\\boxed{{{answers[int(row['item_id'])]}}}"
                fh.write(json.dumps(row) + "\n")
    again = k2eval.rescore_run(run.path, progress=False)
    assert again.summary["score"] == pytest.approx(50.0)
    assert again.summary["n_attempts"] == 6 and again.summary["complete"]
    scores = [json.loads(x) for x in (run.path / "scores.jsonl").read_text().splitlines()]
    assert sorted((s["item_id"], s["attempt"], s["correct"]) for s in scores) == [
        (str(i), a, a == 0) for i in range(3) for a in range(2)]
    assert not (run.path / RESERVE).exists()
