"""GET /v1/collection-plan (JSON, XLSX, printable page per truck): tomorrow's pickups and truck routes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import html
import io
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import psycopg
import xlsxwriter
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

from api.deps import City, CityDep, Conn, HeavyLane, PlannerKey, SettingsDep
from api.errors import ERROR_RESPONSES
from api.params import ID_PATTERN, bad_request, parse_local_date
from api.queries.bin_fill import HourlyFill, hourly_fill
from api.queries.collection_inputs import (
    DepotBin,
    FleetParams,
    PlanInputs,
    PoolRow,
    TruckRow,
    plan_inputs,
    truck_exists,
)
from pisman import planning as P
from pisman.contract import (
    PlanAnswer,
    PlanPlace,
    PlanStop,
    PlanSummary,
    PlanTrip,
    PlanTruck,
    PlanUncovered,
)
from pisman.forecast import forecast_hours
from pisman.planning.model import NO_TRUCKS, REASONS
from pisman.settings import Settings

router = APIRouter(prefix="/v1", tags=["collection"], responses=ERROR_RESPONSES)

LOOKBACK_DAYS = 28
MAX_DAYS_AHEAD = 7
# A plan is reused for the same city, date and pool this long (the XLSX and the printed
# pages after the JSON), so one planner's three downloads cost one solve.
CACHE_S = 600.0
_cache: dict[tuple[str, str, str | None, float], tuple[float, PlanAnswer]] = {}


def _hhmm(minute: int) -> str:
    day, rest = divmod(int(minute), 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}"
    return text if day == 0 else f"{text} (+{day})"


def _hours(h: Any) -> int:
    return round(float(h) * 60)


def _uncovered_item(u: P.Uncovered) -> PlanUncovered:
    return PlanUncovered(
        site_id=u.site_id,
        site_name=u.site_name,
        district_id=u.district_id,
        kelurahan=u.kelurahan,
        pool_id=u.pool_id,
        expected_fill_pct=round(u.expected_fill * 100, 1) if u.expected_fill is not None else None,
        reason_code=u.reason_code,
        reason=u.reason,
    )


def _stop_item(ps: P.PlannedStop) -> PlanStop:
    """One planned stop as the answer shows it (tonnes, percent, HH:MM)."""
    return PlanStop(
        order=ps.order,
        site_id=ps.stop.site_id,
        site_name=ps.stop.site_name,
        district_id=ps.stop.district_id,
        district_name=ps.stop.district_name,
        kelurahan=ps.stop.kelurahan,
        lat=ps.stop.lat,
        lon=ps.stop.lon,
        expected_fill_pct=round(ps.stop.expected_fill * 100, 1),
        load_t=round(ps.stop.load_kg / 1000, 3),
        window_start=_hhmm(ps.stop.window_start_min),
        window_end=_hhmm(ps.stop.window_end_min),
        arrival=_hhmm(ps.arrival_min),
        late_min=ps.late_min,
        mandatory=ps.stop.mandatory,
        above_threshold=ps.stop.above_threshold,
        why=ps.stop.why,
    )


def _trip_item(t: P.Trip) -> PlanTrip:
    """One landfill trip: its load, distance, arrival at the landfill and its stops."""
    return PlanTrip(
        number=t.number,
        load_t=round(t.load_kg / 1000, 3),
        km=round(t.km, 1),
        landfill_arrival=_hhmm(t.landfill_arrival_min),
        stops=[_stop_item(ps) for ps in t.stops],
    )


def _truck_item(r: P.TruckRoute) -> PlanTruck:
    """One truck's day: its shift as planned, distance, load and trips."""
    return PlanTruck(
        truck_id=r.truck.truck_id,
        pool_id=r.truck.pool_id,
        capacity_t=r.truck.capacity_kg / 1000,
        start=_hhmm(r.start_min),
        end=_hhmm(r.end_min),
        km=round(r.km, 1),
        load_t=round(r.load_kg / 1000, 3),
        trips=[_trip_item(t) for t in r.trips],
    )


def _plan_status(
    landfill: P.Landfill | None, uncovered: list[PlanUncovered], trucks: list[PlanTruck]
) -> str:
    """no_fleet (no fleet data), partial (a needed stop left), empty (nothing to do) or ok."""
    if landfill is None:
        return "no_fleet"
    if uncovered:
        return "partial"
    if not trucks:
        return "empty"
    return "ok"


