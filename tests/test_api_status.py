"""Progress, bins, devices, alerts and administration endpoints."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from tests.support.api_seed import (
    Weighing,
    api_client,
    insert_bin_reading,
    insert_weighings,
    seed_city,
)


def test_progress_compares_day_and_month_with_targets_and_generation(db_url, monkeypatch):
    day = datetime.fromisoformat("2026-03-10T02:00:00+00:00")  # 09:00 WIB on 10 March
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn,
            [
                Weighing(
                    day, "tpa-gate", 1, Decimal("300000") / 10, "mixed", "to_landfill"
                ),  # 30 t residual
                Weighing(
                    day, "tpa-gate", 2, Decimal("6000"), "food", "to_landfill"
                ),  # 6 t organic at landfill
                Weighing(
                    day, "bank-coblong", 3, Decimal("15000"), "plastic", "deposit"
                ),  # 15 t reduce, separated
                Weighing(
                    day, "tps3r-compost", 4, Decimal("9000"), "food", "to_processing"
                ),  # 9 t utilize, separated
                Weighing(
                    day, "tps3r-compost", 5, Decimal("1000"), "residual", "to_landfill"
                ),  # -1 t utilize
                Weighing(
                    day - timedelta(days=5), "tpa-gate", 6, Decimal("20000"), "mixed", "to_landfill"
                ),
                # 16:59 UTC on 10 March is 23:59 WIB on 10 March; 17:00 UTC is already 11 March.
                Weighing(
                    datetime.fromisoformat("2026-03-10T16:59:00+00:00"),
                    "tpa-gate",
                    7,
                    Decimal("1000"),
                    "mixed",
                    "to_landfill",
                ),
                Weighing(
                    datetime.fromisoformat("2026-03-10T17:00:00+00:00"),
                    "tpa-gate",
                    8,
                    Decimal("50000"),
                    "mixed",
                    "to_landfill",
                ),
            ],
        )
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        body = client.get("/v1/progress", params={"date": "2026-03-10", "trend_days": 7}).json()
    d = body["day"]
    assert d["categories"]["residual"]["tonnes"] == 37.0
    assert d["categories"]["reduce"] == {
        "tonnes": 15.0,
        "target_t": 450.0,
        "share_of_generation": 0.01,
    }
    assert d["categories"]["utilize"]["tonnes"] == 8.0
    assert d["categories"]["separate"]["tonnes"] == 24.0
    assert d["collected_t"] == 61.0  # bank 15 + facility 9 + landfill 37
    assert d["categories"]["separate"]["share_of_collected"] == round(24 / 61, 4)
    assert d["diverted_t"] == 23.0 and d["diverted_share"] == round(23 / 1500, 4)
    m = body["month_to_date"]
    assert (m["from"], m["to"], m["days"]) == ("2026-03-01", "2026-03-11", 10)
    assert m["categories"]["residual"]["tonnes"] == 57.0
    assert m["categories"]["reduce"]["target_t"] == 4500.0
    assert m["projection"]["residual"] == pytest.approx(57.0 / 10 * 31, abs=0.001)
    assert [t["date"] for t in body["trend"]] == [f"2026-03-{d:02d}" for d in range(4, 11)]
    assert body["trend"][1]["residual"] == 20.0 and body["trend"][-1]["residual"] == 37.0
    q = body["landfill_quota"]
    assert (q["quota_t"], q["period_days"], q["window_start"], q["used_t"]) == (
        13738.0,
        14,
        "2026-02-25",
        57.0,
    )
    assert body["organic_at_landfill_t"] == 6.0
    assert body["kbs"] == {"count": 1, "target": 700}
    assert body["generation_t_per_day"] == 1500.0


def test_bins_needing_collection_and_alerts_for_full_silent_and_low_battery(db_url, monkeypatch):
    now = datetime.now(UTC).replace(microsecond=0)
    with psycopg.connect(db_url) as conn:
        seed_city(conn, bins=3)
        insert_bin_reading(conn, "bin-000", now - timedelta(minutes=2), 0.91, battery_pct=80)
        insert_bin_reading(conn, "bin-001", now - timedelta(minutes=3), 0.30, battery_pct=12)
        insert_bin_reading(
            conn, "bin-002", now - timedelta(hours=2), 0.50, battery_pct=70, fire=True
        )
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        bins = client.get("/v1/bins").json()
        full = client.get("/v1/bins", params={"needs_collection": "true"}).json()
        offline = client.get(
            "/v1/devices", params={"status": "offline", "kind": "bin_sensor"}
        ).json()
        device = client.get("/v1/devices/bin-001").json()
        alerts = client.get("/v1/alerts").json()
        missing = client.get("/v1/devices/nope")
        site = client.get("/v1/sites/tps-coblong").json()
    assert [b["device_id"] for b in bins] == ["bin-000", "bin-002", "bin-001"]
    assert [b["device_id"] for b in full] == ["bin-000"] and full[0]["fill_pct"] == 91.0
    assert [d["device_id"] for d in offline] == ["bin-002"]  # silent for 2 h > 3 × 5 min
    assert device["status"] == "online" and device["battery_pct"] == 12.0
    kinds = {(a["kind"], a["device_id"]) for a in alerts}
    assert {
        ("bin_full", "bin-000"),
        ("device_silent", "bin-002"),
        ("low_battery", "bin-001"),
        ("fire", "bin-002"),
    } <= kinds
    assert alerts[0]["severity"] == "critical"
    assert all(a["message_id"] and a["message_en"] for a in alerts)
    assert missing.status_code == 404
    assert site["devices"] == len(site["device_list"]) == 3


def test_admin_provisions_a_device_edits_a_site_and_sets_a_target(db_url, monkeypatch):
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    with api_client(db_url, monkeypatch, role="admin") as (client, _):
        r = client.post(
            "/v1/devices",
            json={"device_id": "bin-new", "site_id": "tps-coblong", "kind": "bin_sensor"},
        )
        again = client.post(
            "/v1/devices",
            json={"device_id": "bin-new", "site_id": "tps-coblong", "kind": "bin_sensor"},
        )
        nosite = client.post(
            "/v1/devices", json={"device_id": "bin-x", "site_id": "nowhere", "kind": "bin_sensor"}
        )
        patched = client.patch(
            "/v1/sites/tps-coblong", json={"name": "TPS Coblong Baru", "active": False}
        )
        target = client.put(
            "/v1/targets/generation_t",
            json={
                "value": 1600,
                "period_days": 1,
                "valid_from": "2026-01-01",
                "source": "Perwal 2026",
            },
        )
        progress = client.get("/v1/progress", params={"date": "2026-03-01", "trend_days": 1}).json()
        listed = client.get("/v1/devices/bin-new").json()
    assert r.status_code == 201 and r.json()["mqtt_password"]
    assert again.status_code == 409 and nosite.status_code == 422
    assert patched.json()["name"] == "TPS Coblong Baru" and patched.json()["active"] is False
    assert target.status_code == 200 and progress["generation_t_per_day"] == 1600.0
    assert listed["status"] == "never_seen"
    from pisman.devices import verify_password

    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT password_hash FROM device WHERE device_id = 'bin-new'"
        ).fetchone()
    assert row is not None and verify_password(r.json()["mqtt_password"], row[0])


def test_quarantined_message_can_be_sent_back_for_reprocessing_once(db_url, monkeypatch):
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        qid = conn.execute(
            "INSERT INTO quarantine (city_id, topic, payload, reason, site_id, device_id, kind)"
            " VALUES ('apitown', 'pisman/v1/tpa-gate/scale-tpa-gate/weighing', %s, 'net_kg: must be <= 60000',"
            " 'tpa-gate', 'scale-tpa-gate', 'weighing') RETURNING quarantine_id",
            (b'{"net_kg": 70000}',),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO quarantine (city_id, topic, payload, reason, status) VALUES ('apitown', 't', 'x', 'old', 'discarded')"
        )
        conn.commit()
    with api_client(db_url, monkeypatch, role="admin") as (client, _):
        listed = client.get("/v1/quarantine", params={"status": "new"}).json()
        r = client.post(f"/v1/quarantine/{qid}/reprocess")
        discarded = client.post(f"/v1/quarantine/{qid + 1}/reprocess")
        missing = client.post("/v1/quarantine/999999/reprocess")
    assert [q["quarantine_id"] for q in listed] == [qid] and '"net_kg": 70000' in listed[0][
        "payload"
    ]
    assert r.status_code == 200 and r.json()["status"] == "retry"
    assert discarded.status_code == 409 and missing.status_code == 404
    with psycopg.connect(db_url) as conn:
        assert conn.execute(
            "SELECT status FROM quarantine WHERE quarantine_id = %s", (qid,)
        ).fetchone() == ("retry",)


def test_readyz_reports_an_unreachable_broker_and_metrics_count_requests(
    db_url, monkeypatch, broker
):
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    with api_client(db_url, monkeypatch) as (client, _):
        down = client.get("/readyz")
        client.app.state.settings = client.app.state.settings.model_copy(
            update={"MQTT_URL": f"mqtt://127.0.0.1:{broker.port}"}
        )
        up = client.get("/readyz")
        client.get("/v1/meta")
        metrics = client.get("/metrics").text
    assert down.status_code == 503 and down.json()["checks"]["database"] == "ok"
    assert up.status_code == 200, up.text
    assert 'pisman_api_requests_total{method="GET",route="/v1/meta",status="200"} 1.0' in metrics
