"""The collection plan as the API answers it (pydantic): shared by the API and the dashboard."""

from __future__ import annotations

from pydantic import BaseModel


class PlanStop(BaseModel):
    """One depot stop, in the truck's order."""

    order: int
    site_id: str
    site_name: str
    district_id: str
    district_name: str
    kelurahan: str | None
    lat: float
    lon: float
    expected_fill_pct: float
    load_t: float
    window_start: str
    window_end: str
    arrival: str
    late_min: int
    mandatory: bool
    above_threshold: bool
    why: str


class PlanTrip(BaseModel):
    """Depots emptied in order, then the landfill gate."""

    number: int
    load_t: float
    km: float
    landfill_arrival: str
    stops: list[PlanStop]


class PlanTruck(BaseModel):
    """A truck's day."""

    truck_id: str
    pool_id: str
    capacity_t: float
    start: str
    end: str
    km: float
    load_t: float
    trips: list[PlanTrip]


class PlanUncovered(BaseModel):
    """A depot that needs emptying and is not in the plan, and why."""

    site_id: str
    site_name: str
    district_id: str
    kelurahan: str | None
    pool_id: str | None
    expected_fill_pct: float | None
    reason_code: str
    reason: str


class PlanSummary(BaseModel):
    """The plan's totals."""

    trucks_used: int
    trucks_available: int
    trips: int
    km: float
    load_t: float
    t_per_trip: float | None
    stops: int
    stops_needed: int
    uncovered: int
    optional_left: int
    solve_s: float


class PlanPlace(BaseModel):
    """A pool or the landfill gate on the map."""

    id: str
    name: str
    lat: float
    lon: float


class PlanAnswer(BaseModel):
    """A day's collection plan; `status`: ok, partial (some depots uncovered), empty, no_fleet."""

    city_id: str
    date: str
    pool: str | None
    as_of: str
    status: str
    messages: list[str]
    summary: PlanSummary
    trucks: list[PlanTruck]
    uncovered: list[PlanUncovered]
    deferred: list[PlanUncovered]
    pools: list[PlanPlace]
    landfill: PlanPlace | None
    landfill_hours: str | None
