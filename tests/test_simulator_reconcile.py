"""End to end: the simulator publishes through a private, authenticating broker into the real ingest service,
and what is stored and quarantined reconciles exactly with the simulator's own report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from pisman import citydata, devices
from pisman.settings import PROJECT_ROOT
from simulators.provision import provision
from simulators.report import expand_ranges
from tests.support.broker import Mosquitto, free_port

TESTVILLE = PROJECT_ROOT / "data" / "cities" / "testville.yaml"
END = "2026-11-01T00:00:00+07:00"
INGEST_PASSWORD = "ingest-test-password"

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    """A migrated database with testville provisioned, a private broker, and ingest running."""

    db_url: str
    broker: Mosquitto
    credentials: Path
    tmp: Path


def _wait_for_line(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    text = path.read_text(errors="replace") if path.exists() else ""
    pytest.fail(f"ingest did not log {needle!r} (exit {proc.poll()}):\n{text[-3000:]}")


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    """Everything the simulator publishes into, started in the order a deployment would."""
    creds = tmp_path / "creds.json"
    city = citydata.read_city_file(TESTVILLE)
    pw_file, acl_file = tmp_path / "passwd", tmp_path / "acl"
    with psycopg.connect(db_url) as conn:
        provision(conn, city, credentials_path=creds, gateway_user="sim-gateway")
        devices.set_service_account(
            conn, username="ingest", role="ingest", password=INGEST_PASSWORD
        )
        conn.commit()
        devices.write_broker_files(conn, password_file=pw_file, acl_file=acl_file)
    broker = Mosquitto(
        tmp_path / "broker", port=free_port(), password_file=pw_file, acl_file=acl_file
    )
    broker.folder.mkdir()
    broker.start()
    log_path = tmp_path / "ingest.log"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PISMAN_", "MQTT_", "INGEST_", "DATABASE_"))
        },
        "DATABASE_URL": db_url,
        "MQTT_URL": f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{broker.port}",
        "INGEST_METRICS_PORT": "0",
        "INGEST_CLIENT_ID": f"ingest-{broker.port}",
        "PISMAN_DATA_DIR": str(tmp_path),
    }
    with log_path.open("wb") as log:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "pisman", "ingest"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    try:
        _wait_for_line(log_path, "ingest_ready", ingest, 30)
        yield Stack(db_url, broker, creds, tmp_path)
    finally:
        ingest.terminate()
        try:
            ingest.wait(10)
        except subprocess.TimeoutExpired:
            ingest.kill()
            ingest.wait(5)
        broker.stop()


def _simulate(stack: Stack, *args: str) -> dict:  # type: ignore[type-arg]
    report = stack.tmp / "report.json"
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("PISMAN_", "MQTT_", "INGEST_", "DATABASE_"))
        },
        "DATABASE_URL": stack.db_url,
        "MQTT_URL": f"mqtt://127.0.0.1:{stack.broker.port}",
        "PISMAN_DATA_DIR": str(stack.tmp),
    }
    cmd = [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", str(TESTVILLE),
           "--credentials", str(stack.credentials), "--mode", "backfill", "--end", END, "--seed", "7",
           "--report", str(report), "--quiet", *args]  # fmt: skip
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )
    assert done.returncode == 0, done.stderr + stack.broker.log_text()
    return json.loads(report.read_text())


STORED_COUNTS = """
SELECT (SELECT count(*) FROM weighing) + (SELECT count(*) FROM bin_reading),
       (SELECT count(*) FROM quarantine)
"""


def _wait_until_stored(db_url: str, readings: int, invalid: int, timeout: float = 60) -> None:
    """Poll until the expected rows are there and nothing more arrives for a moment."""
    deadline = time.monotonic() + timeout
    last, stable_since = None, time.monotonic()
    while time.monotonic() < deadline:
        with psycopg.connect(db_url) as conn:
            counts = conn.execute(STORED_COUNTS).fetchone()
        if counts != last:
            last, stable_since = counts, time.monotonic()
        elif counts == (readings, invalid) and time.monotonic() - stable_since > 1.0:
            return
        elif time.monotonic() - stable_since > 10:
            break
        time.sleep(0.2)
    pytest.fail(f"stored (readings, quarantined) = {last}, expected ({readings}, {invalid})")


SEQS = """
SELECT device_id, array_agg(seq ORDER BY seq) FROM (
  SELECT device_id, seq FROM weighing UNION ALL SELECT device_id, seq FROM bin_reading) r
