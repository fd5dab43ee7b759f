"""A chart drawn on the server as one SVG picture: what a page shows before Plotly has started.

Plotly is the larger half of the JavaScript a page loads (1.2 MB of its basic bundle). Starting
it and drawing a first chart takes a few hundred milliseconds of a 2-core machine's time, more
on a phone, so a page whose first view has a chart would wait for that before showing its
numbers. Here the server draws the same chart as a still picture that comes with the layout
(an <img> of an SVG data URL: no script runs in it, whatever a label says). Plotly draws the
interactive chart over it once it has started, and the picture is hidden then
(assets/overview.css).

The picture stretches to any width without distorting its text: the bars and lines are in an
inner SVG that scales to the plot area (its strokes keep their width), and the labels are placed
in percent of the width.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from dashboard import format as fmt
from dashboard.i18n import Lang

HEIGHT = 340  # px, as the Plotly chart it stands in for
PLOT_TOP = 24
PLOT_BOTTOM = 270  # the date ticks below it, then the legend
LEGEND_Y = 326
FONT = "font-family='system-ui, -apple-system, Segoe UI, Roboto, sans-serif'"
TEXT = "#444"
GRID = "#e6e6e6"
MAX_TICKS = 5  # on the value axis, besides zero
DATE_TICKS = 5
# Media queries inside the picture follow its own width: on a phone, every other date and a
# smaller legend, so nothing overlaps at 390 px.
NARROW_STYLE = (
    "<style>@media (max-width: 600px) { .minor { display: none } .legend { font-size: 9.5px } }"
    "</style>"
)


@dataclass(frozen=True, slots=True)
class Series:
    """One named series of values, one per day."""

    name: str
    colour: str
    values: Sequence[float]


@dataclass(frozen=True, slots=True)
class Level:
    """A horizontal line at `value`, labelled (a target or a ceiling)."""

    value: float
    text: str
    colour: str


def _clean(value: float) -> float:
    """A value that can be drawn: finite and not below zero (tonnage never is)."""
    return value if math.isfinite(value) and value > 0 else 0.0


def nice_step(top: float, ticks: int = MAX_TICKS) -> float:
    """The step of at most `ticks` value-axis ticks above zero up to `top`: 1, 2, 2.5 or 5 times
    a power of ten (as a person would read an axis)."""
    if top <= 0 or not math.isfinite(top):
        return 1.0
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if factor * power >= raw:
            return factor * power
    return 10 * power


def date_ticks(count: int, ticks: int = DATE_TICKS) -> list[int]:
    """Indices of the days labelled on the date axis: the first, the last and evenly between."""
    if count <= 0:
        return []
    if count <= ticks:
        return list(range(count))
    return sorted({round(k * (count - 1) / (ticks - 1)) for k in range(ticks)})


def _percent(value: float) -> str:
    return f"{value:.3f}%"


def stacked_bars(
    days: Sequence[date],
    bars: Sequence[Series],
    lang: Lang,
    *,
    line: Series | None = None,
    level: Level | None = None,
) -> str:
    """Daily stacked bars (`bars`, bottom first), an optional line over them and an optional
    labelled level, as an SVG document."""
    n = len(days)
    if any(len(s.values) != n for s in (*bars, *([line] if line else []))):
        raise ValueError("every series needs one value per day")
    stacked = [[_clean(v) for v in s.values] for s in bars]
    line_values = [_clean(v) for v in line.values] if line else []
    totals = [sum(values[i] for values in stacked) for i in range(n)]
    peaks = [*totals, *line_values]
    highest = max([*peaks, _clean(level.value) if level else 0.0, 0.0])
    step = nice_step(highest * 1.05)
    top = step * max(1, math.ceil(highest * 1.05 / step))
    plot_h = PLOT_BOTTOM - PLOT_TOP

    def y_px(value: float) -> float:
        return PLOT_BOTTOM - value / top * plot_h

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='100%' height='{HEIGHT}' {FONT} "
        f"font-size='11'>",
        NARROW_STYLE,
    ]
    # Gridlines under the bars; their value labels over them (inside the plot, on the left).
    ticks = [k * step for k in range(round(top / step) + 1)]
    for tick in ticks:
        y = y_px(tick)
        parts.append(f"<line x1='0' x2='100%' y1='{y:.1f}' y2='{y:.1f}' stroke='{GRID}'/>")
    # Bars and line in an inner SVG scaled to the plot area: x in days, y in tonnes downwards.
    parts.append(
        f"<svg x='0' y='{PLOT_TOP}' width='100%' height='{plot_h}' viewBox='0 0 {max(n, 1)} "
        f"{top:.6g}' preserveAspectRatio='none'>"
    )
    paths: list[list[str]] = [[] for _ in bars]
    for i in range(n):
        below = 0.0
        for k, values in enumerate(stacked):
            value = values[i]
            if value > 0:
                paths[k].append(f"M{i + 0.1:.1f} {top - below:.6g}h.8v{-value:.6g}h-.8z")
            below += value
    for series, path in zip(bars, paths, strict=True):
        if path:
            parts.append(f"<path fill={quoteattr(series.colour)} d='{''.join(path)}'/>")
    if line is not None and n:
        points = " ".join(f"{i + 0.5:.1f},{top - v:.6g}" for i, v in enumerate(line_values))
        parts.append(
            f"<polyline fill='none' stroke={quoteattr(line.colour)} stroke-width='2' "
            f"vector-effect='non-scaling-stroke' points='{points}'/>"
        )
    parts.append("</svg>")
    decimals = 0 if step >= 1 else 1
    for tick in ticks[1:]:
        label = f"{fmt.number(tick, lang, decimals)} t"
        parts.append(
            f"<text x='2' y='{y_px(tick) - 3:.1f}' fill='{TEXT}' stroke='#fff' "
            f"stroke-width='3' paint-order='stroke'>{escape(label)}</text>"
        )
    if level is not None and _clean(level.value) > 0:
        y = y_px(_clean(level.value))
        colour = quoteattr(level.colour)
        parts.append(
            f"<line x1='0' x2='100%' y1='{y:.1f}' y2='{y:.1f}' stroke={colour} "
            f"stroke-dasharray='3 3'/>"
            f"<text x='100%' dx='-2' y='{y - 4:.1f}' text-anchor='end' fill={colour}"
            f" stroke='#fff' stroke-width='3' paint-order='stroke'>"
            f"{escape(level.text)}</text>"
        )
    # Dates under the plot: the first and last at the edges, the others under their bar.
    for k, i in enumerate(date_ticks(n)):
        anchor = "start" if i == 0 else "end" if i == n - 1 else "middle"
        x = "0" if i == 0 else "100%" if i == n - 1 else _percent((i + 0.5) / n * 100)
        minor = " class='minor'" if k % 2 and i != n - 1 else ""
        parts.append(
            f"<text x='{x}' y='{PLOT_BOTTOM + 16}' text-anchor='{anchor}' fill='{TEXT}'{minor}>"
            f"{escape(fmt.day(days[i], lang))}</text>"
        )
    # Legend: the series side by side, each in an equal share of the width.
    named = [*bars, *([line] if line else [])]
    for k, series in enumerate(named):
        left = _percent(k / len(named) * 100)
        colour = quoteattr(series.colour)
        parts.append(
            f"<rect x='{left}' y='{LEGEND_Y - 9}' width='10' height='10' fill={colour}/>"
            f"<text x='{left}' dx='13' y='{LEGEND_Y}' fill='{TEXT}' class='legend'>"
            f"{escape(series.name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def data_url(svg: str) -> str:
    """The SVG as a data: URL for an <img> (the CSP admits data: images)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
