"""What a collection plan is made from: the city's fleet parameters, pools, trucks and depot bins."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg

from api.queries.rows import fetch_all, fetch_one
from pisman.domain import DeviceKind, SiteType

PARAMS = """
SELECT p.landfill_site_id, s.name AS landfill_name, s.lat AS landfill_lat, s.lon AS landfill_lon,
       p.landfill_open_h, p.landfill_close_h, p.landfill_unload_min, p.service_min,
       p.detour_factor, p.speed_kmh, p.container_kg
FROM collection_params p JOIN site s ON s.site_id = p.landfill_site_id
WHERE p.city_id = %(city)s
"""
POOLS = """
SELECT pool_id, name, lat, lon, districts FROM truck_pool WHERE city_id = %(city)s ORDER BY pool_id
"""
TRUCKS = """
SELECT truck_id, pool_id, capacity_kg, shift_start_h, shift_end_h
FROM truck WHERE city_id = %(city)s ORDER BY truck_id
"""
DEPOT_BINS = f"""
SELECT s.site_id, d.device_id, s.name AS site_name, s.district_id, di.name AS district_name,
       s.kelurahan, s.lat, s.lon, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold
FROM device d
JOIN site s ON s.site_id = d.site_id
JOIN district di ON di.city_id = s.city_id AND di.district_id = s.district_id
JOIN city c ON c.city_id = d.city_id
WHERE d.city_id = %(city)s AND d.kind = '{DeviceKind.BIN_SENSOR.value}' AND d.active AND s.active
  AND s.site_type = '{SiteType.DEPOT.value}' AND s.lat IS NOT NULL AND s.lon IS NOT NULL
ORDER BY s.site_id, d.device_id
"""
TRUCK_EXISTS = "SELECT 1 FROM truck WHERE city_id = %(city)s AND truck_id = %(truck)s"


@dataclass(frozen=True, slots=True)
class FleetParams:
    """The city's landfill gate and the figures every route uses (sql/035)."""

    landfill_site_id: str
    landfill_name: str
    landfill_lat: float
    landfill_lon: float
    landfill_open_h: Decimal
    landfill_close_h: Decimal
    landfill_unload_min: Decimal
    service_min: Decimal
    detour_factor: Decimal
    speed_kmh: Decimal
    container_kg: int


@dataclass(frozen=True, slots=True)
class PoolRow:
    """A truck pool and the districts it serves."""

    pool_id: str
    name: str
    lat: float
    lon: float
    districts: list[str]


@dataclass(frozen=True, slots=True)
class TruckRow:
    """A truck, its capacity and its shift in local hours."""

    truck_id: str
    pool_id: str
    capacity_kg: int
    shift_start_h: Decimal
    shift_end_h: Decimal


@dataclass(frozen=True, slots=True)
class DepotBin:
    """An active bin sensor at an active depot with coordinates."""

    site_id: str
    device_id: str
    site_name: str
    district_id: str
    district_name: str
    kelurahan: str | None
    lat: float
    lon: float
    threshold: Decimal


@dataclass(frozen=True, slots=True)
class PlanInputs:
    """Everything the plan reads from the database (params None: the city has no fleet data)."""

    params: FleetParams | None
    pools: list[PoolRow]
    trucks: list[TruckRow]
    bins: list[DepotBin]


async def plan_inputs(conn: psycopg.AsyncConnection[Any], *, city_id: str) -> PlanInputs:
    """The city's fleet and depot bins."""
    city = {"city": city_id}
    return PlanInputs(
        params=await fetch_one(conn, FleetParams, PARAMS, city),
        pools=await fetch_all(conn, PoolRow, POOLS, city),
        trucks=await fetch_all(conn, TruckRow, TRUCKS, city),
        bins=await fetch_all(conn, DepotBin, DEPOT_BINS, city),
    )


async def truck_exists(conn: psycopg.AsyncConnection[Any], *, city_id: str, truck_id: str) -> bool:
    """Whether the city's fleet has this truck."""
    row = await (await conn.execute(TRUCK_EXISTS, {"city": city_id, "truck": truck_id})).fetchone()
    return row is not None
