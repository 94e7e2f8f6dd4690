"""Inline SVG charts (no scripts, no network): grouped bars, score histograms, trend lines."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#3b6fd4", "#e07b39", "#3a9a5b", "#a34fb8", "#c9a227", "#5b6b7c")


def _legend(names: Sequence[str], x: float, y: float) -> str:
    parts = []
    for i, name in enumerate(names):
        color = PALETTE[i % len(PALETTE)]
        yy = y + i * 16
        parts.append(f'<rect x="{x}" y="{yy}" width="10" height="10" fill="{color}"/>'
                     f'<text x="{x + 14}" y="{yy + 9}" class="lg">{escape(_clip(name, 40))}'
                     f'<title>{escape(name)}</title></text>')
    return "".join(parts)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(width: int, height: int, body: str, title: str) -> Markup:
    return Markup(f'<svg class="chart" viewBox="0 0 {width} '
                  f'{height}" width="{width}" height="{height}" role="img" aria-label='
                  f'"{escape(title)}"><title>{escape(title)}</title>{body}</svg>')


def _y_axis(left: int, top: int, plot_h: int, plot_w: int, ymax: float, unit: str) -> str:
    parts = []
    for i in range(5):
        value = ymax * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'class="grid"/><text x="{left - 4}" y="{y + 4:.1f}" class="ax" '
                     f'text-anchor="end">{value:g}{unit}</text>')
    return "".join(parts)


def bar_chart(categories: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]],
              title: str, ymax: float = 100.0) -> Markup:
    """Grouped vertical bars: one group per category, one bar per series (values in percent)."""
    left, top, bottom = 44, 10, 70
    group_w = max(28, 14 * len(series) + 14)
    plot_w = max(200, group_w * len(categories))
    plot_h = 160
    width = left + plot_w + 250
    height = top + plot_h + bottom
    bar_w = (group_w - 12) / max(1, len(series))
    parts = [_y_axis(left, top, plot_h, plot_w, ymax, "")]
    for ci, cat in enumerate(categories):
        gx = left + ci * group_w + 6
        for si, (name, values) in enumerate(series):
            value = values[ci]
            if value is None:
                continue
            h = plot_h * max(0.0, min(value, ymax)) / ymax
            x = gx + si * bar_w
            parts.append(f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 1:.1f}" '
                         f'height="{h:.1f}" fill="{PALETTE[si % len(PALETTE)]}"><title>'
                         f'{escape(name)} · {escape(cat)}: {value:.1f}</title></rect>')
        cx = gx + (group_w - 12) / 2
        parts.append(f'<text transform="translate({cx:.1f},{top + plot_h + 10}) rotate(35)" '
                     f'class="ax">{escape(_clip(cat, 24))}</text>')
    parts.append(_legend([name for name, _ in series], left + plot_w + 12, top))
    return _svg(width, height, "".join(parts), title)


def histogram(series: Sequence[tuple[str, Sequence[float]]], title: str, bins: int = 10,
              steps: int | None = None) -> Markup:
    """Distribution of per-item scores in [0, 1], as the share of items per bin, per series.

    With `steps` (e.g. k attempts per item), scores are multiples of 1/steps and get one bar
    per value (0/k .. k/k) instead of `bins` equal-width bins.
    """
    if steps:
        labels = [f"{j}/{steps}" for j in range(steps + 1)]

        def slot(v: float) -> int:
            return round(max(0.0, min(1.0, v)) * steps)
    else:
        edges = [i / bins for i in range(bins + 1)]
        labels = [f"{edges[i]:.1f}–{edges[i + 1]:.1f}" for i in range(bins)]

        def slot(v: float) -> int:
            return min(bins - 1, int(max(0.0, min(1.0, v)) * bins))

    shares: list[tuple[str, list[float | None]]] = []
    for name, values in series:
        counts = [0] * len(labels)
        for v in values:
            counts[slot(v)] += 1
        total = max(1, len(values))
        shares.append((name, [100.0 * c / total for c in counts]))
    return bar_chart(labels, shares, title)


class _NightFrame:
    """The frame of a score-per-night chart: a y axis in percent, one x step per night."""

    left, top, plot_h = 44, 10, 140

    def __init__(self, n: int, step: int, min_width: int, right: int, ymax: float) -> None:
        self.step, self.ymax = step, ymax
        self.plot_w = max(min_width, step * max(1, n - 1) + 20)
        self.width = self.left + self.plot_w + right
        self.height = self.top + self.plot_h + 80

    def x(self, i: int) -> int:
        return self.left + 10 + i * self.step

    def y(self, v: float) -> float:
        return self.top + self.plot_h - self.plot_h * max(0.0, min(v, self.ymax)) / self.ymax

    def axis(self) -> str:
        return _y_axis(self.left, self.top, self.plot_h, self.plot_w, self.ymax, "")

    def label(self, i: int, text: str) -> str:
        return (f'<text transform="translate({self.x(i)},{self.top + self.plot_h + 10}) '
                f'rotate(35)" class="ax">{escape(_clip(text, 14))}</text>')


def trend_chart(points: Sequence[tuple[str, float, float | None, float | None]], title: str,
                ymax: float = 100.0) -> Markup:
    """Score per night (percent) with its 95% CI as whiskers; the last point is highlighted."""
    frame = _NightFrame(len(points), 48, 160, 60, ymax)
    y_of = frame.y
    parts = [frame.axis()]
    coords = []
    for i, (label, score, lo, hi) in enumerate(points):
        x = frame.x(i)
        coords.append(f"{x},{y_of(score):.1f}")
        if lo is not None and hi is not None:
            parts.append(f'<line x1="{x}" x2="{x}" y1="{y_of(lo):.1f}" y2="{y_of(hi):.1f}" '
                         'class="whisker"/>')
        last = i == len(points) - 1
        parts.append(f'<circle cx="{x}" cy="{y_of(score):.1f}" r="{5 if last else 3.5}" '
                     f'class="{"pt last" if last else "pt"}"><title>{escape(label)}: '
                     f'{score:.1f}</title></circle>')
        parts.append(frame.label(i, label))
    if len(coords) > 1:
        parts.insert(1, f'<polyline points="{" ".join(coords)}" class="trend"/>')
    return _svg(frame.width, frame.height, "".join(parts), title)


def series_chart(points: Sequence[tuple[str, float | None, float | None, float | None, str]],
                 title: str, ymax: float = 100.0) -> Markup:
    """Score per night (percent) inside its shaded 95% CI band; nights where the paired test
    fired are marked (▼ regressed, ▲ improved). Points: (label, score, lo, hi, status)."""
    frame = _NightFrame(len(points), 40, 200, 30, ymax)
    x_of, y_of = frame.x, frame.y
    parts = [frame.axis()]
    banded = [(i, lo, hi) for i, (_, s, lo, hi, _) in enumerate(points)
              if s is not None and lo is not None and hi is not None]
    if len(banded) > 1:
        upper = [f"{x_of(i)},{y_of(hi):.1f}" for i, _, hi in banded]
        lower = [f"{x_of(i)},{y_of(lo):.1f}" for i, lo, _ in reversed(banded)]
        parts.append(f'<polygon points="{" ".join(upper + lower)}" class="band"/>')
    coords = [f"{x_of(i)},{y_of(s):.1f}" for i, (_, s, *_rest) in enumerate(points)
              if s is not None]
    if len(coords) > 1:
        parts.append(f'<polyline points="{" ".join(coords)}" class="trend"/>')
    for i, (label, score, lo, hi, status) in enumerate(points):
        x = x_of(i)
        if score is not None:
            ci = f" [{lo:.1f}, {hi:.1f}]" if lo is not None and hi is not None else ""
            tip = f"{escape(label)}: {score:.1f}{ci} ({escape(status)})"
            y = y_of(score)
            if status in ("regressed", "improved"):
                d = 7 if status == "regressed" else -7
                parts.append(f'<path d="M{x - 6},{y - d} L{x + 6},{y - d} L{x},{y + d} Z" '
                             f'class="mark {status}"><title>{tip}</title></path>')
            else:
                parts.append(f'<circle cx="{x}" cy="{y:.1f}" r="3.5" class="pt">'
                             f'<title>{tip}</title></circle>')
        parts.append(frame.label(i, label))
    return _svg(frame.width, frame.height, "".join(parts), title)
