"""The sandbox-slot count a node declares, and the `ray start` line that declares it."""

from __future__ import annotations

import json
import shlex

import pytest

from k2eval.engine.executors.slots import main, ray_start_line, sandbox_slots


@pytest.mark.parametrize(("cores", "memory_mb", "slot_mb", "expected"), [
    (32, 256 * 1024, 8192, 24),   # cores bound: 0.75 per core
    (32, 64 * 1024, 8192, 7),     # memory bound: (64 GiB - 4 GiB) / 8 GiB
    (64, 512 * 1024, 2048, 48),   # light graders: still 0.75 per core
    (1, 2048, 8192, 1),           # a tiny node still declares one slot
])
def test_slots_follow_cores_and_memory(cores: int, memory_mb: int, slot_mb: int,
                                       expected: int) -> None:
    assert sandbox_slots(cores, memory_mb, slot_mb) == expected


@pytest.mark.parametrize(("head", "address", "where"), [
    (True, None, ["--head", "--port", "6379"]),
    (False, "10.0.0.5:6379", ["--address", "10.0.0.5:6379"]),
])
def test_ray_start_line_declares_the_slots_and_quiet_logs(head: bool, address: str | None,
                                                         where: list[str]) -> None:
    words = shlex.split(ray_start_line(7, head=head, address=address))
    assert words[:3] == ["RAY_LOGGER_LEVEL=warning", "ray", "start"]
    assert words[3:3 + len(where)] == where
    assert json.loads(words[words.index("--resources") + 1]) == {"sandbox_slots": 7}


def test_the_helper_prints_a_comment_and_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--head"]) == 0
    comment, line = capsys.readouterr().out.strip().splitlines()
    assert comment.startswith("# ") and "sandbox slots" in comment
    assert line.startswith("RAY_LOGGER_LEVEL=warning ray start --head")
