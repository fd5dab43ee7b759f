"""The city's district outlines (sql/060_district_boundary.sql) with the districts' names."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from api.queries.rows import fetch_all
from pisman.contract import DistrictBoundariesAnswer, DistrictBoundary, MultiPolygonGeometry

BOUNDARIES = """
SELECT b.district_id, d.name, b.geometry, b.min_lon, b.min_lat, b.max_lon, b.max_lat, b.source
FROM district_boundary b
JOIN district d ON d.city_id = b.city_id AND d.district_id = b.district_id
WHERE b.city_id = %s
ORDER BY d.name, b.district_id
"""


@dataclass(frozen=True, slots=True)
class BoundaryRow:
    """A row of BOUNDARIES."""

    district_id: str
    name: str
    geometry: dict[str, Any]
    min_lon: float
    min_lat: float
    max_lon: float
    max_lat: float
    source: str


async def district_boundaries(
    conn: psycopg.AsyncConnection[Any], *, city_id: str
) -> DistrictBoundariesAnswer:
    """Every outline of the city, by district name; an empty answer for a city without them."""
    rows = await fetch_all(conn, BoundaryRow, BOUNDARIES, (city_id,))
    districts = [
        DistrictBoundary(
            district_id=r.district_id,
            name=r.name,
            geometry=MultiPolygonGeometry.model_validate(r.geometry),
            bbox=[r.min_lon, r.min_lat, r.max_lon, r.max_lat],
        )
        for r in rows
    ]
    bbox = (
        [
            min(r.min_lon for r in rows),
            min(r.min_lat for r in rows),
            max(r.max_lon for r in rows),
            max(r.max_lat for r in rows),
        ]
        if rows
        else None
    )
    # One city file gives one source; should rows ever disagree, name each once.
    sources = sorted({r.source for r in rows})
    return DistrictBoundariesAnswer(
        city=city_id, source="; ".join(sources) or None, bbox=bbox, districts=districts
    )