def _summary(
    plan: P.Plan, *, trucks_available: int, stops: list[P.Stop], uncovered: int
) -> PlanSummary:
    """The plan's totals: trucks, trips, km, tonnes, stops visited against stops needed."""
    return PlanSummary(
        trucks_used=len(plan.routes),
        trucks_available=trucks_available,
        trips=plan.trips,
        km=round(plan.km, 1),
        load_t=round(plan.load_kg / 1000, 3),
        t_per_trip=round(plan.load_kg / 1000 / plan.trips, 2) if plan.trips else None,
        stops=sum(len(t.stops) for r in plan.routes for t in r.trips),
        stops_needed=sum(1 for s in stops if s.mandatory),
        uncovered=uncovered,
        optional_left=plan.optional_left,
        solve_s=round(plan.solve_s, 2),
    )


def _answer(
    city_id: str,
    day: date,
    pool: str | None,
    as_of: datetime,
    plan: P.Plan,
    *,
    trucks_available: int,
    stops: list[P.Stop],
    pools: list[P.Point],
    landfill: P.Landfill | None,
    extra_messages: list[str],
) -> PlanAnswer:
    """The solved plan as the API answers it: trucks, totals, what is left and the places."""
    trucks = [_truck_item(r) for r in plan.routes]
    uncovered = [_uncovered_item(u) for u in plan.uncovered]
    return PlanAnswer(
        city_id=city_id,
        date=day.isoformat(),
        pool=pool,
        as_of=as_of.isoformat(timespec="seconds"),
        status=_plan_status(landfill, uncovered, trucks),
        messages=extra_messages + plan.messages,
        summary=_summary(
            plan, trucks_available=trucks_available, stops=stops, uncovered=len(uncovered)
        ),
        trucks=trucks,
        uncovered=uncovered,
        deferred=[_uncovered_item(u) for u in plan.deferred],
        pools=[PlanPlace(id=p.id, name=p.name, lat=p.lat, lon=p.lon) for p in pools],
        landfill=(
            PlanPlace(id=landfill.site_id, name=landfill.name, lat=landfill.lat, lon=landfill.lon)
            if landfill
            else None
        ),
        landfill_hours=(
            f"{_hhmm(landfill.open_min)}-{_hhmm(landfill.close_min)}" if landfill else None
        ),
    )


async def _city_plan(
    conn: Conn, city: City, settings: Settings, day: date, pool: str | None
) -> PlanAnswer:
    """The city's plan for `day` (one pool or all) within the configured solver time."""
    return await build_plan(
        conn,
        city_id=city.city_id,
        tz=city.tz,
        day=day,
        pool=pool,
        time_limit_s=settings.PISMAN_PLAN_TIME_LIMIT_S,
    )


def _plan_day(value: str | None, tz: ZoneInfo) -> date:
    """The plan's date (default tomorrow); 422 beyond what forecasts reach."""
    today = datetime.now(tz).date()
    day = today + timedelta(days=1) if not value else parse_local_date("date", value, tz)
    if day > today + timedelta(days=MAX_DAYS_AHEAD):
        raise bad_request(
            f"'date' {day.isoformat()} is more than {MAX_DAYS_AHEAD} days ahead: forecasts of bin "
            "fill reach no further; ask for an earlier date"
        )
    return day


def _cached(key: tuple[str, str, str | None, float]) -> PlanAnswer | None:
    """The answer of the same plan asked within CACHE_S, if any."""
    hit = _cache.get(key)
    if hit and time.monotonic() - hit[0] < CACHE_S:
        return hit[1]
    return None


def _remember(key: tuple[str, str, str | None, float], answer: PlanAnswer) -> None:
    """Keep the answer for CACHE_S; beyond 64 plans the oldest is forgotten."""
    _cache[key] = (time.monotonic(), answer)
    if len(_cache) > 64:
        oldest = min(_cache, key=lambda k: _cache[k][0])
        _cache.pop(oldest, None)


