"""Simulator behaviour without ingest: determinism, fault switches, provisioning, live publishing, calibration."""

from __future__ import annotations

import json
import stat
import threading
import time
from decimal import Decimal
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pisman import citydata
from pisman.cli import main
from pisman.settings import PROJECT_ROOT
from simulators.devices import city_devices
from simulators.faults import FaultSpecError, parse_faults
from simulators.provision import provision, read_credentials
from simulators.publisher import Account, NullPublisher, Publisher
from simulators.run import RunOptions, Simulator
from tests.support.broker import Mosquitto, free_port

CITIES = PROJECT_ROOT / "data" / "cities"
END_MS = 1_793_466_000_000  # 2026-10-31T17:00:00Z, midnight in Jakarta


def _backfill(city_file: Path, *, seed: int, faults: str = "all", days: float = 3) -> dict:  # type: ignore[type-arg]
    city = citydata.read_city_file(city_file)
    opts = RunOptions(
        mode="backfill",
        seed=seed,
        faults=parse_faults(faults),
        days=days,
        end_ms=END_MS,
        progress=False,
    )
    report = Simulator(city, city_devices(city), NullPublisher(), opts).backfill().to_dict()
    report.pop("elapsed_s")
    return report


def test_same_seed_gives_the_same_report_and_another_seed_does_not() -> None:
    first = _backfill(CITIES / "testville.yaml", seed=3)
    again = _backfill(CITIES / "testville.yaml", seed=3)
    other = _backfill(CITIES / "testville.yaml", seed=4)
    assert first == again
    assert first["categories_kg_by_local_day"] != other["categories_kg_by_local_day"]


def test_cli_dry_run_is_deterministic_under_seed(tmp_path: Path) -> None:
    reports = []
    for name in ("a.json", "b.json"):
        argv = ["simulate", "run", "--city-file", str(CITIES / "testville.yaml"), "--mode", "backfill",
                "--days", "1", "--end", "2026-11-01T00:00:00+07:00", "--seed", "9", "--faults", "dup,noise",
                "--dry-run", "--quiet", "--report", str(tmp_path / name)]  # fmt: skip
        assert main(argv) == 0
        data = json.loads((tmp_path / name).read_text())
        data.pop("elapsed_s")
        reports.append(data)
    assert reports[0] == reports[1]
    assert reports[0]["totals"]["valid"] > 0


def test_unknown_fault_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults("dup,gremlins")
    argv = [
        "simulate",
        "run",
        "--city-file",
        str(CITIES / "testville.yaml"),
        "--faults",
        "gremlins",
        "--dry-run",
    ]
    assert main(argv) == 2
    assert "gremlins" in capsys.readouterr().err


def test_no_faults_means_no_duplicates_no_invalid_payloads_and_no_seq_gaps() -> None:
    report = _backfill(CITIES / "testville.yaml", seed=1, faults="none")
    assert report["totals"]["duplicates_sent"] == 0 and report["totals"]["invalid"] == 0
    assert all(sum(v.values()) == 0 for v in [report["faults_injected"]])
    for d in report["devices"].values():
        assert len(d["valid_seq_ranges"]) <= 1  # one unbroken run per device


def test_bandung_day_is_calibrated_to_the_reported_figures() -> None:
    report = _backfill(CITIES / "bandung.yaml", seed=1, faults="none", days=4)
    days = list(report["categories_kg_by_local_day"].values())[1:-1]  # whole days, trucks settled
    mean = {
        m: sum(Decimal(d[m]) for d in days) / len(days) / 1000
        for m in ("reduce", "utilize", "residual")
    }
    assert 250 <= mean["reduce"] <= 320
    assert 25 <= mean["utilize"] <= 70
    assert 850 <= mean["residual"] <= 1050
    # Reduction sits near the reported 18-20 %, short of the 30 % target.
    assert 0.16 <= mean["reduce"] / 1500 <= 0.22


def test_provisioning_twice_reuses_the_credentials_file(db_url: str, tmp_path: Path) -> None:
    city = citydata.read_city_file(CITIES / "testville.yaml")
    path = tmp_path / "sim" / "creds.json"
    with psycopg.connect(db_url) as conn:
        first = provision(conn, city, credentials_path=path, gateway_user="gw")
        creds1 = read_credentials(path)
        second = provision(conn, city, credentials_path=path, gateway_user="gw")
        creds2 = read_credentials(path)
        count = conn.execute("SELECT count(*) FROM device WHERE city_id = 'testville'").fetchone()
    assert (first.created, first.reused) == (len(city_devices(city)), 0)
    assert (second.created, second.reused, second.rotated) == (0, len(city_devices(city)), 0)
    assert creds1 == creds2 and creds1.gateway is not None
    assert count == (len(city_devices(city)),)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_lost_credentials_file_gets_passwords_rotated(db_url: str, tmp_path: Path) -> None:
    city = citydata.read_city_file(CITIES / "testville.yaml")
    path = tmp_path / "creds.json"
    with psycopg.connect(db_url) as conn:
        provision(conn, city, credentials_path=path, gateway_user=None)
        old = read_credentials(path)
        path.unlink()
        again = provision(conn, city, credentials_path=path, gateway_user=None)
    assert again.rotated == len(city_devices(city))
    assert read_credentials(path).devices != old.devices


