"""GET /v1/devices and /v1/devices/{device_id}: last seen, online/offline, battery, fill."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query

from api.deps import CityDep, Conn, ViewerKey
from api.errors import ERROR_RESPONSES
from api.queries.device_status import list_devices
from pisman.contract import Device
from pisman.domain import ID_PATTERN, DeviceKind, DeviceStatus

router = APIRouter(prefix="/v1", tags=["devices"], responses=ERROR_RESPONSES)


@router.get("/devices", summary="Devices with last-seen, status and battery")
async def get_devices(
    conn: Conn,
    key: ViewerKey,
    city: CityDep,
    kind: Annotated[DeviceKind | None, Query()] = None,
    district: Annotated[str | None, Query(pattern=ID_PATTERN)] = None,
    # A filter, not a status: `offline` also lists devices never seen.
    status: Annotated[
        Literal["online", "offline"] | None,
        Query(description="online, or offline (silent or never seen)"),
    ] = None,
) -> list[Device]:
    """Devices of the city; offline = silent for 3 reporting intervals or a last-will 'offline'."""
    items = await list_devices(conn, city_id=city.city_id, tz=city.tz, kind=kind, district=district)
    if status is not None:
        online = status == DeviceStatus.ONLINE
        items = [i for i in items if (i.status == DeviceStatus.ONLINE) == online]
    return items


@router.get("/devices/{device_id}", summary="One device")
async def get_device(
    conn: Conn, key: ViewerKey, city: CityDep, device_id: Annotated[str, Path(pattern=ID_PATTERN)]
) -> Device:
    """One device with its status; 404 when unknown in this city."""
    items = await list_devices(conn, city_id=city.city_id, tz=city.tz, device_id=device_id)
    if not items:
        raise HTTPException(404, detail=f"no device {device_id!r} in city {city.city_id!r}")
    return items[0]