def _scope_to_pool(
    inputs: PlanInputs, *, city_id: str, pool: str | None
) -> tuple[list[PoolRow], list[TruckRow], list[DepotBin], dict[str, str]]:
    """The pools, trucks and depot bins the plan covers (one pool's if `pool` is given; 404 for
    an unknown pool), and each district's pool."""
    pools_rows, truck_rows, bin_rows = inputs.pools, inputs.trucks, inputs.bins
    if pool is not None and pool not in {r.pool_id for r in pools_rows}:
        raise HTTPException(404, detail=f"no truck pool {pool!r} in city {city_id!r}")
    pool_of = {d: r.pool_id for r in pools_rows for d in r.districts}
    if pool is not None:
        bin_rows = [b for b in bin_rows if pool_of.get(b.district_id) == pool]
        truck_rows = [t for t in truck_rows if t.pool_id == pool]
        pools_rows = [r for r in pools_rows if r.pool_id == pool]
    return pools_rows, truck_rows, bin_rows, pool_of


def _trucks_on_shift(truck_rows: list[TruckRow], *, day: date, now: datetime) -> list[P.TruckSpec]:
    """The trucks with shift time left on `day`: a plan for today starts from now, so no truck
    leaves, and no stop is served, in the past."""
    not_before = now.hour * 60 + now.minute + 1 if day == now.date() else 0
    return [
        P.TruckSpec(
            t.truck_id,
            t.pool_id,
            int(t.capacity_kg),
            max(_hours(t.shift_start_h), not_before),
            _hours(t.shift_end_h),
        )
        for t in truck_rows
        if max(_hours(t.shift_start_h), not_before) < _hours(t.shift_end_h)
    ]


def _input_messages(
    truck_rows: list[TruckRow],
    trucks: list[P.TruckSpec],
    bin_rows: list[DepotBin],
    pool: str | None,
) -> list[str]:
    """What the planner should know before the solve: shifts already over, no bins to plan."""
    messages: list[str] = []
    if len(trucks) < len(truck_rows):
        messages.append(
            f"{len(truck_rows) - len(trucks)} truk sudah selesai shift hari ini / "
            f"{len(truck_rows) - len(trucks)} trucks' shifts have ended today"
        )
    if not bin_rows:
        messages.append(
            "tidak ada sensor tempat sampah di TPS / no bin sensors at depots"
            + (f" of pool {pool}" if pool else "")
        )
    return messages


def _bin_states(
    bin_rows: list[DepotBin],
    history: dict[str, HourlyFill],
    *,
    pool_of: dict[str, str],
    container_kg: int,
    as_of: datetime,
    tz: ZoneInfo,
) -> list[P.BinState]:
    """Each depot bin with its fill forecast from its hourly history."""
    return [
        P.BinState(
            site_id=b.site_id,
            device_id=b.device_id,
            site_name=b.site_name,
            district_id=b.district_id,
            district_name=b.district_name,
            kelurahan=b.kelurahan,
            lat=float(b.lat),
            lon=float(b.lon),
            container_kg=container_kg,
            threshold=float(b.threshold),
            pool_id=pool_of.get(b.district_id),
            forecast=forecast_hours(
                history[b.device_id].hours,
                history[b.device_id].fills,
                as_of=as_of,
                tz=tz,
                lookback_days=LOOKBACK_DAYS,
            ),
        )
        for b in bin_rows
    ]


def _no_fleet_plan(day: date, stops: list[P.Stop], uncovered: list[P.Uncovered]) -> P.Plan:
    """Without fleet data nothing is routed: every needed stop is uncovered for want of trucks."""
    no_fleet = [
        P.Uncovered(
            s.site_id,
            s.site_name,
            s.district_id,
            s.kelurahan,
            s.pool_id,
            s.expected_fill,
            NO_TRUCKS,
            REASONS[NO_TRUCKS],
        )
        for s in stops
        if s.mandatory
    ]
    return P.Plan(day, [], uncovered + no_fleet, 0, 0.0, [])


def _landfill(params: FleetParams) -> P.Landfill:
    """The landfill with its opening hours and unload time, from the fleet data."""
    return P.Landfill(
        params.landfill_site_id,
        params.landfill_name,
        float(params.landfill_lat),
        float(params.landfill_lon),
        _hours(params.landfill_open_h),
        _hours(params.landfill_close_h),
        round(float(params.landfill_unload_min)),
    )


