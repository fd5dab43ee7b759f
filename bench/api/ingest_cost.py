"""Cost of ingest's statement with and without the tonnage grain (sql/025), on each backend:
the same 2,000-reading batches through pisman_insert_staged_weighings() on a schema up to 024
and on the current one. `python -m bench.api.ingest_cost`"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg

from bench.api.load import Scale, seed_city
from bench.api.run import ADMIN_URLS, UPGRADE_FROM
from pisman import db
from pisman.settings import PROJECT_ROOT

STAGE = "CREATE TEMP TABLE IF NOT EXISTS stage_weighing (LIKE weighing INCLUDING DEFAULTS)"


def _batches(sites: list[tuple[str, str]], n_batches: int, size: int) -> list[list[tuple]]:
    rng = np.random.default_rng(7)
    t0 = datetime.now(UTC) - timedelta(hours=2)
    out = []
    seq = 0
    for _ in range(n_batches):
        rows = []
        for i in rng.integers(0, len(sites), size):
            site, _ = sites[int(i)]
            seq += 1
            ts = t0 + timedelta(seconds=float(rng.uniform(0, 3600)))
            rows.append(
                (
                    ts,
                    "bandung",
                    site,
                    f"scale-{site}",
                    seq,
                    round(float(rng.uniform(1, 900)), 3),
                    "plastic",
                    "deposit",
                )
            )
        out.append(rows)
    return out


def _time(url: str, batches: list[list[tuple]]) -> list[float]:
    samples = []
    with psycopg.connect(url) as conn:
        conn.execute(STAGE)
        for rows in batches:
            t = time.perf_counter()
            conn.execute("DELETE FROM stage_weighing")
            with (
                conn.cursor() as cur,
                cur.copy(
                    "COPY stage_weighing (ts, city_id, site_id, device_id, seq, net_kg, material, stream) FROM STDIN"
                ) as copy,
            ):
                for r in rows:
                    copy.write_row(r)
            conn.execute("SELECT count(*) FROM pisman_insert_staged_weighings()").fetchone()
            conn.commit()
            samples.append(time.perf_counter() - t)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Print the batch times side by side."""
    p = argparse.ArgumentParser(prog="python -m bench.api.ingest_cost", description=__doc__)
    p.add_argument("--backends", default="postgresql,timescaledb")
    p.add_argument("--batches", type=int, default=30)
    p.add_argument("--size", type=int, default=2000)
    args = p.parse_args(argv)
    for backend in [b for b in args.backends.split(",") if b]:
        admin = ADMIN_URLS[backend]
        for label, upto in (("without grain (024)", UPGRADE_FROM), ("with grain (current)", 999)):
            name = f"pisman_bench_ingest_cost_{upto}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
            url = admin.rsplit("/", 1)[0] + "/" + name
            with tempfile.TemporaryDirectory() as tmp:
                for path in sorted((PROJECT_ROOT / "sql").glob("*.sql")):
                    if int(path.name[:3]) <= upto:
                        shutil.copy(path, Path(tmp) / path.name)
                db.migrate(url, Path(tmp))
            with psycopg.connect(url) as conn:
                sites = seed_city(conn, Scale(bins=0))
            samples = sorted(_time(url, _batches(sites, args.batches, args.size))[3:])
            med = samples[len(samples) // 2] * 1000
            print(
                f"{backend:<12} {label:<22} {args.size}-reading batch: median {med:.1f} ms "
                f"({args.size / med * 1000:,.0f} readings/s in the statement)",
                flush=True,
            )
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
