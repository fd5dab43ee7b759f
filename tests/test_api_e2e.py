"""End to end: readings published over MQTT, stored by the real ingest service, read back from the API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from pisman.settings import PROJECT_ROOT
from tests.support.api_seed import api_client, seed_city

TOPIC = "pisman/v1/{site}/scale-{site}/weighing"


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM weighing").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.slow
def test_weighings_published_over_mqtt_come_out_of_the_api_per_wib_day(
    db_url, broker, monkeypatch, tmp_path
):
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PISMAN_", "DATABASE_URL", "MQTT_", "INGEST_"))
    }
    env.update(
        {
            "DATABASE_URL": db_url,
            "MQTT_URL": f"mqtt://127.0.0.1:{broker.port}",
            "PISMAN_CITY": "apitown",
            "INGEST_CLIENT_ID": f"ingest-api-e2e-{broker.port}",
            "INGEST_METRICS_PORT": "0",
            "INGEST_FLUSH_MS": "20",
        }
    )
    log = (tmp_path / "ingest.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "ingest"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="api-e2e-pub", protocol=mqtt.MQTTv5)
    pub.connect("127.0.0.1", broker.port)
    pub.loop_start()
    try:
        # Two days ago, both sides of 17:00 UTC (00:00 WIB): the first load is the evening before.
        boundary = (datetime.now(UTC) - timedelta(days=2)).replace(
            hour=17, minute=0, second=0, microsecond=0
        )
        loads = [
            (boundary - timedelta(seconds=1), "tpa-gate", 7000),
            (boundary, "tpa-gate", 5000),
            (boundary + timedelta(hours=1), "tpa-gate", 3000),
            (boundary + timedelta(hours=2), "bank-coblong", 12),
        ]
        payloads = [
            (
                TOPIC.format(site=site),
                {
                    "ts": ts.isoformat().replace("+00:00", "Z"),
                    "seq": i + 1,
                    "net_kg": kg,
                    "material": "plastic" if site.startswith("bank") else "mixed",
                    "stream": "deposit" if site.startswith("bank") else "to_landfill",
                },
            )
            for i, (ts, site, kg) in enumerate(loads)
        ]
        # Resend the first reading until ingest has subscribed and stored it (dedupe makes resends harmless).
        deadline = time.monotonic() + 30
        while _count(db_url) == 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(
                    f"ingest stored nothing: {(tmp_path / 'ingest.log').read_text()[-2000:]}"
                )
            pub.publish(payloads[0][0], json.dumps(payloads[0][1]), qos=1).wait_for_publish(5)
            time.sleep(0.3)
        for topic, body in payloads[1:]:
            pub.publish(topic, json.dumps(body), qos=1).wait_for_publish(5)
        while _count(db_url) < len(payloads):
            assert time.monotonic() < deadline, (tmp_path / "ingest.log").read_text()[-2000:]
            time.sleep(0.1)
    finally:
        pub.loop_stop()
        pub.disconnect()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

    wib_day_before = (boundary + timedelta(hours=7) - timedelta(seconds=1)).date()
    wib_day = (boundary + timedelta(hours=7)).date()
    assert wib_day == wib_day_before + timedelta(days=1)
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        body = client.get(
            "/v1/tonnage",
            params={
                "from": wib_day_before.isoformat(),
                "to": (wib_day + timedelta(days=1)).isoformat(),
            },
        ).json()
    got = {(r["bucket_start"][:10], r["category"]): r["tonnes"] for r in body["rows"]}
    assert got == {
        (wib_day_before.isoformat(), "residual"): 7.0,
        (wib_day.isoformat(), "residual"): 8.0,
        (wib_day.isoformat(), "reduce"): 0.012,
        (wib_day.isoformat(), "separate"): 0.012,
    }