def _select_and_solve(
    bins: list[P.BinState],
    params: FleetParams | None,
    *,
    day: date,
    tz: ZoneInfo,
    trucks: list[P.TruckSpec],
    pools: list[P.Point],
    time_limit_s: float,
) -> tuple[P.Plan, list[P.Stop], P.Landfill | None]:
    """Choose the stops from the forecasts and route the trucks to them (CPU-bound: run it in a
    worker thread); the stops, and the landfill (None without fleet data), come back too."""
    stops, uncovered = P.select_stops(bins, day=day, tz=tz, trucks=trucks)
    if params is None:
        return _no_fleet_plan(day, stops, uncovered), stops, None
    landfill = _landfill(params)
    inp = P.PlanInput(
        day=day,
        tz_name=str(tz),
        pools=pools,
        trucks=trucks,
        landfill=landfill,
        stops=stops,
        service_min=round(float(params.service_min)),
        speed_kmh=float(params.speed_kmh),
        distance=P.HaversineMatrix(float(params.detour_factor)),
        time_limit_s=time_limit_s,
        uncovered=uncovered,
    )
    return P.solve(inp), stops, landfill


def _data_messages(
    params: FleetParams | None,
    history: dict[str, HourlyFill],
    bin_rows: list[DepotBin],
    as_of: datetime,
) -> list[str]:
    """What is missing from the city's data: its fleet, or any fill history before the plan."""
    messages: list[str] = []
    if params is None:
        messages.append(
            "data armada kota ini belum dimuat / this city has no fleet data: add a `fleet` "
            "section to its city file and run `pisman city load`"
        )
    if not any(history.values()) and bin_rows:
        messages.append(
            f"tidak ada data isi dalam {LOOKBACK_DAYS} hari sebelum {as_of:%Y-%m-%d %H:%M} / "
            f"no fill data in the {LOOKBACK_DAYS} days before the plan"
        )
    return messages


async def build_plan(
    conn: psycopg.AsyncConnection,
    *,
    city_id: str,
    tz: ZoneInfo,
    day: date,
    pool: str | None,
    time_limit_s: float,
) -> PlanAnswer:
    """Gather fleet, bins and their history, forecast and solve (in a worker thread) within
    `time_limit_s` of solver time (PISMAN_PLAN_TIME_LIMIT_S)."""
    key = (city_id, day.isoformat(), pool, time_limit_s)
    hit = _cached(key)
    if hit is not None:
        return hit
    now = datetime.now(tz)
    as_of = min(now, datetime.combine(day, dtime(0), tzinfo=tz))
    inputs = await plan_inputs(conn, city_id=city_id)
    params = inputs.params
    pools_rows, truck_rows, bin_rows, pool_of = _scope_to_pool(inputs, city_id=city_id, pool=pool)
    history = await hourly_fill(
        conn,
        city_id=city_id,
        device_ids=[b.device_id for b in bin_rows],
        end=as_of,
        days=LOOKBACK_DAYS,
    )
    container_kg = int(params.container_kg) if params else 8000
    trucks = _trucks_on_shift(truck_rows, day=day, now=now)
    pools = [P.Point(r.pool_id, r.name, float(r.lat), float(r.lon)) for r in pools_rows]
    messages = _input_messages(truck_rows, trucks, bin_rows, pool)

    def compute() -> tuple[P.Plan, list[P.Stop], P.Landfill | None]:
        bins = _bin_states(
            bin_rows, history, pool_of=pool_of, container_kg=container_kg, as_of=as_of, tz=tz
        )
        return _select_and_solve(
            bins, params, day=day, tz=tz, trucks=trucks, pools=pools, time_limit_s=time_limit_s
        )

    plan, stops, landfill = await asyncio.to_thread(compute)
    messages += _data_messages(params, history, bin_rows, as_of)
    answer = _answer(
        city_id,
        day,
        pool,
        as_of,
        plan,
        trucks_available=len(trucks),
        stops=stops,
        pools=pools,
        landfill=landfill,
        extra_messages=messages,
    )
    _remember(key, answer)
    return answer


DateQ = Annotated[
    str | None,
    Query(
        description="Local date of the plan, YYYY-MM-DD (default: tomorrow; at most 7 days ahead)."
    ),
]
PoolQ = Annotated[
    str | None, Query(pattern=ID_PATTERN, description="Only this truck pool (default: all).")
]


@router.get(
    "/collection-plan",
    summary="The day's collection plan: depots to empty, trucks, order, landfill trips",
    dependencies=[HeavyLane],
)
async def get_collection_plan(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    settings: SettingsDep,
    date: DateQ = None,
    pool: PoolQ = None,
) -> PlanAnswer:
    """Forecast every depot bin, choose the depots that must (and may) be emptied, route the trucks.

    Depots that need emptying and cannot be covered are listed in `uncovered` with the reason
    (no data, no trucks, no capacity, not reachable in time): never an error.
    """
    day = _plan_day(date, city.tz)
    return await _city_plan(conn, city, settings, day, pool)


XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
XLSX_HEADERS = [
    ("Truk / Truck", 16),
    ("Rit / Trip", 8),
    ("Urutan / Order", 9),
    ("TPS / Depot", 26),
    ("Kelurahan", 18),
    ("Kecamatan / District", 20),
    ("Perkiraan isi % / Expected fill %", 14),
    ("Muatan t / Load t", 11),
    ("Jendela waktu / Time window", 16),
    ("Tiba / Arrival", 10),
    ("Terlambat menit / Late min", 10),
    ("Wajib / Mandatory", 10),
]


def build_xlsx(answer: PlanAnswer) -> bytes:
    """The plan as a workbook: every stop, each trip's landfill arrival, and what is not covered."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    bold = wb.add_format({"bold": True, "text_wrap": True, "valign": "top"})
    num = wb.add_format({"num_format": "0.0"})
    ton = wb.add_format({"num_format": "0.000"})
    ws = wb.add_worksheet("Rencana")
    ws.write(0, 0, f"Rencana pengangkutan / Collection plan {answer.city_id} {answer.date}", bold)
    s = answer.summary
    ws.write(
        1,
        0,
        f"{s.trucks_used} truk, {s.trips} rit, {s.km:.1f} km, {s.load_t:.3f} t; "
        f"tidak terangkut / not covered: {s.uncovered}",
    )
    for col, (title, width) in enumerate(XLSX_HEADERS):
        ws.write(3, col, title, bold)
        ws.set_column(col, col, width)
    row = 4
    for truck in answer.trucks:
        for trip in truck.trips:
            for stop in trip.stops:
                ws.write(row, 0, truck.truck_id)
                ws.write_number(row, 1, trip.number)
                ws.write_number(row, 2, stop.order)
                ws.write(row, 3, stop.site_name)
                ws.write(row, 4, stop.kelurahan or "")
                ws.write(row, 5, stop.district_name)
                ws.write_number(row, 6, stop.expected_fill_pct, num)
                ws.write_number(row, 7, stop.load_t, ton)
                ws.write(row, 8, f"{stop.window_start}-{stop.window_end}")
                ws.write(row, 9, stop.arrival)
                ws.write_number(row, 10, stop.late_min)
                ws.write(row, 11, "ya" if stop.mandatory else "tidak")
                row += 1
            ws.write(row, 0, truck.truck_id)
            ws.write_number(row, 1, trip.number)
            ws.write(row, 3, f"TPA / landfill ({answer.landfill.name if answer.landfill else ''})")
            ws.write_number(row, 7, trip.load_t, ton)
            ws.write(row, 9, trip.landfill_arrival)
            row += 1
    un = wb.add_worksheet("Tidak terangkut")
    for col, title in enumerate(
        [
            "TPS / Depot",
            "Kelurahan",
            "Kecamatan / District",
            "Pool",
            "Perkiraan isi %",
            "Alasan / Reason",
        ]
    ):
        un.write(0, col, title, bold)
        un.set_column(col, col, 22 if col < 5 else 70)
    for i, u in enumerate(answer.uncovered + answer.deferred, start=1):
        un.write(i, 0, u.site_name)
        un.write(i, 1, u.kelurahan or "")
        un.write(i, 2, u.district_id)
        un.write(i, 3, u.pool_id or "")
        if u.expected_fill_pct is not None:
            un.write_number(i, 4, u.expected_fill_pct, num)
        un.write(i, 5, u.reason)
    wb.close()
    return buf.getvalue()


@router.get(
    "/collection-plan.xlsx",
    summary="The collection plan as an XLSX workbook (Bahasa Indonesia / English headers)",
    response_class=Response,
    responses={
        200: {
            "description": "An XLSX workbook: the plan's stops, and the depots not covered.",
            "content": {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    dependencies=[HeavyLane],
)
async def get_collection_plan_xlsx(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    settings: SettingsDep,
    date: DateQ = None,
    pool: PoolQ = None,
) -> Response:
    """One row per stop and per landfill arrival; a second sheet lists depots not covered."""
    day = _plan_day(date, city.tz)
    answer = await _city_plan(conn, city, settings, day, pool)
    body = await asyncio.to_thread(build_xlsx, answer)
    name = f"rencana-angkut-{city.city_id}-{day.isoformat()}{'-' + pool if pool else ''}.xlsx"
    return Response(
        body,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


PRINT_CSS = (
    "body{font-family:sans-serif;font-size:11pt;margin:1.5cm}"
    "h1{font-size:15pt;margin:0}h2{font-size:12pt;margin:.8em 0 .3em}"
    "table{border-collapse:collapse;width:100%}"
    "th,td{border:1px solid #444;padding:3px 6px;text-align:left;vertical-align:top}"
    "th{background:#eee}td.n{text-align:right}"
    ".truck{page-break-after:always}.truck:last-child{page-break-after:auto}"
    ".small{font-size:9pt;color:#333}"
)
PRINT_CSP = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(PRINT_CSS.encode()).digest()).decode()
    + "'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def build_print_page(answer: PlanAnswer, truck_id: str | None) -> str:
    """A printable page per truck: stop order, depot, kelurahan, expected fill, time window."""
    e = html.escape
    trucks = [t for t in answer.trucks if truck_id is None or t.truck_id == truck_id]
    parts = [
        "<!doctype html><html lang='id'><head><meta charset='utf-8'>",
        f"<title>Rencana angkut {e(answer.city_id)} {e(answer.date)}</title>",
        f"<style>{PRINT_CSS}</style></head><body>",
    ]
    if not trucks:
        parts.append(
            f"<h1>Rencana angkut {e(answer.date)}</h1><p>Tidak ada rute truk untuk tanggal ini / "
            "no truck routes for this date.</p>"
        )
    lf_name = e(answer.landfill.name) if answer.landfill else "TPA"
    for t in trucks:
        parts.append("<section class='truck'>")
        parts.append(
            f"<h1>Truk {e(t.truck_id)} &middot; {e(answer.date)}</h1>"
            f"<p class='small'>Pool {e(t.pool_id)} &middot; berangkat / departs {e(t.start)} "
            f"&middot; kembali / back {e(t.end)} &middot; kapasitas / capacity {t.capacity_t:.1f} t "
            f"&middot; {t.km:.1f} km &middot; jam buka TPA / landfill hours {e(answer.landfill_hours or '')}</p>"
        )
        for trip in t.trips:
            parts.append(
                f"<h2>Rit {trip.number} &middot; {trip.load_t:.1f} t &middot; tiba di {lf_name} "
                f"/ at the landfill {e(trip.landfill_arrival)}</h2>"
                "<table><tr><th>No.</th><th>TPS</th><th>Kelurahan</th><th>Kecamatan</th>"
                "<th>Perkiraan isi</th><th>Jendela waktu</th><th>Tiba</th><th>Paraf</th></tr>"
            )
            for s in trip.stops:
                parts.append(
                    f"<tr><td class='n'>{s.order}</td><td>{e(s.site_name)}</td>"
                    f"<td>{e(s.kelurahan or '-')}</td><td>{e(s.district_name)}</td>"
                    f"<td class='n'>{s.expected_fill_pct:.0f} %</td>"
                    f"<td>{e(s.window_start)}&ndash;{e(s.window_end)}</td>"
                    f"<td>{e(s.arrival)}{f' (terlambat {s.late_min} mnt)' if s.late_min else ''}</td>"
                    "<td></td></tr>"
                )
            parts.append("</table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


@router.get(
    "/collection-plan/print",
    summary="Printable page per truck (Bahasa Indonesia): stop order, depot, kelurahan, fill, window",
    response_class=Response,
    responses={
        200: {
            "description": "An HTML page to print, one truck per sheet.",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
    dependencies=[HeavyLane],
)
async def get_collection_plan_print(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    settings: SettingsDep,
    date: DateQ = None,
    pool: PoolQ = None,
    truck: Annotated[
        str | None,
        Query(
            pattern=ID_PATTERN, description="Only this truck (default: every truck, a page each)."
        ),
    ] = None,
) -> HTMLResponse:
    """An HTML page to print, one truck per sheet; 404 for a truck not in the city's fleet."""
    day = _plan_day(date, city.tz)
    if truck is not None and not await truck_exists(conn, city_id=city.city_id, truck_id=truck):
        raise HTTPException(404, detail=f"no truck {truck!r} in city {city.city_id!r}")
    answer = await _city_plan(conn, city, settings, day, pool)
    return HTMLResponse(
        build_print_page(answer, truck), headers={"Content-Security-Policy": PRINT_CSP}
    )
