"""GET /v1/sites and /v1/sites/{site_id}: places with their device counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.queries.device_status import list_devices
from api.queries.sites import list_sites
from pisman.contract import Site, SiteDetail
from pisman.domain import ID_PATTERN, SiteType

router = APIRouter(prefix="/v1", tags=["sites"], responses=ERROR_RESPONSES)


@router.get("/sites", summary="Sites (waste banks, depots, facilities, landfill gates)")
async def get_sites(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    site_type: Annotated[SiteType | None, Query()] = None,
    active: Annotated[bool | None, Query()] = None,
) -> list[Site]:
    """Sites of the city, in id order."""
    return await list_sites(
        conn, city_id=city.city_id, district=district, site_type=site_type, active=active
    )


@router.get("/sites/{site_id}", summary="One site with its devices")
async def get_site(
    conn: Conn, key: ViewerKey, city: CityDep, site_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> SiteDetail:
    """One site and the list of its devices; 404 when unknown in this city."""
    items = await list_sites(conn, city_id=city.city_id, site_id=site_id)
    if not items:
        raise HTTPException(404, detail=f"no site {site_id!r} in city {city.city_id!r}")
    devices = await list_devices(conn, city_id=city.city_id, tz=city.tz, site_id=site_id)
    return SiteDetail(**items[0].model_dump(), device_list=devices)
