"""A server that drops the API's session between the route's last query and its commit."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime

import httpx
import psycopg
from psycopg import sql

from pisman import keys
from pisman.settings import Settings
from tests.support.api_seed import CITY, insert_weighings, random_weighings, seed_city
from tests.support.api_server import running_api

READS = (
    "/v1/progress?date=2026-03-05",
    "/v1/tonnage?from=2026-03-01&to=2026-03-08&bucket=day&group_by=category,district",
    "/v1/sites",
    "/v1/meta",
)


def test_a_session_lost_after_the_last_query_answers_503_not_a_broken_response(
    db_url: str,
) -> None:
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn,
            random_weighings(
                random.Random(3), datetime.fromisoformat("2026-03-01T00:00:00+07:00"), 7, 4
            ),
        )
        key = keys.create_key(conn, role="admin", name="lost-session")
        # The server ends any session idle in a transaction for 1 ms: between the route's
        # queries, or after its last one and before the commit that ends the request.
        dbname = conn.info.dbname
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET idle_in_transaction_session_timeout = 1").format(
                sql.Identifier(dbname)
            )
        )
    settings = Settings(DATABASE_URL=db_url, PISMAN_CITY=CITY, API_RATE_LIMIT_PER_MIN=100_000)  # type: ignore[call-arg]
    answers: Counter[str] = Counter()
    with (
        running_api(settings) as base,
        httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client,
    ):
        for i in range(160):
            path = READS[i % len(READS)]
            try:
                answers[str(client.get(path).status_code)] += 1
            except httpx.TransportError as exc:  # a response reset after it had started
                answers[type(exc).__name__] += 1
    assert set(answers) <= {"200", "503"}, answers
    assert answers["503"] > 0, f"the server never dropped a session: {answers}"
