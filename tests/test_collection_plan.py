"""The collection planner (pisman/planning): feasible plans, and infeasible input reported, never raised."""

from __future__ import annotations

import math
import random
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from pisman import planning as P
from pisman.citydata import City, read_city_file
from pisman.forecast import Forecast
from pisman.settings import PROJECT_ROOT

TZ = ZoneInfo("Asia/Jakarta")
DAY = date(2026, 12, 7)
AS_OF = datetime(2026, 12, 6, 20, 0, tzinfo=TZ)
CITIES = PROJECT_ROOT / "data" / "cities"


def _forecast(fill: float, per_day: float, *, ok: bool = True) -> Forecast:
    return Forecast(
        status="ok" if ok else "insufficient_history",
        message="" if ok else "needs at least 24 hours of readings between emptyings; has 3",
        as_of=AS_OF,
        tz_name=str(TZ),
        current_fill=fill if ok else None,
        last_reading_at=AS_OF if ok else None,
        rate_by_hour_of_week=(per_day / 24,) * 168,
        band_low=0.8,
        band_high=1.25,
        history_hours=600,
        emptyings=10,
        pieces=20,
    )


def _inputs(
    city: City,
    fills: dict[str, tuple[float, float]] | None = None,
    *,
    seed: int = 1,
    trucks: list[P.TruckSpec] | None = None,
    time_limit_s: float = 3.0,
    no_data: set[str] = frozenset(),  # type: ignore[assignment]
) -> P.PlanInput:
    fleet = city.fleet
    assert fleet is not None
    rng = random.Random(seed)
    pool_of = {d: p.id for p in fleet.pools for d in p.districts}
    bins = []
    for s in city.all_sites():
        if s.type != "depot":
            continue
        fill, rate = (fills or {}).get(s.id, (rng.uniform(0.05, 0.75), rng.uniform(0.25, 0.55)))
        bins.append(
            P.BinState(
                s.id,
                f"{s.id}-bin1",
                s.name,
                s.district,
                s.district,
                None,
                s.lat,
                s.lon,
                8000,
                0.8,
                pool_of.get(s.district),
                _forecast(fill, rate, ok=s.id not in no_data),
            )
        )
    if trucks is None:
        trucks = [
            P.TruckSpec(
                t.id, t.pool, t.capacity_kg, int(t.shift_start_h * 60), int(t.shift_end_h * 60)
            )
            for t in fleet.all_trucks()
        ]
    stops, uncovered = P.select_stops(bins, day=DAY, tz=TZ, trucks=trucks)
    gate = next(s for s in city.all_sites() if s.id == fleet.landfill)
    return P.PlanInput(
        day=DAY,
        tz_name=str(TZ),
        pools=[P.Point(p.id, p.name, p.lat, p.lon) for p in fleet.pools],
        trucks=trucks,
        landfill=P.Landfill(
            gate.id,
            gate.name,
            gate.lat,
            gate.lon,
            int(fleet.landfill_hours.low * 60),
            int(fleet.landfill_hours.high * 60),
            int(fleet.landfill_unload_min.value),
        ),
        stops=stops,
        service_min=int(fleet.service_min.value),
        speed_kmh=fleet.speed_kmh.value,
        distance=P.HaversineMatrix(fleet.detour_factor.value),
        time_limit_s=time_limit_s,
        uncovered=uncovered,
    )


def _km(a: tuple[float, float], b: tuple[float, float], detour: float) -> float:
    """Haversine written out again, so the check does not trust the planner's own matrix."""
    la1, lo1, la2, lo2 = map(math.radians, (*a, *b))
    h = (
        math.sin((la2 - la1) / 2) ** 2
        + math.cos(la1) * math.cos(la2) * math.sin((lo2 - lo1) / 2) ** 2
    )
    return 2 * 6371.0088 * math.asin(math.sqrt(h)) * detour


