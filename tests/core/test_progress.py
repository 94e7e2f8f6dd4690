"""Progress reporting off a terminal: periodic plain lines with counts, rate and ETA."""

from __future__ import annotations

import io

from k2eval.engine.progress import Progress


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    bar = Progress(4, "aime2025", stream=out, interval_s=0.0)
    bar.update(tokens=1500)
    bar.update(errors=1)
    bar.update(tokens=2_500_000)
    bar.update()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("[aime2025] 1/4 (25%) errors=0 tokens=1.5k")
    assert "4/4 (100%) errors=1 tokens=2.5M" in lines[-1]
    assert "rate=" in lines[-1] and "eta=0s" in lines[-1]


def test_disabled_progress_prints_nothing() -> None:
    out = io.StringIO()
    bar = Progress(2, "t", stream=out, enabled=False)
    bar.update()
    bar.update()
    assert out.getvalue() == ""


def test_per_node_counts_appear_once_results_come_from_several_nodes() -> None:
    out = io.StringIO()
    bar = Progress(3, "aime2025", stream=out, interval_s=0.0)
    bar.update(node="local")
    bar.update(node="8bc3c2b0")
    bar.update(node="8bc3c2b0", errors=1)
    lines = out.getvalue().splitlines()
    assert "nodes=" not in lines[0]
    assert lines[-1].endswith("nodes=8bc3c2b0:2,local:1")
    assert "3/3 (100%) errors=1" in lines[-1]
