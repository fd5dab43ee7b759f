"""The API tests' seeding helper (tests/support/api_seed.py) keeps the rollups equal to raw rows."""

from __future__ import annotations

import random
from datetime import datetime

import psycopg

from tests.support.api_seed import insert_weighings, random_weighings, seed_city


def test_seeded_rollups_equal_raw_weighings(db_url: str) -> None:
    """The helper's rollup refresh leaves weighing_daily equal to the raw rows (the tests rely on it)."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        rows = random_weighings(
            random.Random(1), datetime.fromisoformat("2026-03-01T10:00:00+00:00"), 30, 5
        )
        insert_weighings(conn, rows)
        raw = conn.execute("SELECT sum(net_kg) FROM weighing").fetchone()
        daily = conn.execute("SELECT sum(net_kg) FROM weighing_daily").fetchone()
    assert raw is not None and daily is not None
    assert raw[0] == daily[0] == sum(w.net_kg for w in rows)