def _assert_feasible(inp: P.PlanInput, plan: P.Plan) -> None:
    """Capacity per trip, time windows, landfill hours, shifts and driving times; every mandatory
    stop either visited once or reported."""
    detour = inp.distance.detour_factor  # type: ignore[attr-defined]
    lf = inp.landfill
    pools = {p.id: p for p in inp.pools}
    seen: list[str] = []
    for route in plan.routes:
        truck = route.truck
        assert truck.shift_start_min <= route.start_min and route.end_min <= truck.shift_end_min
        here = (pools[truck.pool_id].lat, pools[truck.pool_id].lon)
        t = route.start_min
        for trip in route.trips:
            assert 0 < trip.load_kg <= truck.capacity_kg, (
                truck.truck_id,
                trip.number,
                trip.load_kg,
            )
            assert trip.load_kg == sum(s.stop.load_kg for s in trip.stops)
            for ps in trip.stops:
                stop = ps.stop
                assert stop.pool_id == truck.pool_id  # a pool's trucks serve its own districts
                drive = _km(here, (stop.lat, stop.lon), detour) / inp.speed_kmh * 60
                assert ps.arrival_min >= t + drive - 1
                # Windows end when a bin would overflow on a fast day: a soft end, and an
                # arrival after it is reported as late, never hidden.
                assert stop.window_start_min <= ps.arrival_min <= truck.shift_end_min
                assert ps.late_min == max(0, ps.arrival_min - stop.window_end_min)
                t = ps.arrival_min + inp.service_min
                here = (stop.lat, stop.lon)
                seen.append(stop.site_id)
            drive = _km(here, (lf.lat, lf.lon), detour) / inp.speed_kmh * 60
            assert trip.landfill_arrival_min >= t + drive - 1
            assert lf.open_min <= trip.landfill_arrival_min <= lf.close_min
            t = trip.landfill_arrival_min + lf.unload_min
            here = (lf.lat, lf.lon)
        home = (
            _km(here, (pools[truck.pool_id].lat, pools[truck.pool_id].lon), detour)
            / inp.speed_kmh
            * 60
        )
        assert t + home <= truck.shift_end_min + 1
    assert len(seen) == len(set(seen))
    mandatory = {s.site_id for s in inp.stops if s.mandatory}
    reported = {u.site_id for u in plan.uncovered}
    assert mandatory <= set(seen) | reported
    assert not (set(seen) & reported)
    # Every bin above its threshold is collected, reported, or deferred with the forecast's reason.
    deferred = {u.site_id for u in plan.deferred}
    assert {s.site_id for s in inp.stops if s.above_threshold} <= set(seen) | reported | deferred
    assert all(u.reason_code == P.model.DEFERRED for u in plan.deferred)


@pytest.fixture(scope="module")
def testville() -> City:
    return read_city_file(CITIES / "testville.yaml")


@pytest.fixture(scope="module")
def bandung() -> City:
    return read_city_file(CITIES / "bandung.yaml")


def test_full_bins_are_all_collected_within_capacity_windows_and_landfill_hours(
    testville: City,
) -> None:
    inp = _inputs(testville, {"tv-tps-north": (0.75, 0.5), "tv-tps-south": (0.85, 0.4)})
    assert {s.site_id for s in inp.stops if s.mandatory} == {"tv-tps-north", "tv-tps-south"}
    plan = P.solve(inp)
    _assert_feasible(inp, plan)
    assert plan.uncovered == []
    visited = {ps.stop.site_id for r in plan.routes for t in r.trips for ps in t.stops}
    assert visited == {"tv-tps-north", "tv-tps-south"}
    assert plan.km > 0 and plan.load_kg == sum(s.load_kg for s in inp.stops)


def test_a_bin_that_stays_low_is_not_collected(testville: City) -> None:
    inp = _inputs(testville, {"tv-tps-north": (0.05, 0.1), "tv-tps-south": (0.85, 0.4)})
    assert [s.site_id for s in inp.stops] == ["tv-tps-south"]
    plan = P.solve(inp)
    _assert_feasible(inp, plan)
    assert plan.trips == 1


