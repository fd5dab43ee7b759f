"""Tile-less maps: district outlines and places drawn as plain SVG on longitude/latitude axes
(no tiles, no fonts, no WebGL, nothing fetched from anywhere), shared by the districts page's
choropleth and the collection page's routes."""

from __future__ import annotations

import math
from typing import NamedTuple

import plotly.graph_objects as go

from dashboard import format as fmt
from dashboard.i18n import Lang, t
from pisman.contract import DistrictBoundariesAnswer, DistrictBoundary

FRAME_PAD = 0.04  # of the frame's span, on every side
OUTLINE = "#546e7a"  # the line around every district


class Place(NamedTuple):
    """A point the map names: a site, a pool or the landfill gate."""

    id: str
    name: str
    lon: float
    lat: float


class Frame(NamedTuple):
    """The part of the city the map shows: (lon, lat) bounds. (A NamedTuple: Dash imports pages
    outside sys.modules, where a dataclass cannot resolve its own module.)"""

    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float

    @classmethod
    def around(cls, lons: list[float], lats: list[float]) -> Frame:
        """The box around the points, padded; at least ~1 km wide."""
        span = max(max(lons) - min(lons), max(lats) - min(lats), 0.01)
        pad = span * FRAME_PAD
        return cls(min(lons) - pad, min(lats) - pad, max(lons) + pad, max(lats) + pad)

    def holds(self, lon: float, lat: float) -> bool:
        """Whether the point is inside the frame."""
        return self.min_lon <= lon <= self.max_lon and self.min_lat <= lat <= self.max_lat

    @property
    def centre(self) -> tuple[float, float]:
        """(lon, lat) of the middle."""
        return (self.min_lon + self.max_lon) / 2, (self.min_lat + self.max_lat) / 2

    def edge_towards(self, lon: float, lat: float) -> tuple[float, float, float, float]:
        """Where the line from the centre to an outside point leaves the frame, and the unit
        direction (in equal-distance units) of that line: (lon, lat, dx, dy)."""
        cx, cy = self.centre
        squash = math.cos(math.radians(cy))
        dx, dy = (lon - cx) * squash, lat - cy
        length = math.hypot(dx, dy) or 1.0
        half_w, half_h = (self.max_lon - self.min_lon) / 2 * squash, (self.max_lat - cy)
        # Scale the direction until it touches the nearer side, a little inside the frame.
        scale = 0.97 * min(
            half_w / abs(dx) if dx else math.inf, half_h / abs(dy) if dy else math.inf
        )
        return cx + dx * scale / squash, cy + dy * scale, dx / length, dy / length


def km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in km between two (lon, lat) points."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 6371.0 * math.asin(math.sqrt(h))


def rings_xy(district: DistrictBoundary) -> tuple[list[float | None], list[float | None]]:
    """Every ring of a district as one path: x (lon) and y (lat) lists, rings apart by None."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    for polygon in district.geometry.coordinates:
        for ring in polygon:
            if xs:
                xs.append(None)
                ys.append(None)
            xs += [p[0] for p in ring]
            ys += [p[1] for p in ring]
    return xs, ys


def point_off_frame(fig: go.Figure, outside: list[Place], frame: Frame, lang: Lang) -> None:
    """An arrow at the frame's edge towards each place outside it, with its name and distance."""
    centre = frame.centre
    for p in outside:
        x, y, dx, dy = frame.edge_towards(p.lon, p.lat)
        fig.add_annotation(
            x=x,
            y=y,
            ax=-dx * 46,
            ay=dy * 46,
            text=t(
                "map_off_frame",
                lang,
                name=p.name,
                km=fmt.number(km(centre, (p.lon, p.lat)), lang, 0),
            ),
            showarrow=True,
            arrowhead=3,
            arrowsize=1.2,
            arrowcolor="#37474f",
            # The text sits at the arrow's tail, inside the frame: let it run inwards.
            xanchor="left" if dx < 0 else "right",
            font={"size": 11, "color": "#263238"},
            bgcolor="rgba(255,255,255,0.85)",
            name=f"off-frame:{p.id}",
        )


def map_layout(fig: go.Figure, frame: Frame, lang: Lang) -> None:
    """Axes on the frame, at true proportions, with the legend above and the scale below."""
    squash = math.cos(math.radians(frame.centre[1]))
    fig.update_layout(
        # No fixed height: the graph fills its box, sized for the screen in assets/map.css.
        autosize=True,
        margin={"l": 4, "r": 4, "t": 64, "b": 64},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        xaxis={"range": [frame.min_lon, frame.max_lon], "visible": False, "constrain": "domain"},
        # One km north is as long on screen as one km east (equirectangular at the city's latitude).
        yaxis={
            "range": [frame.min_lat, frame.max_lat],
            "visible": False,
            "scaleanchor": "x",
            "scaleratio": 1 / squash,
            "constrain": "domain",
        },
        # The sites' legend above the map, the districts' colour scale below it: neither covers
        # the other whatever the height.
        legend={"orientation": "h", "x": 0.0, "xanchor": "left", "y": 1.0, "yanchor": "bottom"},
        plot_bgcolor="#fafafa",
        paper_bgcolor="rgba(0,0,0,0)",
        dragmode="pan",
        hovermode="closest",
    )


def district_shape(district: DistrictBoundary, fill: str, text: str) -> go.Scatter:
    """A district's outline filled with `fill`, `text` on hover (over its whole area)."""
    xs, ys = rings_xy(district)
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        fill="toself",
        fillcolor=fill,
        line={"color": OUTLINE, "width": 1},
        name=district.name,
        meta=f"district:{district.district_id}",
        text=text,
        hoveron="fills",
        hoverinfo="text",
        showlegend=False,
    )


def outlines(boundaries: DistrictBoundariesAnswer, fill: str = "#f4f6f7") -> list[go.Scatter]:
    """Every district's outline, lightly filled, its name on hover: the city under other traces."""
    return [district_shape(d, fill, d.name) for d in boundaries.districts]
