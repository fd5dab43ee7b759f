"""GET /v1/districts/boundaries: the city's district outlines for the map (GeoJSON MultiPolygons)."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Request, Response

from api.deps import CityDep, Conn, LightLane, ViewerKey
from api.errors import ERROR_RESPONSES
from api.queries.district_boundaries import district_boundaries
from pisman.contract import DistrictBoundariesAnswer

router = APIRouter(
    prefix="/v1", tags=["districts"], dependencies=[LightLane], responses=ERROR_RESPONSES
)

# Outlines change only when a city file is loaded again: a browser or client may keep them a
# few minutes, then revalidate with If-None-Match (304, no body). Private: the answer depends on
# the caller's city limits.
CACHE_CONTROL = "private, max-age=300"


@router.get(
    "/districts/boundaries",
    summary="District outlines (GeoJSON MultiPolygons, WGS84) for the map; empty without them",
    response_model=DistrictBoundariesAnswer,
    responses={304: {"description": "Not modified: the outlines match the If-None-Match ETag."}},
)
async def get_district_boundaries(
    request: Request, conn: Conn, key: ViewerKey, city: CityDep
) -> Response:
    """The outlines the city file provides (docs/city-data.md, Boundaries), with an ETag."""
    answer = await district_boundaries(conn, city_id=city.city_id)
    body = answer.model_dump_json(by_alias=True).encode()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": "Authorization, X-API-Key"}
    presented = request.headers.get("if-none-match", "")
    if etag in (tag.strip().removeprefix("W/") for tag in presented.split(",")):
        return Response(status_code=304, headers=headers)
    return Response(content=body, media_type="application/json", headers=headers)