def test_a_bin_that_overflows_before_tomorrows_trucks_is_mandatory_today(testville: City) -> None:
    # 10 % now, 60 %/day: 55 % at today's shift end (14:00), but 100 % by 08:00 tomorrow on a fast day.
    inp = _inputs(testville, {"tv-tps-north": (0.1, 0.6), "tv-tps-south": (0.05, 0.1)})
    north = next(s for s in inp.stops if s.site_id == "tv-tps-north")
    assert north.mandatory and "besok" in north.why


def test_more_waste_than_the_fleet_can_carry_is_reported_with_the_reason(testville: City) -> None:
    small = [P.TruckSpec("tiny", "tv-pool", 1000, 6 * 60, 14 * 60)]
    inp = _inputs(
        testville, {"tv-tps-north": (0.9, 0.5), "tv-tps-south": (0.95, 0.4)}, trucks=small
    )
    plan = P.solve(inp)
    _assert_feasible(inp, plan)
    assert {u.site_id for u in plan.uncovered} == {"tv-tps-north", "tv-tps-south"}
    assert {u.reason_code for u in plan.uncovered} == {P.model.NO_CAPACITY}
    assert "kapasitas" in plan.uncovered[0].reason


def test_a_city_without_trucks_gets_a_plan_that_says_so(testville: City) -> None:
    inp = _inputs(testville, {"tv-tps-north": (0.9, 0.5), "tv-tps-south": (0.95, 0.4)}, trucks=[])
    plan = P.solve(inp)
    assert plan.routes == []
    assert {u.reason_code for u in plan.uncovered} == {P.model.NO_TRUCKS}
    assert any("tidak punya truk" in m for m in plan.messages)


def test_trucks_whose_shift_misses_the_landfill_hours_plan_nothing(testville: City) -> None:
    night = [P.TruckSpec("night", "tv-pool", 6000, 0, 5 * 60)]  # the gate opens at 06:00
    inp = _inputs(
        testville, {"tv-tps-north": (0.9, 0.5), "tv-tps-south": (0.95, 0.4)}, trucks=night
    )
    plan = P.solve(inp)
    assert plan.routes == []
    assert {u.reason_code for u in plan.uncovered} == {P.model.NOT_REACHABLE}


def test_bins_without_data_are_reported_not_guessed(testville: City) -> None:
    inp = _inputs(testville, {"tv-tps-south": (0.85, 0.4)}, no_data={"tv-tps-north"})
    plan = P.solve(inp)
    _assert_feasible(inp, plan)
    assert [(u.site_id, u.reason_code) for u in plan.uncovered] == [
        ("tv-tps-north", P.model.NO_DATA)
    ]
    assert "24 hours" in plan.uncovered[0].reason


def test_an_overflowing_bin_gets_a_window_that_ends_before_it_overflows(testville: City) -> None:
    inp = _inputs(testville, {"tv-tps-north": (0.7, 0.5), "tv-tps-south": (0.05, 0.1)})
    north = next(s for s in inp.stops if s.site_id == "tv-tps-north")
    # 70 % at 20:00, +2.6 %/h on a fast day (50 %/day x 1.25): 100 % at about 07:30.
    assert 7 * 60 <= north.window_end_min <= 8 * 60
    plan = P.solve(inp)
    _assert_feasible(inp, plan)


@pytest.mark.parametrize("seed", [1, 2])
def test_bandung_plan_is_feasible_and_solved_within_30_s(bandung: City, seed: int) -> None:
    inp = _inputs(bandung, seed=seed, time_limit_s=20)
    started = time.monotonic()
    plan = P.solve(inp)
    elapsed = time.monotonic() - started
    assert elapsed <= 30
    _assert_feasible(inp, plan)
    assert plan.trips > 50
    # Every trip is reasonably full: the point of planning.
    assert plan.load_kg / plan.trips >= 7000
