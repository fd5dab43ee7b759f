"""Sites of a city with their count of active devices."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from api.queries.rows import fetch_all
from pisman.contract import Site
from pisman.domain import ProcessKind, SiteType

SITES = """
SELECT s.site_id, s.name, s.site_type, s.process_kind, s.district_id, d.name AS district_name,
       s.kelurahan, s.rw, s.lat, s.lon, s.active, s.capacity_t_per_day,
       (SELECT count(*) FROM device dv WHERE dv.site_id = s.site_id AND dv.active) AS devices
FROM site s JOIN district d ON d.city_id = s.city_id AND d.district_id = s.district_id
WHERE s.city_id = %(city)s
  AND (%(site)s::text IS NULL OR s.site_id = %(site)s)
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
  AND (%(site_type)s::text IS NULL OR s.site_type = %(site_type)s)
  AND (%(active)s::boolean IS NULL OR s.active = %(active)s)
ORDER BY s.site_id
"""


@dataclass(frozen=True, slots=True)
class SiteRow:
    """A row of SITES."""

    site_id: str
    name: str
    site_type: str
    process_kind: str | None
    district_id: str
    district_name: str
    kelurahan: str | None
    rw: str | None
    lat: float | None
    lon: float | None
    active: bool
    capacity_t_per_day: Decimal | None
    devices: int

    def answer(self) -> Site:
        """The row as the API shows it."""
        return Site(
            site_id=self.site_id,
            name=self.name,
            site_type=SiteType(self.site_type),
            process_kind=ProcessKind(self.process_kind) if self.process_kind else None,
            district_id=self.district_id,
            district_name=self.district_name,
            kelurahan=self.kelurahan,
            rw=self.rw,
            lat=self.lat,
            lon=self.lon,
            active=self.active,
            capacity_t_per_day=(
                float(self.capacity_t_per_day) if self.capacity_t_per_day is not None else None
            ),
            devices=self.devices,
        )


async def list_sites(
    conn: psycopg.AsyncConnection[Any],
    *,
    city_id: str,
    site_id: str | None = None,
    district: str | None = None,
    site_type: SiteType | None = None,
    active: bool | None = None,
) -> list[Site]:
    """The city's sites in id order, filtered."""
    params = {
        "city": city_id,
        "site": site_id,
        "district": district,
        "site_type": site_type.value if site_type is not None else None,
        "active": active,
    }
    return [r.answer() for r in await fetch_all(conn, SiteRow, SITES, params)]
