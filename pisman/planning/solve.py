"""Route the trucks with OR-Tools: capacities, time windows, reload trips to the landfill, optional stops.

Each pool is solved on its own (its trucks serve only its districts; pools share nothing but
the landfill gate, which has no capacity limit), which keeps Bandung's problem in pieces of
~25-50 depots. The landfill is modelled as optional duplicated nodes whose demand is minus
a full truck, with slack that lets the load go back to zero (OR-Tools' "reload" pattern).
Mandatory depots carry a drop penalty far above any route's cost; optional ones a penalty
worth the landfill-trip share their load would save, so a truck is topped up only when the
detour costs less than the road it saves later.
"""

from __future__ import annotations

import math
import time as clock
from dataclasses import dataclass

import numpy as np
from ortools.constraint_solver import pywrapcp, routing_enums_pb2, routing_parameters_pb2

from pisman.planning.model import (
    DEFERRED,
    NO_CAPACITY,
    NO_TRUCKS,
    NOT_REACHABLE,
    REASONS,
    Plan,
    PlanInput,
    PlannedStop,
    Point,
    Stop,
    Trip,
    TruckRoute,
    TruckSpec,
    Uncovered,
)

MANDATORY_PENALTY = 10**9
# Share of a landfill round trip that collecting one truckload early saves (assumption: a bit
# under 1, since the load may be partly collected later anyway).
OPTIONAL_VALUE = 0.8
MIN_POOL_TIME_S = 1.0
# A small pool needs less search than its share of the time limit (Bandung's pools of ~40
# depots get ~3 s each from the API's 20 s; a pool of two depots need not wait 20 s).
MAX_S_PER_STOP = 0.5
# A stop after its window (the time it overflows on a fast day) costs this many metres a
# minute: an hour late weighs like 18 km of road. Windows are soft so that a depot the
# trucks cannot reach in time is still emptied, late and reported so, rather than dropped.
LATE_M_PER_MIN = 300
MAX_WAIT_MIN = 24 * 60


@dataclass(frozen=True, slots=True)
class _Node:
    kind: str  # "pool", "stop", "landfill"
    lat: float
    lon: float
    stop: Stop | None = None


def _uncovered(stop: Stop, code: str) -> Uncovered:
    return Uncovered(
        stop.site_id,
        stop.site_name,
        stop.district_id,
        stop.kelurahan,
        stop.pool_id,
        stop.expected_fill,
        code,
        REASONS[code],
    )


def solve(inp: PlanInput) -> Plan:
    """The day's plan; never raises on infeasible input: what cannot be covered is listed with its reason."""
    started = clock.monotonic()
    messages: list[str] = []
    uncovered = list(inp.uncovered)
    routes: list[TruckRoute] = []
    optional_left = 0
    visited: set[str] = set()
    pools = {p.id: p for p in inp.pools}
    by_pool: dict[str | None, list[Stop]] = {}
    for s in inp.stops:
        by_pool.setdefault(s.pool_id if s.pool_id in pools else None, []).append(s)
    trucks_by_pool: dict[str, list[TruckSpec]] = {}
    for t in inp.trucks:
        trucks_by_pool.setdefault(t.pool_id, []).append(t)
    if not inp.trucks:
        messages.append("kota ini tidak punya truk / this city has no trucks in its fleet data")
    total = sum(len(v) for k, v in by_pool.items() if k is not None and trucks_by_pool.get(k))
    for pool_id, stops in sorted(by_pool.items(), key=lambda kv: kv[0] or ""):
        trucks = trucks_by_pool.get(pool_id or "", [])
        if pool_id is None or not trucks:
            uncovered.extend(_uncovered(s, NO_TRUCKS) for s in stops if s.mandatory)
            optional_left += sum(1 for s in stops if not s.mandatory)
            continue
        share = min(inp.time_limit_s * len(stops) / max(1, total), MAX_S_PER_STOP * len(stops))
        pool_routes, dropped, left = _solve_pool(
            inp, pools[pool_id], trucks, stops, max(MIN_POOL_TIME_S, share)
        )
        routes.extend(pool_routes)
        visited |= {ps.stop.site_id for r in pool_routes for t in r.trips for ps in t.stops}
        uncovered.extend(dropped)
        optional_left += left
    deferred = [
        _uncovered(s, DEFERRED)
        for s in inp.stops
        if s.above_threshold and not s.mandatory and s.site_id not in visited
    ]
    return Plan(
        day=inp.day,
        routes=routes,
        uncovered=uncovered,
        optional_left=optional_left,
        solve_s=clock.monotonic() - started,
        messages=messages,
        deferred=deferred,
    )


