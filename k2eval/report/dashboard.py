"""The nightly dashboard: every series of the history across nights, in one static page.

For each series (task x model x protocol, as nightly names it) the page shows the score per
night with its 95% confidence band, marks the nights where the paired test against the
previous night fired (regressed or improved, with the nightly's thresholds), and lists token
use and error counts per night with links to that night's regression page and comparison
page. Everything comes from the history database, so `k2eval dashboard --history URL` rebuilds
it on any machine; links point at the night directories where they exist. The page is one
self-contained HTML file with inline CSS and SVG: it works from a file:// URL, offline.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from markupsafe import Markup

from k2eval.report import charts
from k2eval.report.nightly import Thresholds, Verdict, _slug, judge, night_label
from k2eval.report.render import render
from k2eval.store.database import redact_url
from k2eval.store.history import HistoryStore, NightRow, RunRow


@dataclass
class NightPoint:
    """One night of one series."""

    night: NightRow
    run: RunRow
    status: str
    """As nightly decides against the previous night: "regressed", "improved", "unchanged",
    "not-comparable" or "first" (no earlier night)."""
    note: str = ""
    delta: float | None = None
    p_value: float | None = None
    regression_page: str | None = None
    compare_page: str | None = None


@dataclass
class SeriesView:
    slot: str
    task: str
    model: str
    metric: str
    points: list[NightPoint] = field(default_factory=list)
    chart: Markup | str = ""

    @property
    def latest(self) -> NightPoint:
        return self.points[-1]

    @property
    def n_regressions(self) -> int:
        return sum(p.status == "regressed" for p in self.points)


def _link(target: Path, out_dir: Path) -> str | None:
    """A relative link from the dashboard to `target`, when that file exists here."""
    if not target.is_file():
        return None
    return Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()


def series_views(store: HistoryStore, out_dir: Path, *, nights: int = 60,
                 thresholds: Thresholds | None = None) -> list[SeriesView]:
    """Every series with its last `nights` nights, judged night against previous night."""
    limits = thresholds or Thresholds()
    night_rows = {n.night_id: n for n in store.nights()}
    slots: dict[str, None] = {}
    for night_id in night_rows:
        for run in store.runs_of_night(night_id):
            slots.setdefault(run.slot)
    views: list[SeriesView] = []
    for slot in sorted(slots):
        rows = [r for r in store.series(slot, limit=nights) if r.night_id in night_rows]
        if not rows:
            continue
        last = rows[-1]
        view = SeriesView(slot, last.task, last.model, last.metric)
        for i, run in enumerate(rows):
            night = night_rows[run.night_id]
            point = NightPoint(night, run, "first")
            if i > 0:
                verdict = Verdict(slot, run.task, run.model, "unchanged", run=run,
                                  baseline=rows[i - 1])
                judge(verdict, store, limits)
                point.status, point.note, point.delta = verdict.status, verdict.note, verdict.delta
                point.p_value = verdict.test.p_value if verdict.test else None
            night_dir = Path(night.night_dir)
            point.regression_page = _link(night_dir / "regression.html", out_dir)
            point.compare_page = _link(night_dir / "compare" / f"{_slug(slot)}.html", out_dir)
            view.points.append(point)
        view.chart = charts.series_chart(
            [(night_label(p.night.night_id), p.run.score, p.run.ci_lo, p.run.ci_hi, p.status)
             for p in view.points], f"{slot}: score per night")
        views.append(view)
    return views


def write_dashboard(store: HistoryStore, out_dir: str | Path, *, nights: int = 60,
                    thresholds: Thresholds | None = None) -> Path:
    """Write `out_dir/index.html` from the history; returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = series_views(store, out, nights=nights, thresholds=thresholds)
    night_rows = store.nights()
    page = out / "index.html"
    page.write_text(render("dashboard.html", series=views, nights=night_rows,
                           history=redact_url(store.url), label=night_label), encoding="utf-8")
    return page
