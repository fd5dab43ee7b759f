"""Seed a database with a small city and days of readings through raw-table inserts (no ingest)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg

from pisman.rollups import bring_rollups_up_to_date

ZONE = ZoneInfo("Asia/Jakarta")

INSERT_CITY = (
    "INSERT INTO city (city_id, name, province, timezone) VALUES (%s, %s, %s, 'Asia/Jakarta')"
)
INSERT_DISTRICT = "INSERT INTO district (city_id, district_id, name) VALUES (%s, %s, %s)"
INSERT_SITE = """
INSERT INTO site (site_id, city_id, district_id, kelurahan, name, site_type, process_kind, lat, lon)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
"""
INSERT_DEVICE = """
INSERT INTO device (device_id, city_id, site_id, kind, password_hash, reporting_interval_s)
VALUES (%s, %s, %s, %s, 'not-a-real-hash', %s)
"""
INSERT_TARGET = """
INSERT INTO target (city_id, metric, period, value, source) VALUES (%s, %s, %s::interval, %s, 'test fixture')
"""
INSERT_STATE = """
INSERT INTO device_state (device_id, city_id, last_seen_at, last_reading_ts, last_seq, connection, battery_pct, fill_ratio)
VALUES (%s, %s, %s, %s, %s, 'online', %s, %s)
"""


@dataclass(frozen=True, slots=True)
class SeedSite:
    """A site of the seeded city with the scale that weighs there."""

    site_id: str
    district_id: str
    site_type: str
    scale_id: str
    bins: tuple[str, ...] = ()


@dataclass(slots=True)
class SeededCity:
    """What seed_city created."""

    city_id: str
    district_ids: list[str]
    empty_district_id: str
    sites: list[SeedSite] = field(default_factory=list)

    @property
    def bin_ids(self) -> list[str]:
        """Every bin sensor."""
        return [b for s in self.sites for b in s.bins]


# Bandung-like targets (DOMAIN.md), written as data for the test city only.
TARGETS = (
    ("generation_t", "1 day", 1500),
    ("reduce_t", "1 day", 450),
    ("utilize_t", "1 day", 60),
    ("residual_t", "1 day", 981),
    ("separate_share", "1 day", 0.4),
    ("landfill_quota_t", "14 days", 13738),
    ("kbs_rw", "1 day", 700),
)


def seed_city(
    conn: psycopg.Connection,
    *,
    city_id: str = "testville",
    districts: int = 2,
    depots_per_district: int = 1,
    bins_per_depot: int = 2,
) -> SeededCity:
    """A city with `districts` districts with sites (bank, depot(s), and a facility and the landfill
    in the first) plus one district without sites; targets; a scale per site and bins at depots."""
    conn.execute(INSERT_CITY, (city_id, city_id.title(), "Jawa Barat"))
    seeded = SeededCity(city_id, [], empty_district_id=f"{city_id[:8]}-kosong")
    for i in range(districts):
        district_id = f"{city_id[:8]}-d{i + 1:02d}"
        conn.execute(INSERT_DISTRICT, (city_id, district_id, f"Kecamatan {i + 1:02d}"))
        seeded.district_ids.append(district_id)
    conn.execute(INSERT_DISTRICT, (city_id, seeded.empty_district_id, "Kecamatan Kosong"))

    def add_site(
        district_id: str,
        site_id: str,
        name: str,
        site_type: str,
        process: str | None,
        n: int,
        bins: int = 0,
    ) -> None:
        lat, lon = -6.95 + 0.012 * (n % 9), 107.58 + 0.014 * (n // 9) + 0.003 * n
        conn.execute(
            INSERT_SITE,
            (site_id, city_id, district_id, "Kelurahan", name, site_type, process, lat, lon),
        )
        kind = "weighbridge" if site_type in ("landfill", "depot") else "platform_scale"
        scale_id = f"{site_id}-scale"
        conn.execute(INSERT_DEVICE, (scale_id, city_id, site_id, kind, 300))
        bin_ids = tuple(f"{site_id}-bin{b + 1}" for b in range(bins))
        for bin_id in bin_ids:
            conn.execute(INSERT_DEVICE, (bin_id, city_id, site_id, "bin_sensor", 600))
        seeded.sites.append(SeedSite(site_id, district_id, site_type, scale_id, bin_ids))

    n = 0
    for i, district_id in enumerate(seeded.district_ids):
        add_site(
            district_id, f"{district_id}-bank", f"Bank Sampah {i + 1:02d}", "waste_bank", None, n
        )
        n += 1
        for depot in range(depots_per_district):
            add_site(
                district_id,
                f"{district_id}-tps{depot + 1}",
                f"TPS {i + 1:02d}.{depot + 1}",
                "depot",
                None,
                n,
                bins=bins_per_depot,
            )
            n += 1
        if i == 0:
            add_site(
                district_id, f"{city_id[:8]}-tps3r", "TPS3R Kompos", "processing", "compost", n
            )
            add_site(district_id, f"{city_id[:8]}-tpa", "TPA Gerbang", "landfill", None, n + 1)
            n += 2
    for metric, period, value in TARGETS:
        conn.execute(INSERT_TARGET, (city_id, metric, period, value))
    return seeded


# (site type, stream, material, kg low, kg high, loads per day at scale 1)
FLOWS = {
    "waste_bank": (("deposit", "plastic", 20, 120, 6), ("deposit", "paper", 20, 150, 6)),
    "depot": (("separated", "food", 300, 900, 6), ("mixed", "mixed", 500, 1500, 6)),
    "processing": (
        ("to_processing", "food", 800, 2500, 8),
        ("to_landfill", "residual", 200, 600, 2),
    ),
    "landfill": (
        ("to_landfill", "mixed", 4000, 8000, 30),
        ("to_landfill", "residual", 4000, 8000, 10),
    ),
}


def seed_weighings(
    conn: psycopg.Connection,
    city: SeededCity,
    *,
    first_day: date,
    days: int,
    scale: float = 1.0,
    rng_seed: int = 7,
) -> int:
    """Weighings for `days` local days from first_day at every site (COPY), then bring the rollups up
    to date (on TimescaleDB this commits)."""
    rng = random.Random(rng_seed)
    seqs: dict[str, int] = {}
    rows = 0
    with (
        conn.cursor() as cur,
        cur.copy(
            "COPY weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream) FROM STDIN"
        ) as copy,
    ):
        for offset in range(days):
            day_start = datetime.combine(first_day + timedelta(days=offset), time(5, 0), ZONE)
            for site in city.sites:
                for stream, material, low, high, loads in FLOWS[site.site_type]:
                    count = max(1, round(loads * scale))
                    for k in range(count):
                        # Spread over 05:00-21:00 local; the sequence keeps each device's rows unique.
                        ts = (
                            day_start + timedelta(minutes=16 * 60 * k / count + rng.random())
                        ).astimezone(UTC)
                        seq = seqs.get(site.scale_id, 0)
                        seqs[site.scale_id] = seq + 1
                        copy.write_row(
                            (
                                ts,
                                city.city_id,
                                site.site_id,
                                site.scale_id,
                                seq,
                                round(rng.uniform(low, high), 1),
                                material,
                                stream,
                            )
                        )
                        rows += 1
    start = datetime.combine(first_day, time(0), ZONE)
    bring_rollups_up_to_date(conn, start, start + timedelta(days=days))
    return rows


def seed_bins(
    conn: psycopg.Connection, city: SeededCity, *, now: datetime | None = None
) -> dict[str, float]:
    """One current reading per bin (fills spread from 95 % down), device states; the last bin is silent
    for two days, the first scale never reported, and one bin's battery is low. Returns fill % by bin."""
    now = now or datetime.now(UTC)
    fills: dict[str, float] = {}
    bins = city.bin_ids
    for i, bin_id in enumerate(bins):
        site_id = next(s.site_id for s in city.sites if bin_id in s.bins)
        fill = max(0.05, 0.95 - 0.12 * i)
        battery = 12.0 if i == 1 else 80.0
        silent = i == len(bins) - 1 and len(bins) > 2
        ts = now - (timedelta(days=2) if silent else timedelta(minutes=3))
        conn.execute(
            "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio, battery_pct, temperature_c)"
            " VALUES (%s, %s, %s, %s, 1, %s, %s, 29.5)",
            (ts, city.city_id, site_id, bin_id, fill, battery),
        )
        conn.execute(INSERT_STATE, (bin_id, city.city_id, ts, ts, 1, battery, fill))
        conn.execute("SELECT pisman_refresh_bin_rollups(%s, %s)", ([bin_id], [ts]))
        fills[bin_id] = round(fill * 100, 1)
    for site in city.sites[1:]:
        conn.execute(INSERT_STATE, (site.scale_id, city.city_id, now, now, 0, None, None))
    return fills
