"""Synthetic Bandung-scale history loaded straight into a fresh database with COPY."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg

from tests.support.city_seed import TARGETS, DeviceRow, SiteRow, insert_city

CITY = "bandung"
TZ = ZoneInfo("Asia/Jakarta")


@dataclass(frozen=True, slots=True)
class Scale:
    """How big the synthetic city is."""

    districts: int = 30
    depots: int = 260
    waste_banks: int = 400
    hubs: int = 3
    facilities: int = 20
    bins: int = 20
    landfill_trips_per_day: int = 140
    depot_loads_per_day: int = 8
    deposits_per_bank_per_day: int = 12
    facility_loads_per_day: int = 12


def seed_city(conn: psycopg.Connection, s: Scale) -> list[tuple[str, str]]:
    """City, districts, sites, one scale per site, bins, targets; returns (site_id, site_type)."""
    sites: list[tuple[str, str, str | None]] = [("tpa-sarimukti", "landfill", None)]
    sites += [(f"tps-{i:03d}", "depot", None) for i in range(s.depots)]
    sites += [(f"bsu-{i:03d}", "waste_bank", None) for i in range(s.waste_banks)]
    sites += [(f"bsi-{i}", "waste_bank_hub", None) for i in range(s.hubs)]
    kinds = ["compost", "larvae", "biodigester", "recycling", "rdf"]
    sites += [(f"tps3r-{i:02d}", "processing", kinds[i % 5]) for i in range(s.facilities)]
    scales = [
        DeviceRow(
            f"scale-{sid}",
            sid,
            "weighbridge" if st in ("landfill", "processing") else "platform_scale",
        )
        for sid, st, _ in sites
    ]
    bins = [
        DeviceRow(f"bin-{b:04d}", f"tps-{b % s.depots:03d}", "bin_sensor") for b in range(s.bins)
    ]
    insert_city(
        conn,
        CITY,
        name="Kota Bandung (bench)",
        province="Jawa Barat",
        districts=[(f"d{d:02d}", f"Kecamatan {d:02d}") for d in range(s.districts)],
        sites=[
            SiteRow(sid, f"d{i % s.districts:02d}", st, pk, name=sid.upper())
            for i, (sid, st, pk) in enumerate(sites)
        ],
        devices_=[*scales, *bins],
        targets=TARGETS,
        targets_source="bench",
    )
    conn.commit()
    return [(sid, st) for sid, st, _ in sites]


def _day_weighings(
    rng: np.random.Generator, day: date, sites: list[tuple[str, str]], s: Scale, seq0: int
) -> pd.DataFrame:
    """One local day of weighings (about 1500 t arriving, about 980 t to the landfill)."""
    by_type: dict[str, list[str]] = {}
    for sid, st in sites:
        by_type.setdefault(st, []).append(sid)
    parts = []

    def block(
        site_ids: list[str],
        n_per_site: int,
        kg_lo: float,
        kg_hi: float,
        streams: list[str],
        materials: list[str],
        price: bool = False,
    ) -> None:
        n = len(site_ids) * n_per_site
        parts.append(
            pd.DataFrame(
                {
                    "site_id": np.repeat(site_ids, n_per_site),
                    "net_kg": np.round(rng.uniform(kg_lo, kg_hi, n), 3),
                    "material": rng.choice(materials, n),
                    "stream": rng.choice(streams, n),
                    "price_per_kg": np.round(rng.uniform(500, 5000, n), 2)
                    if price
                    else np.full(n, np.nan),
                }
            )
        )

    block(
        by_type["landfill"],
        s.landfill_trips_per_day,
        4000,
        10000,
        ["to_landfill"],
        ["mixed", "mixed", "residual", "food"],
    )
    block(
        by_type["depot"],
        s.depot_loads_per_day,
        200,
        800,
        ["separated", "mixed"],
        ["food", "plastic", "paper", "mixed", "residual"],
    )
    block(
        by_type["waste_bank"],
        s.deposits_per_bank_per_day,
        5,
        45,
        ["deposit"],
        ["plastic", "paper", "metal", "glass"],
        price=True,
    )
    block(
        by_type["waste_bank_hub"],
        s.deposits_per_bank_per_day,
        20,
        200,
        ["deposit"],
        ["plastic", "paper"],
        price=True,
    )
    block(
        by_type["processing"],
        s.facility_loads_per_day,
        100,
        600,
        ["to_processing", "to_processing", "processed_output", "to_landfill"],
        ["food", "plastic", "residual"],
    )
    df = pd.concat(parts, ignore_index=True)
    start = datetime.combine(day, time(0), tzinfo=TZ).timestamp()
    df["ts"] = pd.to_datetime(start + rng.uniform(0, 86400, len(df)), unit="s", utc=True)
    df["device_id"] = "scale-" + df["site_id"]
    df["seq"] = np.arange(seq0, seq0 + len(df))
    df["from_own_site"] = df["site_id"].str.startswith("bsi-") & (rng.random(len(df)) < 0.5)
    df["manual"] = rng.random(len(df)) < 0.01
    df["city_id"] = CITY
    return df[
        [
            "ts",
            "city_id",
            "site_id",
            "device_id",
            "seq",
            "net_kg",
            "material",
            "stream",
            "from_own_site",
            "price_per_kg",
            "manual",
        ]
    ]


def _copy_frame(conn: psycopg.Connection, table: str, df: pd.DataFrame) -> None:
    buf = io.StringIO()
    df.to_csv(buf, index=False, header=False, na_rep="", date_format="%Y-%m-%d %H:%M:%S.%f+00")
    cols = ", ".join(df.columns)
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as copy,
    ):
        copy.write(buf.getvalue())


def load_weighings(
    conn: psycopg.Connection,
    sites: list[tuple[str, str]],
    s: Scale,
    first: date,
    days: int,
    seed: int = 1,
) -> int:
    """COPY `days` days of weighings; returns the row count."""
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(days):
        df = _day_weighings(rng, first + timedelta(days=i), sites, s, total)
        _copy_frame(conn, "weighing", df)
        total += len(df)
        if i % 30 == 29:
            conn.commit()
    conn.commit()
    return total


def load_bins(conn: psycopg.Connection, s: Scale, first: date, days: int, seed: int = 2) -> int:
    """COPY a reading from every bin every 5 minutes; returns the row count."""
    if s.bins == 0:
        return 0
    rng = np.random.default_rng(seed)
    per_day = 288
    start = datetime.combine(first, time(0), tzinfo=TZ).timestamp()
    total = 0
    for i in range(days):
        k = np.arange(per_day)
        ts = pd.to_datetime(start + (i * per_day + k) * 300.0, unit="s", utc=True)
        df = pd.DataFrame(
            {
                "ts": np.tile(ts, s.bins),
                "city_id": CITY,
                "site_id": np.repeat([f"tps-{b % s.depots:03d}" for b in range(s.bins)], per_day),
                "device_id": np.repeat([f"bin-{b:04d}" for b in range(s.bins)], per_day),
                "seq": np.tile(i * per_day + k, s.bins),
                "fill_ratio": np.round(
                    np.tile((k % 144) / 150.0, s.bins) + rng.uniform(0, 0.03, per_day * s.bins), 4
                ).clip(0, 1),
                "battery_pct": np.round(np.repeat(rng.uniform(10, 100, s.bins), per_day), 2),
            }
        )
        _copy_frame(conn, "bin_reading", df)
        total += len(df)
        if i % 30 == 29:
            conn.commit()
    conn.commit()
    return total
