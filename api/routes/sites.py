"""GET /v1/sites and /v1/sites/{site_id}: places with their device counts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CityDep, Conn, ViewerKey
from api.params import ID_PATTERN
from api.routes.devices import list_device_items

router = APIRouter(prefix="/v1", tags=["sites"])

SITES = """
SELECT s.site_id, s.name, s.site_type, s.process_kind, s.district_id, d.name, s.kelurahan, s.rw,
       s.lat, s.lon, s.active, s.capacity_t_per_day,
       (SELECT count(*) FROM device dv WHERE dv.site_id = s.site_id AND dv.active) AS devices
FROM site s JOIN district d ON d.city_id = s.city_id AND d.district_id = s.district_id
WHERE s.city_id = %(city)s
  AND (%(site)s::text IS NULL OR s.site_id = %(site)s)
  AND (%(district)s::text IS NULL OR s.district_id = %(district)s)
  AND (%(site_type)s::text IS NULL OR s.site_type = %(site_type)s)
  AND (%(active)s::boolean IS NULL OR s.active = %(active)s)
ORDER BY s.site_id
"""

SiteType = Literal["waste_bank", "waste_bank_hub", "depot", "processing", "landfill"]


def _site_item(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "site_id": r[0],
        "name": r[1],
        "site_type": r[2],
        "process_kind": r[3],
        "district_id": r[4],
        "district_name": r[5],
        "kelurahan": r[6],
        "rw": r[7],
        "lat": r[8],
        "lon": r[9],
        "active": r[10],
        "capacity_t_per_day": float(r[11]) if r[11] is not None else None,
        "devices": r[12],
    }


async def list_site_items(
    conn: Conn,
    *,
    city_id: str,
    site_id: str | None = None,
    district: str | None = None,
    site_type: str | None = None,
    active: bool | None = None,
) -> list[dict[str, Any]]:
    """Sites of a city, filtered."""
    params = {
        "city": city_id,
        "site": site_id,
        "district": district,
        "site_type": site_type,
        "active": active,
    }
    return [_site_item(r) for r in await (await conn.execute(SITES, params)).fetchall()]


@router.get("/sites", summary="Sites (waste banks, depots, facilities, landfill gates)")
async def get_sites(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    site_type: Annotated[SiteType | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> list[dict[str, Any]]:
    """Sites of the city, in id order."""
    return await list_site_items(
        conn, city_id=city.city_id, district=district, site_type=site_type, active=active
    )


@router.get("/sites/{site_id}", summary="One site with its devices")
async def get_site(
    conn: Conn, key: ViewerKey, city: CityDep, site_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> dict[str, Any]:
    """One site and the list of its devices; 404 when unknown in this city."""
    items = await list_site_items(conn, city_id=city.city_id, site_id=site_id)
    if not items:
        raise HTTPException(404, detail=f"no site {site_id!r} in city {city.city_id!r}")
    return {
        **items[0],
        "device_list": await list_device_items(
            conn, city_id=city.city_id, tz=city.tz, site_id=site_id
        ),
    }