GROUP BY device_id
"""
QUARANTINED = "SELECT device_id, count(*) FROM quarantine GROUP BY device_id"
# The API's own arithmetic: daily rollups joined to the city's category rules.
CATEGORY_DAYS = """
SELECT (w.bucket AT TIME ZONE 'Asia/Jakarta')::date::text AS day,
       coalesce(sum(w.net_kg * cm.sign) FILTER (WHERE cm.category = 'reduce'), 0),
       coalesce(sum(w.net_kg * cm.sign) FILTER (WHERE cm.category = 'utilize'), 0),
       coalesce(sum(w.net_kg * cm.sign) FILTER (WHERE cm.category = 'residual'), 0),
       coalesce(sum(w.net_kg) FILTER (WHERE cm.separated), 0),
       coalesce(sum(w.net_kg) FILTER (WHERE cm.collected), 0)
FROM weighing_daily w
JOIN site s ON s.site_id = w.site_id
JOIN category_map cm ON cm.city_id = w.city_id AND cm.site_type = s.site_type AND cm.stream = w.stream
                     AND cm.material = w.material AND cm.from_own_site = w.from_own_site
GROUP BY 1 ORDER BY 1
"""
MEASURES = ("reduce", "utilize", "residual", "separate", "collected")


def _nonzero(days: dict[str, dict[str, Decimal]]) -> dict[str, dict[str, Decimal]]:
    return {d: v for d, v in days.items() if any(v.values())}


def test_week_with_every_fault_reconciles_with_what_was_stored_and_quarantined(
    stack: Stack,
) -> None:
    # --batch 1: one reading per message (except store-and-forward flushes), so that
    # duplicates and out-of-order delivery happen often enough in a small city.
    report = _simulate(stack, "--days", "7", "--faults", "all", "--batch", "1")
    faults = report["faults_injected"]
    assert all(
        faults[name] > 0
        for name in ("dup", "reorder", "offline", "malformed", "skew", "noise", "outlier")
    ), faults
    totals = report["totals"]
    assert totals["duplicates_sent"] > 0 and totals["invalid"] > 0
    _wait_until_stored(stack.db_url, totals["valid"], totals["invalid"])

    with psycopg.connect(stack.db_url) as conn:
        stored = {device: list(seqs) for device, seqs in conn.execute(SEQS)}
        quarantined = dict(conn.execute(QUARANTINED).fetchall())
        db_days = {
            row[0]: dict(zip(MEASURES, (Decimal(x) for x in row[1:]), strict=True))
            for row in conn.execute(CATEGORY_DAYS)
        }
    for device_id, counts in report["devices"].items():
        expected = expand_ranges(counts["valid_seq_ranges"])
        got = stored.get(device_id, [])
        assert len(got) == len(set(got)), f"{device_id}: a reading was stored twice"
        assert set(got) == expected, f"{device_id}: stored seqs differ from published"
        assert quarantined.get(device_id, 0) == counts["invalid_total"], (
            f"{device_id}: quarantine differs"
        )
    sim_days = {
        day: {m: Decimal(v[m]) for m in MEASURES}
        for day, v in report["categories_kg_by_local_day"].items()
    }
    assert len(_nonzero(sim_days)) >= 7
    assert _nonzero(db_days) == _nonzero(sim_days)


def test_gateway_mode_publishes_every_device_through_one_account(stack: Stack) -> None:
    report = _simulate(stack, "--days", "1", "--gateway")
    totals = report["totals"]
    assert totals["invalid"] == 0 and totals["duplicates_sent"] == 0
    assert len([d for d in report["devices"].values() if d["valid"] > 0]) >= 8
    _wait_until_stored(stack.db_url, totals["valid"], 0)
