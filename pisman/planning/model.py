"""The collection plan's inputs and outputs: plain dataclasses; times are minutes after the plan day's local midnight."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pisman.contract import PLAN_REASON_TEXT
from pisman.forecast import Forecast
from pisman.planning.distance import DistanceMatrix

# Why a depot is not in the plan (codes; texts are in REASONS, Bahasa Indonesia first).
NO_DATA = "no_data"
NO_TRUCKS = "no_trucks"
NO_CAPACITY = "no_capacity"
NOT_REACHABLE = "not_reachable"
DEFERRED = "deferred"
REASONS: dict[str, str] = {code: f"{id_} / {en}" for code, (id_, en) in PLAN_REASON_TEXT.items()}


@dataclass(frozen=True, slots=True)
class Point:
    """A place trucks drive to or from."""

    id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class TruckSpec:
    """One truck for the day."""

    truck_id: str
    pool_id: str
    capacity_kg: int
    shift_start_min: int
    shift_end_min: int


@dataclass(frozen=True, slots=True)
class Landfill:
    """The landfill gate: where loads go, and when it accepts them."""

    site_id: str
    name: str
    lat: float
    lon: float
    open_min: int
    close_min: int
    unload_min: int


@dataclass(frozen=True, slots=True)
class BinState:
    """A depot's bin as the planner sees it: where, how big, which pool, and its forecast."""

    site_id: str
    device_id: str
    site_name: str
    district_id: str
    district_name: str
    kelurahan: str | None
    lat: float
    lon: float
    container_kg: int
    threshold: float
    pool_id: str | None
    forecast: Forecast | None


@dataclass(frozen=True, slots=True)
class Stop:
    """A depot the trucks may empty: its expected load, whether it must be emptied, and its window."""

    site_id: str
    device_id: str
    site_name: str
    district_id: str
    district_name: str
    kelurahan: str | None
    lat: float
    lon: float
    pool_id: str | None
    load_kg: int
    expected_fill: float
    mandatory: bool
    above_threshold: bool
    window_start_min: int
    window_end_min: int
    why: str


@dataclass(frozen=True, slots=True)
class Uncovered:
    """A depot that needed emptying and is not in the plan, with the reason."""

    site_id: str
    site_name: str
    district_id: str
    kelurahan: str | None
    pool_id: str | None
    expected_fill: float | None
    reason_code: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanInput:
    """Everything one day's plan needs."""

    day: date
    tz_name: str
    pools: list[Point]
    trucks: list[TruckSpec]
    landfill: Landfill
    stops: list[Stop]
    service_min: int
    speed_kmh: float
    distance: DistanceMatrix
    time_limit_s: float = 20.0
    uncovered: list[Uncovered] = field(default_factory=list)
    # Deterministic search: greedy descent to a local optimum instead of guided local search
    # under a time limit (the time limit stays as a backstop), so the same input gives the same
    # plan on any machine, however busy (the simulator's closed loop).
    deterministic: bool = False


@dataclass(frozen=True, slots=True)
class PlannedStop:
    """One stop of a trip, in order."""

    order: int
    stop: Stop
    arrival_min: int
    load_before_kg: int

    @property
    def late_min(self) -> int:
        """Minutes after the stop's window (the forecast overflow time on a fast day)."""
        return max(0, self.arrival_min - self.stop.window_end_min)


@dataclass(frozen=True, slots=True)
class Trip:
    """Depots emptied in order, then the landfill."""

    number: int
    stops: list[PlannedStop]
    landfill_arrival_min: int
    load_kg: int
    km: float


@dataclass(frozen=True, slots=True)
class TruckRoute:
    """A truck's day: from its pool, trips to the landfill, back to the pool."""

    truck: TruckSpec
    start_min: int
    end_min: int
    trips: list[Trip]
    km: float

    @property
    def load_kg(self) -> int:
        """Everything the truck carries to the landfill that day."""
        return sum(t.load_kg for t in self.trips)


@dataclass(frozen=True, slots=True)
class Plan:
    """A day's plan: routes of the trucks that drive, depots left out and why, and the solver's account."""

    day: date
    routes: list[TruckRoute]
    uncovered: list[Uncovered]
    optional_left: int
    solve_s: float
    messages: list[str]
    deferred: list[Uncovered] = field(default_factory=list)

    @property
    def trips(self) -> int:
        """Landfill trips."""
        return sum(len(r.trips) for r in self.routes)

    @property
    def km(self) -> float:
        """Truck-km of all routes."""
        return sum(r.km for r in self.routes)

    @property
    def load_kg(self) -> int:
        """Tonnage (kg) all trucks carry to the landfill."""
        return sum(r.load_kg for r in self.routes)
