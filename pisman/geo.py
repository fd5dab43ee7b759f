"""District boundaries: validate a city's GeoJSON (bytes in, shapes or a reason out, no I/O)."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

# A city's kecamatan outlines, simplified for a dashboard, take tens to hundreds of kilobytes
# (Bandung's 30 at ~20 vertices each: ~40 kB). Survey-grade files of several megabytes are the
# wrong tool for a tile-less map and would be sent to every browser: simplify them first.
MAX_BYTES = 5_000_000
MAX_VERTICES = 200_000
MAX_FEATURES = 1_000
# Rounding to 6 decimals keeps ~0.1 m: far finer than any kecamatan outline needs.
DECIMALS = 6
# The property of each feature naming the district id of the city file.
DISTRICT_PROPERTY = "district"

Position = tuple[float, float]
Ring = list[Position]
Polygon = list[Ring]


class BoundaryError(ValueError):
    """A boundary file cannot be used; str() says what and where (feature index, district)."""


@dataclass(frozen=True, slots=True)
class DistrictShape:
    """One district's outline as MultiPolygon coordinates: polygons of rings of (lon, lat)."""

    district_id: str
    polygons: list[Polygon]

    def bbox(self) -> tuple[float, float, float, float]:
        """(min lon, min lat, max lon, max lat)."""
        lons = [p[0] for poly in self.polygons for ring in poly for p in ring]
        lats = [p[1] for poly in self.polygons for ring in poly for p in ring]
        return min(lons), min(lats), max(lons), max(lats)

    def geometry(self) -> dict[str, Any]:
        """The GeoJSON geometry object (always a MultiPolygon)."""
        return {
            "type": "MultiPolygon",
            "coordinates": [[[list(p) for p in ring] for ring in poly] for poly in self.polygons],
        }


def _reject_constant(name: str) -> float:
    raise BoundaryError(f"not valid JSON: {name} is not a number JSON allows")