@dataclass(slots=True)
class _PoolModel:
    """One pool's routing model with the arrays its callbacks read (kept alive with it)."""

    nodes: list[_Node]
    km: np.ndarray
    travel_min: np.ndarray
    manager: pywrapcp.RoutingIndexManager
    routing: pywrapcp.RoutingModel
    tdim: pywrapcp.RoutingDimension
    ldim: pywrapcp.RoutingDimension
    callbacks: tuple[object, ...]


def _solve_pool(
    inp: PlanInput, pool: Point, trucks: list[TruckSpec], stops: list[Stop], time_limit_s: float
) -> tuple[list[TruckRoute], list[Uncovered], int]:
    lf = inp.landfill
    lf_km = float(inp.distance.km([(pool.lat, pool.lon), (lf.lat, lf.lon)])[0, 1])
    trucks = _trucks_reaching_landfill(inp, trucks, lf_km)
    if not trucks:
        return (
            [],
            [_uncovered(s, NOT_REACHABLE) for s in stops if s.mandatory],
            sum(1 for s in stops if not s.mandatory),
        )
    max_cap = max(t.capacity_kg for t in trucks)
    too_big = [s for s in stops if s.load_kg > max_cap]
    stops = [s for s in stops if s.load_kg <= max_cap]
    dropped_big = [_uncovered(s, NO_CAPACITY) for s in too_big if s.mandatory]
    big_left = sum(1 for s in too_big if not s.mandatory)
    if not stops:
        return [], dropped_big, big_left
    trips_per_truck = _trips_per_truck(inp, trucks, lf_km)
    # Every route ends at the landfill (node 1, the last unload); copies serve the reloads before it.
    copies = min(
        len(trucks) * (trips_per_truck - 1), math.ceil(sum(s.load_kg for s in stops) / max_cap)
    )
    nodes = _pool_nodes(inp, pool, stops, copies)
    model = _routing_model(inp, nodes, trucks, max_cap)
    back_min = int(model.travel_min[1, 0])
    _constrain_stops_and_reloads(model, inp, trucks, max_cap, lf_km)
    _constrain_shifts(model, inp, trucks, back_min)
    solution = model.routing.SolveWithParameters(_search_parameters(inp, time_limit_s))

    code = _why_dropped(stops, trucks, trips_per_truck)
    if solution is None:
        return (
            [],
            dropped_big + [_uncovered(s, code) for s in stops if s.mandatory],
            sum(1 for s in stops if not s.mandatory) + big_left,
        )
    routes, visited = _read_routes(model, solution, inp, trucks, back_min)
    dropped_mandatory = [
        s for i, s in enumerate(stops, start=2) if s.mandatory and i not in visited
    ]
    left = sum(1 for i, s in enumerate(stops, start=2) if not s.mandatory and i not in visited)
    left += big_left
    return routes, dropped_big + [_uncovered(s, code) for s in dropped_mandatory], left


def _trucks_reaching_landfill(
    inp: PlanInput, trucks: list[TruckSpec], lf_km: float
) -> list[TruckSpec]:
    """A truck that cannot reach the open landfill and be home within its shift plans nothing."""
    lf = inp.landfill
    one_way = math.ceil(lf_km / inp.speed_kmh * 60)
    return [
        t
        for t in trucks
        if max(lf.open_min, t.shift_start_min + one_way)
        <= min(lf.close_min, t.shift_end_min - lf.unload_min - one_way)
    ]


def _trips_per_truck(inp: PlanInput, trucks: list[TruckSpec], lf_km: float) -> int:
    """How many landfill round trips the longest shift holds (at least one)."""
    round_trip_min = 2 * lf_km / inp.speed_kmh * 60 + inp.landfill.unload_min
    longest_shift = max(t.shift_end_min - t.shift_start_min for t in trucks)
    return max(1, math.floor(longest_shift / max(1.0, round_trip_min)))


