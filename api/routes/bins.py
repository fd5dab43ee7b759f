"""GET /v1/bins: current fill of every bin sensor and which bins need collection."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.queries.bins import list_bins
from pisman.contract import Bin
from pisman.domain import ID_PATTERN

router = APIRouter(prefix="/v1", tags=["bins"], responses=ERROR_RESPONSES)


@router.get("/bins", summary="Bins with current fill; those above their threshold need collection")
async def get_bins(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    needs_collection: Annotated[
        bool | None,
        Query(description="Only bins at or above their threshold (true) or below it (false)."),
    ] = None,
) -> list[Bin]:
    """Bins of the city, fullest first."""
    items = await list_bins(conn, city_id=city.city_id, tz=city.tz, district=district)
    if needs_collection is not None:
        items = [i for i in items if i.needs_collection == needs_collection]
    return items
