"""Testville's simulator through a real broker and ingest: provisioning, waiting, and reconciling what
was stored and quarantined against the simulator's report."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pisman import citydata, devices
from pisman.settings import PROJECT_ROOT
from simulators.provision import provision
from simulators.report import expand_ranges

TESTVILLE = PROJECT_ROOT / "data" / "cities" / "testville.yaml"
INGEST_PASSWORD = "ingest-test-password"
# Variables our settings read: a child service gets only the ones the test gives it.
_SETTINGS_PREFIXES = ("PISMAN_", "MQTT_", "INGEST_", "DATABASE_", "API_")


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """The simulated devices' credentials and the broker's password and ACL files."""

    credentials: Path
    password_file: Path
    acl_file: Path


def child_env(**values: str) -> dict[str, str]:
    """This process's environment without our settings, plus `values`: for a child service."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(_SETTINGS_PREFIXES)}
    return {**kept, **values}


def provision_testville(db_url: str, folder: Path) -> BrokerFiles:
    """Testville's devices (and a gateway account) plus an `ingest` account in the database; their
    credentials and the broker's password and ACL files written to `folder`."""
    files = BrokerFiles(folder / "creds.json", folder / "passwd", folder / "acl")
    city = citydata.read_city_file(TESTVILLE)
    with psycopg.connect(db_url) as conn:
        provision(conn, city, credentials_path=files.credentials, gateway_user="sim-gateway")
        devices.set_service_account(
            conn, username="ingest", role="ingest", password=INGEST_PASSWORD
        )
        conn.commit()
        devices.write_broker_files(conn, password_file=files.password_file, acl_file=files.acl_file)
    return files


def wait_for_log_line(
    path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float
) -> None:
    """Wait until a process logged `needle` to `path`; fail with its log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    text = path.read_text(errors="replace") if path.exists() else ""
    pytest.fail(f"the process did not log {needle!r} (exit {proc.poll()}):\n{text[-3000:]}")


STORED_COUNTS = """
SELECT (SELECT count(*) FROM weighing) + (SELECT count(*) FROM bin_reading),
       (SELECT count(*) FROM quarantine)
"""


def stored_counts(db_url: str) -> tuple[int, int]:
    """Readings stored and quarantine rows, right now."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute(STORED_COUNTS).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def wait_until_stored(
    db_url: str, readings: int, invalid: int, *, timeout: float = 60, stall_s: float = 10
) -> None:
    """Poll until the expected rows are there and nothing more arrives for a moment; fail when the
    counts stop moving for `stall_s` short of them (or overshoot)."""
    deadline = time.monotonic() + timeout
    last: tuple[int, int] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        counts = stored_counts(db_url)
        if counts != last:
            last, stable_since = counts, time.monotonic()
        elif counts == (readings, invalid) and time.monotonic() - stable_since > 1.0:
            return
        elif time.monotonic() - stable_since > stall_s:
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


def assert_reconciles(db_url: str, report: dict[str, Any], *, min_days: int = 7) -> None:
    """Every device's published seqs stored exactly once, one quarantine row per invalid message,
    and the daily category tonnage equal to the simulator's own."""
    with psycopg.connect(db_url) as conn:
        stored = {device: list(seqs) for device, seqs in conn.execute(SEQS)}
        quarantined: dict[str, int] = dict(conn.execute(QUARANTINED).fetchall())
        db_days = {
            row[0]: dict(zip(MEASURES, (Decimal(x) for x in row[1:]), strict=True))
            for row in conn.execute(CATEGORY_DAYS)
        }
    for device_id, counts in report["devices"].items():
        expected = expand_ranges(counts["valid_seq_ranges"])
        got = stored.get(device_id, [])
        assert len(got) == len(set(got)), f"{device_id}: a reading was stored twice"
        assert set(got) == expected, (
            f"{device_id}: stored seqs differ from published: "
            f"{len(expected - set(got))} missing, {len(set(got) - expected)} unexpected"
        )
        assert quarantined.get(device_id, 0) == counts["invalid_total"], (
            f"{device_id}: quarantine differs"
        )
    sim_days = {
        day: {m: Decimal(v[m]) for m in MEASURES}
        for day, v in report["categories_kg_by_local_day"].items()
    }
    assert len(_nonzero(sim_days)) >= min_days
    assert _nonzero(db_days) == _nonzero(sim_days)
