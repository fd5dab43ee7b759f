"""The server-drawn still picture of a chart (dashboard/charts.py): what it draws, where, and that
hostile labels and values can neither break the picture nor put markup in it."""

from __future__ import annotations

import base64
import itertools
import math
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from dashboard import charts

SVG = "{http://www.w3.org/2000/svg}"
DAYS = [date(2026, 9, 9) + timedelta(days=i) for i in range(90)]
BAR = re.compile(r"M([\d.]+) ([\d.e+-]+)h\.8v(-[\d.e+-]+)h-\.8z")


def _series(name: str, values: list[float], colour: str = "#2e7d32") -> charts.Series:
    return charts.Series(name, colour, values)


def _bars(svg: str, colour: str) -> list[tuple[float, float, float]]:
    """(day index, bottom, height) of every bar of one colour, in the inner SVG's units."""
    root = ET.fromstring(svg)
    paths = [p for p in root.iter(f"{SVG}path") if p.get("fill") == colour]
    assert len(paths) <= 1
    if not paths:
        return []
    return [(float(x) - 0.1, float(y), -float(v)) for x, y, v in BAR.findall(paths[0].get("d", ""))]


def _texts(svg: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(svg).iter(f"{SVG}text")]


@pytest.mark.parametrize(
    ("top", "step"),
    [(0, 1.0), (-3, 1.0), (math.inf, 1.0), (5, 1.0), (1234, 250.0), (1600, 500.0), (0.3, 0.1)],
)
def test_value_axis_steps_are_ones_twos_and_fives(top: float, step: float) -> None:
    assert charts.nice_step(top) == pytest.approx(step)


def test_date_ticks_label_the_first_and_last_day_and_spread_between() -> None:
    assert charts.date_ticks(0) == []
    assert charts.date_ticks(3) == [0, 1, 2]
    ticks = charts.date_ticks(90)
    assert ticks[0] == 0 and ticks[-1] == 89 and len(ticks) == charts.DATE_TICKS
    gaps = {b - a for a, b in itertools.pairwise(ticks)}
    assert max(gaps) - min(gaps) <= 1


def test_bars_stack_bottom_first_with_their_values() -> None:
    reduce = [float(i) for i in range(90)]
    residual = [100.0] * 90
    svg = charts.stacked_bars(
        DAYS,
        [_series("Kurangi", reduce, "#2e7d32"), _series("Residu", residual, "#6d4c41")],
        "id",
    )
    inner = next(el for el in ET.fromstring(svg).iter(f"{SVG}svg") if el.get("viewBox"))
    top = float((inner.get("viewBox") or "").split()[3])
    assert top >= 189 * 1.05  # the highest stack and some room above it
    green = _bars(svg, "#2e7d32")
    brown = _bars(svg, "#6d4c41")
    assert len(green) == 89 and len(brown) == 90  # day 0 reduced nothing: no bar
    assert green[0] == pytest.approx((1, top, 1.0))
    for day, bottom, height in brown:  # each residual bar sits on that day's reduce bar
        assert bottom == pytest.approx(top - reduce[round(day)])
        assert height == pytest.approx(100.0)


def test_labels_dates_level_and_legend_in_the_pages_language() -> None:
    svg = charts.stacked_bars(
        DAYS,
        [_series("Kurangi", [10.0] * 90)],
        "id",
        line=_series("Pisahkan", [5.0] * 90, "#1565c0"),
        level=charts.Level(1500.0, "Timbulan 1.500 t/hari", "#c62828"),
    )
    texts = _texts(svg)
    assert "9 Sep 2026" in texts and "7 Des 2026" in texts  # Babel's id dates
    assert "Timbulan 1.500 t/hari" in texts
    assert "1.500 t" in texts  # the value axis reaches the level, with id separators
    assert {"Kurangi", "Pisahkan"} <= set(texts)
    assert ET.fromstring(svg).find(f".//{SVG}polyline") is not None
    english = _texts(charts.stacked_bars(DAYS, [_series("Reduce", [1.0] * 90)], "en"))
    assert "Sep 9, 2026" in english and "Dec 7, 2026" in english


@pytest.mark.parametrize(
    "name",
    [
        "<script>alert('x')</script>",
        'Residu "ke" TPA & <b>',
        "]]><svg onload=alert(1)>",
        "\u202e RTL \U0001f5d1",
    ],
)
def test_hostile_names_stay_text(name: str) -> None:
    """A category's name comes from the city file: whatever it says, the picture stays well-formed
    and shows it as text (an <img> runs no script anyway)."""
    svg = charts.stacked_bars(
        DAYS[:3],
        [_series(name, [1.0, 2.0, 3.0], colour="red' onload='x")],
        "id",
        level=charts.Level(2.0, name, "#c62828"),
    )
    root = ET.fromstring(svg)  # well-formed
    assert _texts(svg).count(name) == 2
    assert not [el for el in root.iter() if el.tag.endswith("script")]
    assert all("onload" not in attr for el in root.iter() for attr in el.attrib)
    assert any(el.get("fill") == "red' onload='x" for el in root.iter(f"{SVG}path"))


def test_values_that_cannot_be_drawn_draw_nothing() -> None:
    values = [math.nan, math.inf, -math.inf, -5.0, 0.0, 2.0]
    svg = charts.stacked_bars(DAYS[:6], [_series("x", values)], "en", line=_series("y", values))
    assert "nan" not in svg.lower() and "inf" not in svg.lower()
    assert [day for day, _b, _h in _bars(svg, "#2e7d32")] == [5]


def test_no_days_and_no_values_still_make_a_picture() -> None:
    for days, values in (([], []), (DAYS[:4], [0.0] * 4)):
        svg = charts.stacked_bars(days, [_series("x", values)], "id", line=_series("y", values))
        ET.fromstring(svg)
        assert _bars(svg, "#2e7d32") == []


def test_a_series_of_another_length_is_refused() -> None:
    with pytest.raises(ValueError, match="one value per day"):
        charts.stacked_bars(DAYS, [_series("x", [1.0] * 89)], "id")


def test_the_data_url_carries_the_svg() -> None:
    svg = charts.stacked_bars(DAYS[:2], [_series("Kurangi", [1.0, 2.0])], "id")
    url = charts.data_url(svg)
    assert url.startswith("data:image/svg+xml;base64,")
    assert base64.b64decode(url.split(",", 1)[1]).decode("utf-8") == svg
