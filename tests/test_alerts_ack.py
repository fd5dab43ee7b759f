"""GET /v1/alerts (fire, tilt, lid open, bin full, silent, low battery, organic at landfill: a fire
first, then newest) and acknowledging one occurrence: who and when kept, a new occurrence alerts
again, every bad acknowledgement a 4xx with a message."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from pisman import keys, users
from tests.support.api_seed import CITY, Weighing, api_client, insert_weighings, seed_city

PASSWORD = "Sampah-Bandung-2026"
NOW = datetime.now(UTC).replace(microsecond=0)


def reading(
    conn: psycopg.Connection,
    device_id: str,
    minutes_ago: float,
    fill: float,
    *,
    seq: int,
    fire: bool = False,
    tilt: bool = False,
    lid_open: bool = False,
    battery: float | None = 90,
) -> datetime:
    """One bin reading as ingest stores it, the device heard just now; returns its time."""
    ts = NOW - timedelta(minutes=minutes_ago)
    site = conn.execute("SELECT site_id FROM device WHERE device_id = %s", (device_id,)).fetchone()
    assert site is not None
    conn.execute(
        "INSERT INTO bin_reading (ts, city_id, site_id, device_id, seq, fill_ratio, battery_pct,"
        " fire, tilt, lid_open) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (ts, CITY, site[0], device_id, seq, fill, battery, fire, tilt, lid_open),
    )
    conn.execute(
        "INSERT INTO device_state (device_id, city_id, last_seen_at, last_reading_ts, last_seq,"
        " connection, battery_pct, fill_ratio) VALUES (%s, %s, now(), %s, %s, 'online', %s, %s)"
        " ON CONFLICT (device_id) DO UPDATE SET last_seen_at = now(),"
        " last_reading_ts = greatest(device_state.last_reading_ts, EXCLUDED.last_reading_ts),"
        " battery_pct = coalesce(EXCLUDED.battery_pct, device_state.battery_pct),"
        " fill_ratio = EXCLUDED.fill_ratio",
        (device_id, CITY, ts, seq, battery, fill),
    )
    conn.commit()
    return ts


def started(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@pytest.fixture
def world(db_url: str) -> dict[str, datetime]:
    """Four bins: a fire (since 20 min), a tipped bin with a low battery, an open lid, a bin
    emptied and full again; the onset of each condition by name."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn, bins=4)
        conn.execute("INSERT INTO city (city_id, name) VALUES ('othertown', 'Othertown')")
        users.add_user(conn, username="vina", password=PASSWORD, role="viewer")
        users.add_user(conn, username="oscar", password=PASSWORD, role="viewer", cities=[CITY])
        reading(conn, "bin-000", 30, 0.40, seq=1)
        fire = reading(conn, "bin-000", 20, 0.40, seq=2, fire=True)
        reading(conn, "bin-000", 10, 0.45, seq=3, fire=True)
        reading(conn, "bin-001", 25, 0.30, seq=1, battery=30)
        tilt = reading(conn, "bin-001", 15, 0.30, seq=2, tilt=True, battery=12)
        reading(conn, "bin-001", 5, 0.30, seq=3, tilt=True, battery=None)
        reading(conn, "bin-002", 8, 0.20, seq=1)
        lid = reading(conn, "bin-002", 3, 0.20, seq=2, lid_open=True)
        reading(conn, "bin-003", 40, 0.95, seq=1)
        reading(conn, "bin-003", 30, 0.05, seq=2)  # emptied: the next full run is new
        full = reading(conn, "bin-003", 12, 0.85, seq=3)
        reading(conn, "bin-003", 2, 0.90, seq=4)
    return {"fire": fire, "tilt": tilt, "lid": lid, "full": full, "battery": tilt}


def login(client: Any, username: str) -> dict[str, str]:
    r = client.post(
        "/v1/auth/login",
        json={"username": username, "password": PASSWORD},
        headers={"X-API-Key": ""},
    )
    assert r.status_code == 200, r.text
    return {"X-API-Key": "", "Authorization": f"Bearer {r.json()['token']}"}


