"""Benchmark: backfill a city through a private authenticating broker into the real ingest, and time both.

Usage: .venv/bin/python bench/simulate_backfill.py [--city-file data/cities/bandung.yaml] [--days 30]
Needs PostgreSQL on 127.0.0.1:5432 (creates and drops a scratch database) and mosquitto on PATH.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pisman import citydata, db, devices
from pisman.settings import PROJECT_ROOT
from simulators.provision import provision
from tests.support.broker import Mosquitto, free_port

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
BASELINE = "issue 4: Bandung, 30 days, 'in a few minutes on this machine'"


def main() -> int:
    """Run the benchmark and print its figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--city-file", default=str(PROJECT_ROOT / "data" / "cities" / "bandung.yaml"))
    ap.add_argument("--days", default="30")
    ap.add_argument("--faults", default="none")
    ap.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = ap.parse_args()
    name = f"pisman_bench_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="pisman-bench-"))
    broker = ingest = None
    try:
        db.migrate(url, PROJECT_ROOT / "sql")
        city = citydata.read_city_file(args.city_file)
        with psycopg.connect(url) as conn:
            provision(conn, city, credentials_path=tmp / "creds.json", gateway_user="sim-gateway")
            devices.set_service_account(conn, username="ingest", role="ingest", password="bench")
            conn.commit()
            devices.write_broker_files(conn, password_file=tmp / "passwd", acl_file=tmp / "acl")
        (tmp / "broker").mkdir()
        broker = Mosquitto(
            tmp / "broker", port=free_port(), password_file=tmp / "passwd", acl_file=tmp / "acl"
        )
        broker.start()
        clean = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PISMAN_", "MQTT_", "INGEST_", "DATABASE_"))
        }
        ingest_log = (tmp / "ingest.log").open("wb")
        ingest = subprocess.Popen(
            [sys.executable, "-m", "pisman", "ingest"],
            env={**clean, "DATABASE_URL": url, "MQTT_URL": f"mqtt://ingest:bench@127.0.0.1:{broker.port}",
                 "INGEST_METRICS_PORT": "0", "INGEST_CLIENT_ID": f"bench-{broker.port}"},
            stdout=ingest_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while b"ingest_ready" not in (tmp / "ingest.log").read_bytes():
            if time.monotonic() > deadline or ingest.poll() is not None:
                raise SystemExit(
                    "ingest did not start:\n" + (tmp / "ingest.log").read_text()[-2000:]
                )
            time.sleep(0.1)
        started = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", args.city_file, "--credentials",
             str(tmp / "creds.json"), "--mode", "backfill", "--days", args.days, "--gateway", "--seed", "1",
             "--faults", args.faults, "--report", str(tmp / "report.json")],
            env={**clean, "DATABASE_URL": url, "MQTT_URL": f"mqtt://127.0.0.1:{broker.port}"}, check=True,
        )  # fmt: skip
        published = time.monotonic() - started
        report = json.loads((tmp / "report.json").read_text())
        expected = report["totals"]["valid"]
        stored = -1
        while True:
            with psycopg.connect(url) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM weighing) + (SELECT count(*) FROM bin_reading)"
                ).fetchone()
            stored = int(row[0]) if row else 0
            if stored >= expected or time.monotonic() - started > 1800:
                break
            time.sleep(1)
        total = time.monotonic() - started
        print(
            f"city={city.city.id} days={args.days} devices={report['devices'] and len(report['devices'])} "
            f"readings={expected} messages={report['totals']['messages']}"
        )
        print(
            f"simulator published and got every PUBACK in {published:.1f} s "
            f"({expected / published:.0f} readings/s)"
        )
        print(
            f"ingest stored {stored} readings {total:.1f} s after the start ({stored / total:.0f} readings/s)"
        )
        print(f"baseline: {BASELINE}")
        return 0
    finally:
        if ingest:
            ingest.terminate()
            ingest.wait(10)
        if broker:
            broker.stop()
        if not args.keep:
            with psycopg.connect(ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