def _pool_nodes(inp: PlanInput, pool: Point, stops: list[Stop], copies: int) -> list[_Node]:
    """The model's nodes: the pool (0), the last landfill unload (1), the stops, then the
    landfill copies for the reloads."""
    lf = inp.landfill
    nodes = [_Node("pool", pool.lat, pool.lon), _Node("landfill", lf.lat, lf.lon)]
    nodes += [_Node("stop", s.lat, s.lon, s) for s in stops]
    nodes += [_Node("landfill", lf.lat, lf.lon) for _ in range(copies)]
    return nodes


def _routing_model(
    inp: PlanInput, nodes: list[_Node], trucks: list[TruckSpec], max_cap: int
) -> _PoolModel:
    """The routing model: arc cost in metres, a time dimension (travel plus service at the
    node left) and a load dimension (a landfill visit unloads up to a full truck)."""
    lf = inp.landfill
    km = inp.distance.km([(n.lat, n.lon) for n in nodes])
    dist_m = np.rint(km * 1000).astype(np.int64)
    travel_min = np.ceil(km / inp.speed_kmh * 60).astype(np.int64)
    service = np.array(
        [
            0 if n.kind == "pool" else inp.service_min if n.kind == "stop" else lf.unload_min
            for n in nodes
        ],
        dtype=np.int64,
    )
    demand = np.array(
        [0 if n.kind == "pool" else n.stop.load_kg if n.stop else -max_cap for n in nodes],
        dtype=np.int64,
    )

    manager = pywrapcp.RoutingIndexManager(
        len(nodes), len(trucks), [0] * len(trucks), [1] * len(trucks)
    )
    routing = pywrapcp.RoutingModel(manager)
    dist_list = dist_m.tolist()
    time_list = (travel_min + service[:, None]).tolist()
    demand_list = demand.tolist()

    def dist_cb(i: int, j: int) -> int:
        return int(dist_list[manager.IndexToNode(i)][manager.IndexToNode(j)])

    def time_cb(i: int, j: int) -> int:
        return int(time_list[manager.IndexToNode(i)][manager.IndexToNode(j)])

    def demand_cb(i: int) -> int:
        return int(demand_list[manager.IndexToNode(i)])

    dist_idx = routing.RegisterTransitCallback(dist_cb)
    routing.SetArcCostEvaluatorOfAllVehicles(dist_idx)
    time_idx = routing.RegisterTransitCallback(time_cb)
    routing.AddDimension(time_idx, MAX_WAIT_MIN, 48 * 60, False, "time")
    tdim = routing.GetDimensionOrDie("time")
    cap_idx = routing.RegisterUnaryTransitCallback(demand_cb)
    routing.AddDimensionWithVehicleCapacity(
        cap_idx, max_cap, [t.capacity_kg for t in trucks], True, "load"
    )
    ldim = routing.GetDimensionOrDie("load")
    return _PoolModel(
        nodes, km, travel_min, manager, routing, tdim, ldim, (dist_cb, time_cb, demand_cb)
    )


def _constrain_stops_and_reloads(
    model: _PoolModel, inp: PlanInput, trucks: list[TruckSpec], max_cap: int, lf_km: float
) -> None:
    """Landfill copies are free to skip and unload within opening hours; a stop has a soft
    window and a drop penalty (prohibitive if mandatory, else its share of a landfill trip)."""
    lf = inp.landfill
    routing, tdim, ldim = model.routing, model.tdim, model.ldim
    # A full landfill trip's cost, for the value of topping a truck up.
    trip_m = 2 * lf_km * 1000
    last_end = max(t.shift_end_min for t in trucks)
    for n_i, node in enumerate(model.nodes):
        if n_i <= 1:
            continue
        index = model.manager.NodeToIndex(n_i)
        if node.kind == "landfill":
            routing.AddDisjunction([index], 0)
            ldim.SlackVar(index).SetRange(0, max_cap)
            tdim.CumulVar(index).SetRange(lf.open_min, lf.close_min)
            continue
        stop = node.stop
        assert stop is not None
        ldim.SlackVar(index).SetValue(0)
        tdim.CumulVar(index).SetRange(stop.window_start_min, max(stop.window_end_min, last_end))
        if stop.window_end_min < last_end:
            tdim.SetCumulVarSoftUpperBound(index, stop.window_end_min, LATE_M_PER_MIN)
        penalty = (
            MANDATORY_PENALTY
            if stop.mandatory
            else int(OPTIONAL_VALUE * trip_m * stop.load_kg / max_cap)
        )
        routing.AddDisjunction([index], penalty)