def test_accelerated_mode_publishes_live_readings_with_status(db_url: str, tmp_path: Path) -> None:
    """Accelerated mode through a real broker: statuses and readings arrive; the report counts them all."""
    city = citydata.read_city_file(CITIES / "testville.yaml")
    broker = Mosquitto(tmp_path, port=free_port())
    broker.start()
    received: list[str] = []
    lock = threading.Lock()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with lock:
            received.append(msg.topic)

    sub.on_message = on_message
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("pisman/v1/#", qos=1)
    sub.loop_start()
    try:
        devs = city_devices(city)
        pub = Publisher("127.0.0.1", broker.port)
        pub.connect([(Account("sim-gw", "anon", "x"), [d.device_id for d in devs])])
        opts = RunOptions(mode="accelerated", seed=2, faults=frozenset(), speed=3600, duration_s=2.0,
                          end_ms=END_MS, progress=False)  # fmt: skip
        report = Simulator(city, devs, pub, opts).live().to_dict()
        pub.close()
        time.sleep(0.5)
    finally:
        sub.loop_stop()
        broker.stop()
    totals = report["totals"]
    assert totals["valid"] > 0
    assert totals["status_sent"] == 2 * len(devs)  # online at start, offline at the end
    with lock:
        assert len(received) >= totals["messages"]
        assert sum(1 for t in received if t.endswith("/status")) >= 2 * len(devs)


# --- collection modes (issue 12) ----------------------------------------------------------


def _collect(
    city_file: Path, mode: str, *, days: int, seed: int = 1, deterministic: bool = True
) -> tuple[dict, list]:  # type: ignore[type-arg]
    from simulators.behaviour import HOUR_MS, CitySimulation

    city = citydata.read_city_file(city_file)
    sim = CitySimulation(
        city,
        city_devices(city),
        seed=seed,
        bin_interval_s=900,
        collection=mode,
        plan_time_limit_s=1,
        plan_deterministic=deterministic,
    )
    start = END_MS - days * 24 * HOUR_MS
    readings = []
    for h in range(days * 24):
        readings.extend(sim.hour(start + h * HOUR_MS))
    return sim.collection.summary(), readings


def test_default_collection_is_todays_threshold_rule() -> None:
    city = citydata.read_city_file(CITIES / "testville.yaml")
    base = RunOptions(
        mode="backfill", seed=2, faults=parse_faults("none"), days=2, end_ms=END_MS, progress=False
    )
    explicit = RunOptions(
        mode="backfill", seed=2, faults=parse_faults("none"), days=2, end_ms=END_MS, progress=False,
        collection="threshold",
    )  # fmt: skip
    a = Simulator(city, city_devices(city), NullPublisher(), base).backfill().to_dict()
    b = Simulator(city, city_devices(city), NullPublisher(), explicit).backfill().to_dict()
    a.pop("elapsed_s")
    b.pop("elapsed_s")
    assert a == b


def test_planned_trucks_carry_full_loads_within_capacity_and_landfill_hours() -> None:
    plan, readings = _collect(CITIES / "testville.yaml", "plan", days=10)
    threshold, _ = _collect(CITIES / "testville.yaml", "threshold", days=10)
    assert plan["plans"] == 10 and plan["trips"] > 0
    # Each depot portion weighed out by a planned truck fits the truck (10 t), and the gate
    # sees the same plates arrive within its hours.
    planned = [
        r for r in readings
        if r.fields.get("stream") == "to_landfill" and str(r.fields.get("vehicle_plate", "")).endswith("PK")
    ]  # fmt: skip
    assert planned and all(r.net_g <= 10_000_000 for r in planned)
    assert plan["arrivals_outside_hours"] == 0
    # The same waste is collected (its efficiency is measured on Bandung by bench/collection.py:
    # testville's two depots fill ~80 % a day, so a daily plan cannot wait for fuller ones).
    assert plan["collected_t"] == pytest.approx(threshold["collected_t"], rel=0.15)
    again, _ = _collect(CITIES / "testville.yaml", "plan", days=10)
    again.pop("plan_s")
    plan.pop("plan_s")
    assert again == plan  # deterministic under the seed (greedy search)


def test_fixed_rounds_empty_every_depot_daily() -> None:
    fixed, _ = _collect(CITIES / "testville.yaml", "fixed", days=4)
    assert fixed["trips"] == 2 * 4  # two depots, once a day


def test_planned_collection_without_fleet_data_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (CITIES / "testville.yaml").read_text()
    path = tmp_path / "nofleet.yaml"
    path.write_text(text[: text.index("\nfleet:")])
    argv = [
        "simulate",
        "run",
        "--city-file",
        str(path),
        "--collection",
        "plan",
        "--dry-run",
        "--quiet",
    ]
    assert main(argv) == 2
    assert "fleet" in capsys.readouterr().err
