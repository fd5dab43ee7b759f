"""`pisman up`: the stack comes up and a reading published by a device is visible through the API."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pisman.settings import PROJECT_ROOT
from tests.support.broker import free_port

pytestmark = pytest.mark.slow


def _stream_lines(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _wait_for(lines: queue.Queue[str], text: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout} s; output so far:\n{''.join(seen)}")


def test_up_brings_the_stack_up_and_a_published_reading_shows_in_the_api(
    db_url: str, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    api_port, dash_port, mqtt_port = free_port(), free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PISMAN_", "DATABASE_URL", "MQTT_", "API_"))
    }
    env.update(
        DATABASE_URL=db_url,
        PISMAN_DATA_DIR=str(var),
        PISMAN_UP_MQTT_PORT=str(mqtt_port),
        API_PORT=str(api_port),
        DASHBOARD_PORT=str(dash_port),
        INGEST_METRICS_PORT="0",
        PISMAN_CITY_FILE=str(PROJECT_ROOT / "data" / "cities" / "testville.yaml"),
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "up", "--days", "1", "--duration", "240"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_stream_lines, args=(proc, lines), daemon=True).start()
    try:
        _wait_for(lines, "live:", 180, seen)
        key = json.loads((var / "up-state.json").read_text())["dashboard_api_key"]
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}", headers={"X-API-Key": key}, timeout=10
        )
        assert httpx.get(f"http://127.0.0.1:{dash_port}/", timeout=10).status_code == 200

        # A new scale at the landfill gate, provisioned the way an installer would.
        device_env = {
            **env,
            "MOSQUITTO_PASSWORD_FILE": str(var / "mosquitto" / "passwords"),
            "MOSQUITTO_ACL_FILE": str(var / "mosquitto" / "acl"),
            "MOSQUITTO_PID_FILE": str(var / "mosquitto" / "mosquitto.pid"),
        }
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "pisman",
                "devices",
                "add",
                "wb-tpa-e2e",
                "--site",
                "tv-tpa",
                "--kind",
                "weighbridge",
            ],
            env=device_env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        password = next(
            line.split(":", 1)[1].split()[0]
            for line in added.stdout.splitlines()
            if "MQTT password" in line
        )
        time.sleep(0.5)  # the broker re-reads its files on SIGHUP

        # Stamped five days back, before the one-day backfill: a scale flushing its backlog.
        stamped = datetime.now(UTC) - timedelta(days=5)
        day = stamped.astimezone(ZoneInfo("Asia/Jakarta")).date()
        params = {
            "from": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
            "bucket": "day",
            "group_by": "site",
        }

        def site_tonnes() -> float:
            response = api.get("/v1/tonnage", params=params)
            assert response.status_code == 200, response.text
            return sum(r["tonnes"] for r in response.json()["rows"] if r.get("site") == "tv-tpa")

        before = site_tonnes()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="wb-tpa-e2e", protocol=mqtt.MQTTv5
        )
        client.username_pw_set("wb-tpa-e2e", password)
        client.connect("127.0.0.1", mqtt_port)
        client.loop_start()
        reading = {
            "ts": stamped.isoformat(),
            "seq": 1,
            "gross_kg": 13250.0,
            "tare_kg": 6000.0,
            "material": "residual",
            "stream": "to_landfill",
            "vehicle_plate": "D 1234 XY",
        }
        info = client.publish("pisman/v1/tv-tpa/wb-tpa-e2e/weighing", json.dumps(reading), qos=1)
        info.wait_for_publish(10)
        published_at = time.monotonic()
        while time.monotonic() - published_at < 15:
            if abs(site_tonnes() - before - 7.25) < 1e-6:
                break
            time.sleep(0.3)
        client.loop_stop()
        client.disconnect()
        assert site_tonnes() == pytest.approx(before + 7.25, abs=1e-6)
        assert time.monotonic() - published_at < 15
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, "".join(seen)