def _constrain_shifts(
    model: _PoolModel, inp: PlanInput, trucks: list[TruckSpec], back_min: int
) -> None:
    """Each truck leaves within its shift, unloads last while the landfill is open and is home
    before the shift ends; it leaves as late and finishes as early as its route allows."""
    lf = inp.landfill
    routing, tdim = model.routing, model.tdim
    for v, truck in enumerate(trucks):
        start, end = routing.Start(v), routing.End(v)
        tdim.CumulVar(start).SetRange(truck.shift_start_min, truck.shift_end_min)
        # The last unload at the landfill, then home before the shift ends.
        latest = min(lf.close_min, truck.shift_end_min - lf.unload_min - back_min)
        tdim.CumulVar(end).SetRange(lf.open_min, latest)
        model.ldim.SlackVar(start).SetValue(0)
        routing.AddVariableMinimizedByFinalizer(tdim.CumulVar(end))
        routing.AddVariableMaximizedByFinalizer(tdim.CumulVar(start))


def _search_parameters(
    inp: PlanInput, time_limit_s: float
) -> routing_parameters_pb2.RoutingSearchParameters:
    """Cheapest insertion, then guided local search for the time limit (greedy descent to a
    local optimum, within at least 60 s, when the input asks for a deterministic answer)."""
    params = pywrapcp.DefaultRoutingSearchParameters()
    params.first_solution_strategy = (
        routing_enums_pb2.FirstSolutionStrategy.PARALLEL_CHEAPEST_INSERTION
    )
    params.local_search_metaheuristic = (
        routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    )
    params.time_limit.FromMilliseconds(max(100, int(time_limit_s * 1000)))
    if inp.deterministic:
        params.local_search_metaheuristic = (
            routing_enums_pb2.LocalSearchMetaheuristic.GREEDY_DESCENT
        )
        params.time_limit.FromSeconds(max(60, int(time_limit_s)))
    return params


def _read_routes(
    model: _PoolModel,
    solution: pywrapcp.Assignment,
    inp: PlanInput,
    trucks: list[TruckSpec],
    back_min: int,
) -> tuple[list[TruckRoute], set[int]]:
    """The solution as truck routes split into landfill trips (a truck with no trip is left
    out), and the stop nodes visited."""
    routing, tdim, km = model.routing, model.tdim, model.km
    routes: list[TruckRoute] = []
    visited: set[int] = set()
    for v, truck in enumerate(trucks):
        index = routing.Start(v)
        start_min = solution.Value(tdim.CumulVar(index))
        trips: list[Trip] = []
        current: list[PlannedStop] = []
        trip_km = 0.0
        route_km = 0.0
        load = 0
        prev = model.manager.IndexToNode(index)
        index = solution.Value(routing.NextVar(index))
        while True:
            node_i = model.manager.IndexToNode(index)
            leg = float(km[prev, node_i])
            trip_km += leg
            route_km += leg
            arrival = solution.Value(tdim.CumulVar(index))
            node = model.nodes[node_i]
            if node.kind == "stop":
                assert node.stop is not None
                visited.add(node_i)
                current.append(PlannedStop(len(current) + 1, node.stop, arrival, load))
                load += node.stop.load_kg
            elif current:  # a landfill visit ends a trip
                trips.append(Trip(len(trips) + 1, current, arrival, load, round(trip_km, 1)))
                current, load, trip_km = [], 0, 0.0
            prev = node_i
            if routing.IsEnd(index):
                break
            index = solution.Value(routing.NextVar(index))
        route_km += float(km[prev, 0])
        end_min = solution.Value(tdim.CumulVar(index)) + inp.landfill.unload_min + back_min
        if trips:
            # The drive home belongs to the last trip.
            last = trips[-1]
            trips[-1] = Trip(
                last.number,
                last.stops,
                last.landfill_arrival_min,
                last.load_kg,
                round(last.km + float(km[prev, 0]), 1),
            )
            routes.append(TruckRoute(truck, start_min, end_min, trips, round(route_km, 1)))
    return routes, visited


def _why_dropped(stops: list[Stop], trucks: list[TruckSpec], trips_per_truck: int) -> str:
    """More mandatory waste than trucks x trips can carry is a capacity problem; otherwise time."""
    need = sum(s.load_kg for s in stops if s.mandatory)
    can = sum(t.capacity_kg for t in trucks) * trips_per_truck
    return NO_CAPACITY if need > can else NOT_REACHABLE
