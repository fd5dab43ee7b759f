"""Who empties the simulated depots: today's threshold rule, fixed daily rounds, or the collection plan.

`threshold` (the default, and the simulator's behaviour before issue 12): a truck comes 1-8 h
after a depot's container passes the full threshold and takes the pile straight to the
landfill. `fixed`: every depot is emptied once a day at a fixed time, one depot per trip.
`plan`: every morning, an hour before the first shift, the simulated city plans the day as
the API does (under a solver time limit, so runs on a busy machine may differ a little;
`plan_deterministic` trades speed for the same plan everywhere) (pisman.forecast from the bin readings it has sent, pisman.planning for the
routes) and its trucks follow the plan; a depot whose bin has no usable forecast yet (the
first day of a run) falls back to the threshold rule. All three keep the same account:
overflow-hours, trips, truck-km, tonnes, landfill arrivals outside its opening hours.
Truck-km of the threshold rule and fixed rounds are pool -> depot -> landfill -> pool with the
same distances (haversine x detour factor) the planner uses.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pisman import planning as P
from pisman.citydata import City
from pisman.forecast import forecast_bin

if TYPE_CHECKING:
    from simulators.behaviour import CitySimulation, Reading, _Depot

CollectionMode = Literal["threshold", "plan", "fixed"]
COLLECTION_MODES: tuple[str, ...] = ("threshold", "plan", "fixed")
HOUR_MS = 3_600_000
MINUTE_MS = 60_000
LOOKBACK_DAYS = 28


@dataclass(slots=True)
class CollectionStats:
    """What the trucks did and how the depots fared."""

    trips: int = 0
    truck_km: float = 0.0
    collected_kg: int = 0
    overflow_hours: int = 0
    landfill_arrivals: int = 0
    arrivals_outside_hours: int = 0
    uncovered: int = 0
    plans: int = 0
    plan_s: float = 0.0
    by_day: dict[str, dict[str, float]] = field(default_factory=dict)

    def _day(self, day: str) -> dict[str, float]:
        return self.by_day.setdefault(
            day, {"trips": 0, "truck_km": 0.0, "collected_kg": 0, "overflow_hours": 0, "outside": 0}
        )


@dataclass(slots=True)
class _TripState:
    remaining_g: int
    landfill_ms: int
    plate: str
    tare_kg: float
    material: str


class Collection:
    """The trucks of one simulated city in one mode, and their account."""

    def __init__(
        self,
        sim: CitySimulation,
        mode: str,
        *,
        plan_time_limit_s: float = 5.0,
        plan_deterministic: bool = False,
    ) -> None:
        if mode not in COLLECTION_MODES:
            raise ValueError(
                f"collection must be one of {', '.join(COLLECTION_MODES)}, not {mode!r}"
            )
        city: City = sim.city
        if mode != "threshold" and city.fleet is None:
            raise ValueError(
                f"--collection {mode} needs a fleet section in city {city.city.id}'s file"
            )
        self.sim = sim
        self.mode = mode
        self.plan_time_limit_s = plan_time_limit_s
        self.plan_deterministic = plan_deterministic
        self.stats = CollectionStats()
        self.tz = ZoneInfo(city.city.timezone)
        self.fleet = city.fleet
        self.pending: dict[str, list[tuple[int, int]]] = defaultdict(list)  # site -> [(ts, trip)]
        self.trips: dict[int, _TripState] = {}
        self._trip_seq = 0
        self.fallback: set[str] = set()  # depots left to the threshold rule (no forecast)
        self.history: dict[str, dict[int, list[float]]] = defaultdict(
            dict
        )  # site -> hour -> [sum, n]
        self.depot_km: dict[str, float] = {}
        if self.fleet is None:
            return
        fl = self.fleet
        sites = {s.id: s for s in city.all_sites()}
        gate = sites[fl.landfill]
        self.gate = gate
        self.pool_of = {d: p.id for p in fl.pools for d in p.districts}
        self.pools = {p.id: p for p in fl.pools}
        self.trucks = [
            P.TruckSpec(
                t.id, t.pool, t.capacity_kg, round(t.shift_start_h * 60), round(t.shift_end_h * 60)
            )
            for t in fl.all_trucks()
        ]
        self.matrix = P.HaversineMatrix(fl.detour_factor.value)
        self.plan_hour = max(
            0, min((t.shift_start_min for t in self.trucks), default=300) // 60 - 1
        )
        for depot in sim.depots:
            pool = self.pools.get(self.pool_of.get(depot.site.district, ""))
            if pool is None:
                continue
            pts = [(pool.lat, pool.lon), (depot.site.lat, depot.site.lon), (gate.lat, gate.lon)]
            km = self.matrix.km(pts)
            self.depot_km[depot.site.id] = float(km[0, 1] + km[1, 2] + km[2, 0])

    # --- hooks called by CitySimulation ------------------------------------------------------

    def uses_threshold(self, depot: _Depot) -> bool:
        """Whether today's rule dispatches a truck for this depot."""
        return self.mode == "threshold" or (self.mode == "plan" and depot.site.id in self.fallback)

    def threshold_trip(self, depot: _Depot, ts_ms: int, arrive_ms: int, net_g: int) -> None:
        """Count a truck sent by the threshold rule."""
        st = self.stats
        day = st._day(self._local(ts_ms).date().isoformat())
        km = self.depot_km.get(depot.site.id, 0.0)
        st.trips += 1
        st.truck_km += km
        st.collected_kg += net_g
        day["trips"] += 1
        day["truck_km"] += km
        day["collected_kg"] += net_g
        self._arrival(arrive_ms)

    def record_fill(self, depot: _Depot, ts_ms: int, fill: float) -> None:
        """Keep the bin's readings as hourly sums (the plan forecasts from them)."""
        if self.mode != "plan":
            return
        hour = ts_ms // HOUR_MS
        cell = self.history[depot.site.id].get(hour)
        if cell is None:
            self.history[depot.site.id][hour] = [fill, 1.0]
        else:
            cell[0] += fill
            cell[1] += 1

    def end_of_hour(self, depot: _Depot, start_ms: int, container_g: float) -> None:
        """Count an overflow-hour when the pile is above the container at the hour's end."""
        if depot.load_g > container_g:
            self.stats.overflow_hours += 1
            self.stats._day(self._local(start_ms).date().isoformat())["overflow_hours"] += 1

    def pickups_in(self, depot: _Depot, start_ms: int, end_ms: int) -> list[int]:
        """Times of the planned pickups at this depot within the hour."""
        return [ts for ts, _ in self.pending.get(depot.site.id, ()) if start_ms <= ts < end_ms]

    def start_hour(self, start_ms: int) -> None:
        """Plan (or lay out the fixed rounds of) the day at the planning hour."""
        if self.mode == "threshold":
            return
        local = self._local(start_ms)
        if local.hour != self.plan_hour:
            return
        if self.mode == "plan":
            self._plan_day(local.date(), start_ms)
        else:
            self._fixed_day(local.date())

    def pickup(self, depot: _Depot, ts_ms: int, out: list[Reading]) -> None:
        """A planned truck takes what fits of the pile, weighed out; the gate weighs it later."""
        queue = self.pending[depot.site.id]
        if not queue:
            return
        queue.sort()
        _, trip_id = queue.pop(0)
        trip = self.trips[trip_id]
        take = min(depot.load_g, trip.remaining_g)
        if take <= 0:
            return
        depot.load_g -= take
        trip.remaining_g -= take
        reading = self.sim._weighing(
            depot.weighbridge,
            ts_ms,
            take,
            trip.material,
            "to_landfill",
            self.sim.collect_rng,
            tare_kg=trip.tare_kg,
            vehicle_plate=trip.plate,
            origin_site_id=depot.site.id,
        )
        net = take
        if reading is not None:
            out.append(reading)
            net = reading.net_g
        self.sim._arrive(
            trip.landfill_ms, depot.site.id, net, trip.material, trip.plate, trip.tare_kg
        )
        self.stats.collected_kg += take
        self.stats._day(self._local(ts_ms).date().isoformat())["collected_kg"] += take

    # --- internals -----------------------------------------------------------------------------

    def _local(self, ts_ms: int) -> datetime:
        return datetime.fromtimestamp(ts_ms / 1000, self.tz)

    def _arrival(self, arrive_ms: int) -> None:
        assert self.fleet is not None or self.mode == "threshold"
        self.stats.landfill_arrivals += 1
        if self.fleet is None:
            return
        local = self._local(arrive_ms)
        hour = local.hour + local.minute / 60
        if not self.fleet.landfill_hours.low <= hour < self.fleet.landfill_hours.high:
            self.stats.arrivals_outside_hours += 1
            self.stats._day(local.date().isoformat())["outside"] += 1

    def _new_trip(self, capacity_kg: int, landfill_ms: int, plate: str) -> int:
        rng = self.sim.collect_rng
        lf = self.sim.p.landfill
        self._trip_seq += 1
        material = "food" if rng.random() < lf.organic_truck_share.value else "mixed"
        tare = round(rng.uniform(lf.tare_kg.low, lf.tare_kg.high), -1)
        self.trips[self._trip_seq] = _TripState(
            capacity_kg * 1000, landfill_ms, plate, tare, material
        )
        return self._trip_seq

    def _count_trip(self, day: str, km: float, landfill_ms: int) -> None:
        st = self.stats
        st.trips += 1
        st.truck_km += km
        d = st._day(day)
        d["trips"] += 1
        d["truck_km"] += km
        self._arrival(landfill_ms)

    def _midnight_ms(self, day: date) -> int:
        return int(datetime.combine(day, time(0), tzinfo=self.tz).timestamp() * 1000)

    def _plan_day(self, day: date, start_ms: int) -> None:
        import time as clock

        assert self.fleet is not None
        fl = self.fleet
        as_of = datetime.fromtimestamp(start_ms / 1000, UTC)
        container_kg = round(fl.container_t.value * 1000)
        first_hour = start_ms // HOUR_MS - LOOKBACK_DAYS * 24
        bins = []
        self.fallback = set()
        for depot in self.sim.depots:
            site = depot.site
            hist = self.history.get(site.id, {})
            for h in [h for h in hist if h < first_hour]:
                del hist[h]
            hourly = [
                (datetime.fromtimestamp(h * 3600, UTC), v[0] / v[1])
                for h, v in sorted(hist.items())
            ]
            fc = forecast_bin(hourly, as_of=as_of, tz=self.tz, lookback_days=LOOKBACK_DAYS)
            if not fc.ok:
                self.fallback.add(site.id)
                continue
            bins.append(
                P.BinState(
                    site.id,
                    site.id,
                    site.name,
                    site.district,
                    site.district,
                    site.kelurahan,
                    site.lat,
                    site.lon,
                    container_kg,
                    self.sim.city.city.bin_full_threshold,
                    self.pool_of.get(site.district),
                    fc,
                )
            )
        stops, uncovered = P.select_stops(bins, day=day, tz=self.tz, trucks=self.trucks)
        inp = P.PlanInput(
            day=day,
            tz_name=str(self.tz),
            pools=[P.Point(p.id, p.name, p.lat, p.lon) for p in fl.pools],
            trucks=self.trucks,
            landfill=P.Landfill(
                self.gate.id,
                self.gate.name,
                self.gate.lat,
                self.gate.lon,
                round(fl.landfill_hours.low * 60),
                round(fl.landfill_hours.high * 60),
                round(fl.landfill_unload_min.value),
            ),
            stops=stops,
            service_min=round(fl.service_min.value),
            speed_kmh=fl.speed_kmh.value,
            distance=self.matrix,
            time_limit_s=self.plan_time_limit_s,
            uncovered=uncovered,
            deterministic=self.plan_deterministic,
        )
        started = clock.monotonic()
        plan = P.solve(inp)
        self.stats.plan_s += clock.monotonic() - started
        self.stats.plans += 1
        self.stats.uncovered += sum(1 for u in plan.uncovered if u.reason_code != "no_data")
        # A depot the plan had to leave out is left to the threshold rule rather than to chance.
        self.fallback |= {u.site_id for u in plan.uncovered}
        midnight = self._midnight_ms(day)
        for route in plan.routes:
            plate = self._plate(route.truck.truck_id)
            for trip in route.trips:
                landfill_ms = midnight + trip.landfill_arrival_min * MINUTE_MS
                trip_id = self._new_trip(route.truck.capacity_kg, landfill_ms, plate)
                for ps in trip.stops:
                    self.pending[ps.stop.site_id].append(
                        (midnight + ps.arrival_min * MINUTE_MS, trip_id)
                    )
                self._count_trip(day.isoformat(), 0.0, landfill_ms)
            self.stats.truck_km += route.km
            self.stats._day(day.isoformat())["truck_km"] += route.km

    def _fixed_day(self, day: date) -> None:
        """Every depot once a day, one depot per trip, in a fixed order per pool."""
        assert self.fleet is not None
        fl = self.fleet
        midnight = self._midnight_ms(day)
        by_pool: dict[str, list[_Depot]] = defaultdict(list)
        for depot in self.sim.depots:
            pool_id = self.pool_of.get(depot.site.district)
            if pool_id is not None:
                by_pool[pool_id].append(depot)
        speed = fl.speed_kmh.value
        for pool_id, depots in by_pool.items():
            trucks = [t for t in self.trucks if t.pool_id == pool_id]
            if not trucks:
                continue
            free_at = [t.shift_start_min for t in trucks]
            pool = self.pools[pool_id]
            for k, depot in enumerate(sorted(depots, key=lambda d: d.site.id)):
                v = k % len(trucks)
                km = self.matrix.km(
                    [
                        (pool.lat, pool.lon),
                        (depot.site.lat, depot.site.lon),
                        (self.gate.lat, self.gate.lon),
                    ]
                )
                at_depot = free_at[v] + math.ceil(km[0, 1] / speed * 60)
                at_gate = at_depot + round(fl.service_min.value) + math.ceil(km[1, 2] / speed * 60)
                free_at[v] = (
                    at_gate + round(fl.landfill_unload_min.value) + math.ceil(km[2, 0] / speed * 60)
                )
                landfill_ms = midnight + at_gate * MINUTE_MS
                trip_id = self._new_trip(
                    trucks[v].capacity_kg, landfill_ms, self._plate(trucks[v].truck_id)
                )
                self.pending[depot.site.id].append((midnight + at_depot * MINUTE_MS, trip_id))
                self._count_trip(
                    day.isoformat(), float(km[0, 1] + km[1, 2] + km[2, 0]), landfill_ms
                )

    def _plate(self, truck_id: str) -> str:
        digits = sum(ord(c) * (i + 1) for i, c in enumerate(truck_id)) % 1000
        return f"D {9000 + digits} PK"

    def summary(self) -> dict[str, Any]:
        """The account as a dict (for reports and the benchmark)."""
        st = self.stats
        return {
            "mode": self.mode,
            "trips": st.trips,
            "truck_km": round(st.truck_km, 1),
            "collected_t": round(st.collected_kg / 1e6, 3),
            "t_per_trip": round(st.collected_kg / 1e6 / st.trips, 2) if st.trips else None,
            "overflow_hours": st.overflow_hours,
            "landfill_arrivals": st.landfill_arrivals,
            "arrivals_outside_hours": st.arrivals_outside_hours,
            "uncovered": st.uncovered,
            "plans": st.plans,
            "plan_s": round(st.plan_s, 1),
        }
