"""GET /v1/progress's pace (today so far against what is expected by now) and yesterday, on
known seeded days: the city's own history, the declared profile when history is too short,
no expectation without either, a day with no data, a time before the first weighing."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.support.api_seed import CITY, Weighing, api_client, insert_weighings, seed_city

TZ = ZoneInfo("Asia/Jakarta")
DAY = date(2026, 3, 10)  # a Tuesday; its history: 10, 17, 24 February and 3 March
SEQ = count(1)


def at(day: date, hours: float) -> datetime:
    """A local time on a day."""
    return datetime.combine(day, time(0), TZ) + timedelta(hours=hours)


def landfill(day: date, hours: float, tonnes: float) -> list[Weighing]:
    """Trucks of at most 50 t at the landfill gate: residual (and collected) tonnage."""
    left, trucks = Decimal(str(tonnes)) * 1000, []
    while left > 0:
        kg = min(left, Decimal(50_000))
        trucks.append(Weighing(at(day, hours), "tpa-gate", next(SEQ), kg, "mixed", "to_landfill"))
        left -= kg
    return trucks


def deposit(day: date, hours: float, tonnes: float) -> Weighing:
    """Plastic at a waste bank: reduce (and collected) tonnage."""
    kg = Decimal(str(tonnes)) * 1000
    return Weighing(at(day, hours), "bank-coblong", next(SEQ), kg, "plastic", "deposit")


def test_pace_counts_the_day_until_at_against_the_same_weekday_of_four_weeks(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows: list[Weighing] = []
    for weeks in (1, 2, 3, 4):
        past = DAY - timedelta(weeks=weeks)
        # Each history day: 10 t to the landfill at 02:xx, 30 t at 10:xx, 5 t deposited at 09:xx.
        rows += [*landfill(past, 2.5, 10), *landfill(past, 10.25, 30), deposit(past, 9.5, 5)]
    # Another weekday of the same weeks is not this day's history.
    rows += landfill(DAY - timedelta(days=2), 1.0, 500)
    # Yesterday: over the 981 t ceiling.
    rows += landfill(DAY - timedelta(days=1), 12.0, 1000)
    # The day: 300 t before 04:00 (over the pace: 981 t x 25 % = 245.25 t), 20 t later.
    rows += [*landfill(DAY, 1.5, 300), *landfill(DAY, 9.5, 20), deposit(DAY, 3.0, 2)]
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, rows)
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        early = client.get("/v1/progress", params={"date": DAY.isoformat(), "at": "04:00"}).json()
        late = client.get("/v1/progress", params={"date": DAY.isoformat(), "at": "11:00"}).json()
        whole = client.get("/v1/progress", params={"date": DAY.isoformat()}).json()
        day_before = client.get(
            "/v1/progress", params={"date": (DAY - timedelta(days=1)).isoformat()}
        ).json()

    pace = early["pace"]
    assert pace["at"] == "2026-03-10T04:00:00+07:00"
    assert pace["history_days"] == ["2026-02-10", "2026-02-17", "2026-02-24", "2026-03-03"]
    assert pace["profile_source"] is None
    residual = pace["residual"]
    assert residual == {
        "so_far_t": 300.0,
        "day_target_t": 981.0,
        "expected_share": 0.25,  # 10 of the history's 40 t came before 04:00
        "expected_t": 245.25,
        "basis": "history",
        "history_days": 4,
        "ceiling": True,
        "over_ceiling": False,  # 300 t of a 981 t day: not exceeded ...
        "above_pace": True,  # ... but above the 245.25 t expected by 04:00
    }
    collected = pace["collected"]  # landfill 40 t + deposits 5 t a day; 10 t before 04:00
    assert collected["so_far_t"] == 302.0 and collected["day_target_t"] == 1500.0
    assert collected["expected_share"] == round(10 / 45, 4)
    assert collected["expected_t"] == pytest.approx(1500 * 10 / 45, abs=0.001)
    assert collected["ceiling"] is False and collected["over_ceiling"] is None
    reduce = pace["reduce"]  # deposits only at 09:xx in the history: nothing expected by 04:00
    assert (reduce["so_far_t"], reduce["expected_share"], reduce["expected_t"]) == (2.0, 0.0, 0.0)
    # Nothing utilized in the history, and apitown declares no profile: no expectation.
    assert pace["utilize"]["basis"] == "none" and pace["utilize"]["expected_t"] is None
    assert pace["utilize"]["history_days"] == 0

    # By 11:00 every truck of the history (02:xx and 10:xx) has come.
    late_residual = late["pace"]["residual"]
    assert late_residual["so_far_t"] == 320.0
    assert late_residual["expected_share"] == 1.0
    assert late_residual["over_ceiling"] is False and late_residual["above_pace"] is False

    # A past day without `at` is over: its whole target is expected.
    assert whole["pace"]["at"] == "2026-03-11T00:00:00+07:00"
    assert whole["pace"]["residual"]["basis"] == "day_over"
    assert whole["pace"]["residual"]["expected_t"] == 981.0
    assert whole["pace"]["residual"]["so_far_t"] == 320.0
    assert whole["pace"]["residual"]["over_ceiling"] is False
    # The day before sent 1,000 t: its 981 t ceiling exceeded.
    assert day_before["pace"]["residual"]["so_far_t"] == 1000.0
    assert day_before["pace"]["residual"]["over_ceiling"] is True

    yesterday = early["yesterday"]
    assert yesterday["date"] == "2026-03-09" and yesterday["has_data"] is True
    assert yesterday["categories"]["residual"]["tonnes"] == 1000.0
    assert yesterday["residual_ceiling_t"] == 981.0
    assert yesterday["residual_over_ceiling"] is True
    assert yesterday["collected_t"] == 1000.0


def test_without_history_the_declared_profile_sets_the_pace_and_an_empty_day_reads_zero(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        # One history day only (two are needed): the declared profile stands in.
        insert_weighings(
            conn, [*landfill(DAY - timedelta(weeks=1), 2.0, 50), *landfill(DAY, 6.0, 12)]
        )
        conn.execute(
            "INSERT INTO city_pace_profile (city_id, hourly, source) VALUES (%s, %s, %s)",
            (CITY, [0] * 4 + [1] * 16 + [0] * 4, "assumption: weighing 04:00-20:00, evenly"),
        )
        conn.commit()
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        before_first = client.get(
            "/v1/progress", params={"date": DAY.isoformat(), "at": "04:00"}
        ).json()
        later = client.get("/v1/progress", params={"date": DAY.isoformat(), "at": "08:00"}).json()
        future = client.get(
            "/v1/progress", params={"date": (DAY + timedelta(days=400)).isoformat()}
        ).json()

    # 04:00, before the day's first weighing (06:00): nothing so far, nothing expected yet.
    residual = before_first["pace"]["residual"]
    assert (residual["so_far_t"], residual["expected_t"], residual["basis"]) == (
        0.0,
        0.0,
        "city_profile",
    )
    assert residual["history_days"] == 1 and residual["over_ceiling"] is False
    assert before_first["pace"]["profile_source"] == "assumption: weighing 04:00-20:00, evenly"
    # 08:00: 4 of the profile's 16 hours gone.
    residual = later["pace"]["residual"]
    assert residual["so_far_t"] == 12.0 and residual["expected_share"] == 0.25
    assert residual["expected_t"] == 245.25 and residual["over_ceiling"] is False
    assert later["pace"]["collected"]["expected_t"] == 375.0
    # Yesterday weighed nothing: zeros, said so, and not over any ceiling.
    yesterday = later["yesterday"]
    assert yesterday["has_data"] is False and yesterday["collected_t"] == 0.0
    assert yesterday["categories"]["residual"]["tonnes"] == 0.0
    assert yesterday["residual_over_ceiling"] is False
    # A day not begun expects nothing.
    assert future["pace"]["residual"]["basis"] == "day_not_begun"
    assert future["pace"]["residual"]["expected_t"] == 0.0


def test_today_without_at_is_paced_by_the_clock_and_a_bad_at_is_a_422(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        conn.execute(
            "INSERT INTO city_pace_profile (city_id, hourly, source) VALUES (%s, %s, %s)",
            (CITY, [1] * 24, "assumption: evenly over the day"),
        )
        conn.execute("DELETE FROM target WHERE city_id = %s AND metric = 'residual_t'", (CITY,))
        conn.commit()
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        before = datetime.now(TZ)
        body = client.get("/v1/progress").json()
        after = datetime.now(TZ)
        refused = {
            bad: client.get("/v1/progress", params={"at": bad})
            for bad in ("25:00", "04:30", "4:00", "-1:00", "noon", "04:00:00", "２４:00")
        }
    pace = body["pace"]
    moment = datetime.fromisoformat(pace["at"])
    assert before.replace(microsecond=0) <= moment <= after
    share = pace["residual"]["expected_share"]
    hours = lambda t: t.hour + t.minute / 60 + t.second / 3600  # noqa: E731
    if before.date() == after.date():  # not across midnight
        assert hours(before) / 24 - 0.001 <= share <= hours(after) / 24 + 0.001
    # Without a residual target the ceiling is the landfill quota per day (13,738 t / 14 days).
    assert pace["residual"]["day_target_t"] == round(13738 / 14, 3)
    assert body["yesterday"]["residual_ceiling_t"] == round(13738 / 14, 3)
    for bad, response in refused.items():
        assert response.status_code == 422, bad
        assert "'at' must be a whole local hour" in response.json()["detail"], bad
