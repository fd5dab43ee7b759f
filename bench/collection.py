"""Benchmark: the collection plan against today's threshold rule and fixed daily rounds, in the simulated city.

Usage: .venv/bin/python bench/collection.py [--city-file data/cities/bandung.yaml] [--days 30]
       [--warmup-days 14] [--seed 1] [--modes threshold,fixed,plan] [--plan-time-limit 5]

Runs the simulator's city model (simulators/behaviour.py, CitySimulation) in-process, without
MQTT or a database: the fill model lives there, and the plan mode forecasts from the very bin
readings the simulator would publish (1 % sensor noise, one every 15 min). Each mode runs the
same seed and start; the first `--warmup-days` (threshold rule everywhere until a bin has
enough history) are not counted. Prints one table.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm

from pisman.citydata import read_city_file
from pisman.settings import PROJECT_ROOT
from simulators.behaviour import HOUR_MS, CitySimulation
from simulators.collection import COLLECTION_MODES
from simulators.devices import city_devices

START = date(2026, 10, 1)
COLUMNS = (
    ("mode", "mode"),
    ("overflow-hours", "overflow_hours"),
    ("truck trips", "trips"),
    ("truck-km", "truck_km"),
    ("t collected", "collected_t"),
    ("t per trip", "t_per_trip"),
    ("landfill arrivals outside hours", "outside"),
    ("km vs threshold", "km_change"),
    ("solve s/day", "solve_s"),
)


def run_mode(
    mode: str, city_file: str, *, seed: int, days: int, warmup: int, time_limit_s: float
) -> dict[str, object]:
    """Simulate warmup + days in one mode; the account of the counted days."""
    city = read_city_file(city_file)
    assert city.simulation is not None
    sim = CitySimulation(
        city,
        city_devices(city),
        seed=seed,
        bin_interval_s=city.simulation.bins.backfill_interval_s,
        collection=mode,
        plan_time_limit_s=time_limit_s,
    )
    tz = ZoneInfo(city.city.timezone)
    start_ms = int(datetime(START.year, START.month, START.day, tzinfo=tz).timestamp() * 1000)
    hours = (warmup + days) * 24
    started = time.monotonic()
    for h in tqdm(range(hours), desc=mode, unit="h", file=sys.stderr, mininterval=2):
        sim.hour(start_ms + h * HOUR_MS)
    counted = {(START + timedelta(days=warmup + d)).isoformat() for d in range(days)}
    st = sim.collection.stats
    rows = [v for k, v in st.by_day.items() if k in counted]
    trips = int(sum(r["trips"] for r in rows))
    collected_t = sum(r["collected_kg"] for r in rows) / 1e6
    plans = max(1, st.plans)
    return {
        "mode": mode,
        "overflow_hours": int(sum(r["overflow_hours"] for r in rows)),
        "trips": trips,
        "truck_km": round(sum(r["truck_km"] for r in rows)),
        "collected_t": round(collected_t, 1),
        "t_per_trip": round(collected_t / trips, 2) if trips else None,
        "outside": int(sum(r["outside"] for r in rows)),
        "solve_s": round(st.plan_s / plans, 1) if st.plans else "-",
        "uncovered": st.uncovered,
        "wall_s": round(time.monotonic() - started),
    }


def main() -> int:
    """Run every mode and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--city-file", default=str(PROJECT_ROOT / "data" / "cities" / "bandung.yaml"))
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--warmup-days", type=int, default=14)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--modes", default="threshold,fixed,plan")
    ap.add_argument(
        "--plan-time-limit", type=float, default=5.0, help="solver seconds per daily plan"
    )
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in COLLECTION_MODES]
    if bad or args.days < 1 or args.warmup_days < 0:
        print(f"bench/collection.py: unknown mode(s) {bad} or bad days", file=sys.stderr)
        return 2
    results = [
        run_mode(
            m,
            args.city_file,
            seed=args.seed,
            days=args.days,
            warmup=args.warmup_days,
            time_limit_s=args.plan_time_limit,
        )
        for m in modes
    ]
    base = next((r for r in results if r["mode"] == "threshold"), None)
    for r in results:
        if base and base["truck_km"]:
            change = (float(r["truck_km"]) - float(base["truck_km"])) / float(base["truck_km"])  # type: ignore[arg-type]
            r["km_change"] = f"{change:+.1%}"
        else:
            r["km_change"] = "-"
    print(
        f"\n{Path(args.city_file).name}: {args.days} simulated days after {args.warmup_days} days "
        f"of warm-up, seed {args.seed}, solver {args.plan_time_limit:g} s per daily plan\n"
    )
    print("| " + " | ".join(title for title, _ in COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in results:
        print("| " + " | ".join(str(r.get(key, "-")) for _, key in COLUMNS) + " |")
    for r in results:
        print(
            f"{r['mode']}: {r['wall_s']} s wall, depots the plan could not cover: {r['uncovered']}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