def by_kind(alerts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {a["kind"]: a for a in alerts}


def test_each_bin_condition_alerts_from_the_start_of_its_run_fire_first_then_newest(
    db_url: str, world: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        alerts = client.get("/v1/alerts").json()
    kinds = by_kind(alerts)
    assert [(a["kind"], a["device_id"]) for a in alerts] == [
        ("fire", "bin-000"),
        ("bin_full", "bin-003"),  # warnings, newest first: full since 12 min, tilt since 15
        ("tilt", "bin-001"),
        ("lid_open", "bin-002"),  # info, newest first
        ("low_battery", "bin-001"),
    ]
    assert [a["severity"] for a in alerts] == ["critical", "warning", "warning", "info", "info"]
    for kind, onset, device in (
        ("fire", world["fire"], "bin-000"),
        ("tilt", world["tilt"], "bin-001"),
        ("lid_open", world["lid"], "bin-002"),
        ("bin_full", world["full"], "bin-003"),
        ("low_battery", world["battery"], "bin-001"),
    ):
        alert = kinds[kind]
        assert datetime.fromisoformat(alert["since"]) == onset, kind
        assert alert["since"].endswith("+07:00")
        assert alert["alert_id"] == f"{CITY}.{kind}.{device}.{started(onset)}"
        assert alert["acknowledged_by"] is None and alert["acknowledged_at"] is None
    assert "terguling" in kinds["tilt"]["message_id"] and "tipped" in kinds["tilt"]["message_en"]
    assert "terbuka" in kinds["lid_open"]["message_id"]


def test_fire_comes_before_newer_critical_alerts_and_ids_stay_while_a_fire_burns(
    db_url: str, world: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        reading(conn, "bin-002", 1, 0.20, seq=3, lid_open=True, battery=3)  # critical, newer
        insert_weighings(  # organic waste at the landfill today: critical, since midnight
            conn,
            [
                Weighing(
                    NOW - timedelta(minutes=1), "tpa-gate", 1, Decimal(500), "food", "to_landfill"
                )
            ],
        )
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        first = client.get("/v1/alerts").json()
        with psycopg.connect(db_url) as conn:
            reading(conn, "bin-000", 0.5, 0.50, seq=4, fire=True)  # still burning
        second = client.get("/v1/alerts").json()
    critical = [(a["kind"], a["severity"]) for a in first if a["severity"] == "critical"]
    assert critical[0] == ("fire", "critical") and len(critical) == 3
    assert {k for k, _ in critical} == {"fire", "low_battery", "organic_at_landfill"}
    assert [a["alert_id"] for a in first] == [a["alert_id"] for a in second]


def test_acknowledge_keeps_the_first_who_and_when_and_a_new_occurrence_alerts_again(
    db_url: str, world: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(db_url, monkeypatch, role="viewer") as (client, key):
        vina = login(client, "vina")
        fire = by_kind(client.get("/v1/alerts").json())["fire"]
        ack = client.post(
            f"/v1/alerts/{fire['alert_id']}/ack", json={"note": " Damkar dikirim "}, headers=vina
        )
        again = client.post(f"/v1/alerts/{fire['alert_id']}/ack")  # the API key, later
        listed = by_kind(client.get("/v1/alerts").json())["fire"]
        open_only = client.get("/v1/alerts", params={"acknowledged": "false"}).json()
        done_only = client.get("/v1/alerts", params={"acknowledged": "true"}).json()
        tilt = by_kind(open_only)["tilt"]
        by_key = client.post(f"/v1/alerts/{tilt['alert_id']}/ack")  # no body at all

        with psycopg.connect(db_url) as conn:  # the fire is out, then another starts
            reading(conn, "bin-000", 0.8, 0.50, seq=4)
            rekindled = reading(conn, "bin-000", 0.4, 0.50, seq=5, fire=True)
        new_fire = by_kind(client.get("/v1/alerts").json())["fire"]
        old = client.post(f"/v1/alerts/{fire['alert_id']}/ack", headers=vina)
    assert ack.status_code == 200, ack.text
    body = ack.json()
    assert body["acknowledged_by"] == "vina" and body["already_acknowledged"] is False
    assert body["note"] == "Damkar dikirim" and body["kind"] == "fire"
    assert abs(datetime.fromisoformat(body["acknowledged_at"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert again.status_code == 200, again.text
    assert again.json()["already_acknowledged"] is True
    assert {k: again.json()[k] for k in ("acknowledged_by", "acknowledged_at", "note")} == {
        k: body[k] for k in ("acknowledged_by", "acknowledged_at", "note")
    }
    assert (
        listed["acknowledged_by"] == "vina" and listed["acknowledged_at"] == body["acknowledged_at"]
    )
    assert listed["acknowledged_by_name"] == "vina" and listed["ack_note"] == "Damkar dikirim"
    assert "fire" not in by_kind(open_only) and [a["kind"] for a in done_only] == ["fire"]
    assert by_key.status_code == 200
    assert by_key.json()["acknowledged_by"] == f"key {keys.split_key(key)}"
    assert by_key.json()["note"] is None
    assert new_fire["alert_id"] == f"{CITY}.fire.bin-000.{started(rekindled)}"
    assert new_fire["alert_id"] != fire["alert_id"] and new_fire["acknowledged_by"] is None
    assert old.status_code == 404 and "may have ended" in old.json()["detail"]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("SELECT city_id, kind, acknowledged_by FROM alert_ack").fetchall()
    assert sorted(rows) == [(CITY, "fire", "vina"), (CITY, "tilt", f"key {keys.split_key(key)}")]


BAD_IDS = [
    "nope",
    "apitown.fire.bin-000",
    "apitown.fire.bin-000.2026-11-26T02:15:00Z",
    "apitown.FIRE.bin-000.20261126T021500Z",
    "apitown.fire.bin 000.20261126T021500Z",
    "apitown.fire..20261126T021500Z",
    "a" * 300,
    "apitown.fire.bin-000.20261126T021500Z%00",
    "%E2%80%AE",
]


def test_bad_acknowledgements_get_a_4xx_with_a_message_never_a_500(
    db_url: str, world: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        other_key = keys.create_key(conn, role="viewer", name="other", city_id="othertown")
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        fire = by_kind(client.get("/v1/alerts").json())["fire"]["alert_id"]
        ended = fire[: -len("20261126T021500Z")] + "20200101T000000Z"
        answers = {
            f"malformed {bad!r}": (client.post(f"/v1/alerts/{bad}/ack"), 422) for bad in BAD_IDS
        }
        answers["unknown"] = (client.post(f"/v1/alerts/{ended}/ack"), 404)
        answers["other city"] = (
            client.post(f"/v1/alerts/{fire.replace(CITY, 'othertown', 1)}/ack"),
            404,
        )
        answers["same id asked in another city"] = (
            client.post(f"/v1/alerts/{fire}/ack", params={"city": "othertown"}),
            404,
        )
        oscar = login(client, "oscar")  # limited to apitown
        answers["user limited to another city"] = (
            client.post(
                f"/v1/alerts/{fire.replace(CITY, 'othertown', 1)}/ack",
                params={"city": "othertown"},
                headers=oscar,
            ),
            403,
        )
        answers["key limited to another city"] = (
            client.post(f"/v1/alerts/{fire}/ack", headers={"X-API-Key": other_key}),
            403,
        )
        answers["no key"] = (client.post(f"/v1/alerts/{fire}/ack", headers={"X-API-Key": ""}), 401)
        for name, body in (
            ("note too long", {"note": "x" * 501}),
            ("note with NUL", {"note": "api\x00"}),
            ("note with escape", {"note": "\x1b[31m"}),
            ("note not text", {"note": 5}),
            ("unknown field", {"note": "ok", "by": "admin"}),
            ("body a list", ["x"]),
        ):
            answers[name] = (client.post(f"/v1/alerts/{fire}/ack", json=body), 422)
        answers["lone surrogate"] = (
            client.post(
                f"/v1/alerts/{fire}/ack",
                content=b'{"note": "\\ud800"}',
                headers={"Content-Type": "application/json"},
            ),
            422,
        )
        answers["not json"] = (
            client.post(
                f"/v1/alerts/{fire}/ack",
                content=b"{not json",
                headers={"Content-Type": "application/json"},
            ),
            422,
        )
        still_open = by_kind(client.get("/v1/alerts").json())["fire"]
    problems = {
        name: (r.status_code, r.text[:200])
        for name, (r, expected) in answers.items()
        if r.status_code != expected or not r.json().get("detail")
    }
    assert not problems, problems
    assert still_open["acknowledged_at"] is None  # nothing above acknowledged it
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM alert_ack").fetchone() == (0,)


def test_a_runs_start_is_remembered_until_a_reading_ends_the_run(
    db_url: str, world: dict[str, datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        client.get("/v1/alerts")
        with psycopg.connect(db_url) as conn:
            remembered = conn.execute(
                "SELECT condition, since FROM alert_onset WHERE device_id = 'bin-000'"
            ).fetchall()
            # Pretend the run began earlier: the remembered start is what the API now answers.
            conn.execute(
                "UPDATE alert_onset SET since = since - interval '1 hour'"
                " WHERE device_id = 'bin-000' AND condition = 'fire'"
            )
            conn.commit()
        earlier = by_kind(client.get("/v1/alerts").json())["fire"]
        with psycopg.connect(db_url) as conn:  # out, then burning again: a new run
            reading(conn, "bin-000", 0.8, 0.50, seq=4)
            again = reading(conn, "bin-000", 0.4, 0.50, seq=5, fire=True)
        after = by_kind(client.get("/v1/alerts").json())["fire"]
        with psycopg.connect(db_url) as conn:
            now_remembered = conn.execute(
                "SELECT since FROM alert_onset WHERE device_id = 'bin-000' AND condition = 'fire'"
            ).fetchall()
    assert remembered == [("fire", world["fire"])]
    assert datetime.fromisoformat(earlier["since"]) == world["fire"] - timedelta(hours=1)
    assert datetime.fromisoformat(after["since"]) == again and now_remembered == [(again,)]


def test_only_the_conditions_that_hold_are_looked_up_and_remembered(
    db_url: str, world: dict[str, datetime]
) -> None:
    """bin_onsets walks a bin's history only for what the caller says holds now: bin-001's
    battery was low (12 %) in a reading before one without a level, but asked only about its
    tilt, that is all it answers and keeps; an unknown condition is refused."""
    from api.queries.alert_onsets import bin_onsets

    async def ask(ongoing: dict[str, set[str]]) -> Any:
        async with await psycopg.AsyncConnection.connect(db_url) as conn:
            return await bin_onsets(conn, city_id=CITY, ongoing=ongoing)

    onsets = asyncio.run(ask({"bin-001": {"tilt"}, "bin-002": set()}))
    assert set(onsets) == {"bin-001"}
    assert onsets["bin-001"].tilt_since == world["tilt"]
    assert onsets["bin-001"].battery_low_since is None and onsets["bin-001"].fire_since is None
    with psycopg.connect(db_url) as conn:
        kept = conn.execute("SELECT device_id, condition FROM alert_onset").fetchall()
    assert kept == [("bin-001", "tilt")]
    both = asyncio.run(ask({"bin-001": {"tilt", "battery_low"}}))["bin-001"]
    assert both.tilt_since == world["tilt"] and both.battery_low_since == world["battery"]
    with pytest.raises(ValueError, match="smoke"):
        asyncio.run(ask({"bin-001": {"smoke"}}))