def _decode(data: bytes) -> Any:
    if len(data) > MAX_BYTES:
        raise BoundaryError(
            f"file is {len(data):,} bytes, more than the {MAX_BYTES:,} allowed: "
            "simplify the outlines (a dashboard map needs no survey-grade detail)"
        )
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except BoundaryError:
        raise
    except UnicodeDecodeError as exc:
        raise BoundaryError(f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise BoundaryError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:  # huge integers, absurd nesting
        raise BoundaryError(f"not valid JSON: {type(exc).__name__}") from None


def _position(value: Any, where: str) -> Position:
    if not isinstance(value, list) or len(value) not in (2, 3):
        raise BoundaryError(f"{where}: a position must be [longitude, latitude], got {value!r:.60}")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        raise BoundaryError(f"{where}: coordinates must be numbers, got {value!r:.60}")
    try:
        lon, lat = float(value[0]), float(value[1])
    except OverflowError:
        lon = lat = math.inf
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise BoundaryError(f"{where}: coordinates must be finite numbers")
    if not -180 <= lon <= 180 or not -90 <= lat <= 90:
        raise BoundaryError(
            f"{where}: coordinates out of range ({lon}, {lat}): GeoJSON positions are "
            "[longitude -180..180, latitude -90..90] in WGS84 (are they swapped, or projected?)"
        )
    return round(lon, DECIMALS), round(lat, DECIMALS)


def _ring(value: Any, where: str) -> Ring:
    if not isinstance(value, list):
        raise BoundaryError(f"{where}: a ring must be a list of positions")
    ring = [_position(p, f"{where} position {i}") for i, p in enumerate(value)]
    if len(ring) < 4:
        raise BoundaryError(
            f"{where}: a ring needs at least 4 positions (3 corners and the first again), "
            f"got {len(ring)}"
        )
    if ring[0] != ring[-1]:
        raise BoundaryError(
            f"{where}: ring is not closed (first position {list(ring[0])} "
            f"differs from the last {list(ring[-1])})"
        )
    if _area(ring) == 0:
        raise BoundaryError(f"{where}: ring has no area (all positions on a line)")
    return ring


def _area(ring: Sequence[Position]) -> float:
    """Twice the signed area (shoelace), in square degrees; relative to the first position, so
    that large coordinates do not cancel out small areas."""
    x0, y0 = ring[0]
    return sum(
        (a[0] - x0) * (b[1] - y0) - (b[0] - x0) * (a[1] - y0) for a, b in itertools.pairwise(ring)
    )


def _polygon(value: Any, where: str) -> Polygon:
    if not isinstance(value, list) or not value:
        raise BoundaryError(f"{where}: a polygon must be a non-empty list of rings")
    return [_ring(r, f"{where} ring {i}") for i, r in enumerate(value)]


def _geometry(value: Any, where: str) -> list[Polygon]:
    if not isinstance(value, dict):
        raise BoundaryError(f"{where}: geometry must be an object (Polygon or MultiPolygon)")
    kind = value.get("type")
    coords = value.get("coordinates")
    if kind == "Polygon":
        return [_polygon(coords, where)]
    if kind == "MultiPolygon":
        if not isinstance(coords, list) or not coords:
            raise BoundaryError(f"{where}: a MultiPolygon needs a non-empty list of polygons")
        return [_polygon(p, f"{where} polygon {i}") for i, p in enumerate(coords)]
    raise BoundaryError(f"{where}: geometry is {kind!r:.40}, not a Polygon or MultiPolygon")


def parse_boundaries(
    data: bytes, district_ids: Collection[str], *, without: Collection[str] = ()
) -> list[DistrictShape]:
    """The districts' shapes from a GeoJSON FeatureCollection, in the order of `district_ids`.

    Each feature names its district in `properties.district`. Every district of the city file
    needs exactly one feature, except those in `without` (districts that are not an area of the
    city, e.g. a landfill's own entry), which must have none. Raises BoundaryError with the reason.
    """
    doc = _decode(data)
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise BoundaryError(
            "must be a GeoJSON FeatureCollection (an object with type and features)"
        )
    features = doc.get("features")
    if not isinstance(features, list) or not features:
        raise BoundaryError("features must be a non-empty list")
    if len(features) > MAX_FEATURES:
        raise BoundaryError(f"{len(features)} features, more than the {MAX_FEATURES} allowed")
    known, exempt = set(district_ids), set(without)
    unknown_exempt = sorted(exempt - known)
    if unknown_exempt:
        raise BoundaryError(f"without: unknown district(s) {', '.join(unknown_exempt)}")
    shapes: dict[str, DistrictShape] = {}
    vertices = 0
    for i, feature in enumerate(features):
        where = f"features.{i}"
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise BoundaryError(f"{where}: must be a GeoJSON Feature")
        props = feature.get("properties")
        district = props.get(DISTRICT_PROPERTY) if isinstance(props, dict) else None
        if not isinstance(district, str) or not district:
            raise BoundaryError(
                f"{where}: properties.{DISTRICT_PROPERTY} must name a district id of the city file"
            )
        where = f"{where} ({district})"
        if district not in known:
            raise BoundaryError(
                f"{where}: unknown district {district!r:.70} (not in the city file)"
            )
        if district in exempt:
            raise BoundaryError(f"{where}: district is listed under 'without' but has a feature")
        if district in shapes:
            raise BoundaryError(f"{where}: district has more than one feature")
        polygons = _geometry(feature.get("geometry"), where)
        vertices += sum(len(r) for p in polygons for r in p)
        if vertices > MAX_VERTICES:
            raise BoundaryError(
                f"more than {MAX_VERTICES:,} positions: simplify the outlines for the dashboard"
            )
        shapes[district] = DistrictShape(district, polygons)
    missing = [d for d in district_ids if d not in shapes and d not in exempt]
    if missing:
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise BoundaryError(
            f"no feature for district(s) {', '.join(missing[:5])}{more} "
            "(list districts that are not an area of the city under 'without')"
        )
    return [shapes[d] for d in district_ids if d in shapes]


def bbox(shapes: Sequence[DistrictShape]) -> tuple[float, float, float, float] | None:
    """The bounding box of all shapes (min lon, min lat, max lon, max lat), None without shapes."""
    if not shapes:
        return None
    boxes = [s.bbox() for s in shapes]
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


def contains(polygons: Sequence[Polygon], lon: float, lat: float) -> bool:
    """Whether (lon, lat) lies inside the shape (even-odd rule over every ring: holes excluded)."""
    inside = False
    for poly in polygons:
        for ring in poly:
            for (x1, y1), (x2, y2) in itertools.pairwise(ring):
                if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
                    inside = not inside
    return inside
