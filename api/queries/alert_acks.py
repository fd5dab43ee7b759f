"""Alert occurrence ids, and the acknowledgements kept for them (table alert_ack)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from api.queries.rows import fetch_all, fetch_one

# city.kind.subject.start: the city's id, the alert kind, the device (or, for a site's alert,
# the site) and when the occurrence began, in UTC to the second. Dots never occur in an id part.
ALERT_ID_PATTERN = (
    r"^[a-z0-9][a-z0-9_-]{0,39}\.[a-z][a-z_]{0,31}\.[a-z0-9][a-z0-9_-]{0,63}\.\d{8}T\d{6}Z$"
)
_ALERT_ID = re.compile(ALERT_ID_PATTERN)
STARTED_FORMAT = "%Y%m%dT%H%M%SZ"
# An occurrence whose start no reading tells (should not happen: every alert has one).
UNKNOWN_START = "00010101T000000Z"


def alert_id(city_id: str, kind: str, subject: str, started: datetime | None) -> str:
    """The id of one occurrence: the same for as long as the condition lasts."""
    start = started.astimezone(UTC).strftime(STARTED_FORMAT) if started else UNKNOWN_START
    return f"{city_id}.{kind}.{subject}.{start}"


def alert_city(alert_id: str) -> str | None:
    """The city an id names, or None when the text is not an alert id."""
    return alert_id.split(".", 1)[0] if _ALERT_ID.match(alert_id) else None


@dataclass(frozen=True, slots=True)
class AckRow:
    """A row of alert_ack."""

    alert_id: str
    kind: str
    acknowledged_by: str
    acknowledged_by_name: str
    acknowledged_at: datetime
    note: str | None


LIST_ACKS = """
SELECT alert_id, kind, acknowledged_by, acknowledged_by_name, acknowledged_at, note
FROM alert_ack WHERE city_id = %(city)s AND alert_id = ANY(%(ids)s)
"""


async def acks_for(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, alert_ids: list[str]
) -> dict[str, AckRow]:
    """The acknowledgements of these occurrences of the city, by alert id."""
    if not alert_ids:
        return {}
    rows = await fetch_all(conn, AckRow, LIST_ACKS, {"city": city_id, "ids": alert_ids})
    return {row.alert_id: row for row in rows}


# The first acknowledgement wins; a second (or a concurrent one) inserts nothing.
INSERT_ACK = """
INSERT INTO alert_ack (city_id, alert_id, kind, acknowledged_by, acknowledged_by_name, note)
VALUES (%(city)s, %(id)s, %(kind)s, %(by)s, %(name)s, %(note)s)
ON CONFLICT (city_id, alert_id) DO NOTHING
RETURNING alert_id, kind, acknowledged_by, acknowledged_by_name, acknowledged_at, note
"""
GET_ACK = """
SELECT alert_id, kind, acknowledged_by, acknowledged_by_name, acknowledged_at, note
FROM alert_ack WHERE city_id = %(city)s AND alert_id = %(id)s
"""


async def acknowledge(
    conn: psycopg.AsyncConnection[Any],
    *,
    city_id: str,
    alert_id: str,
    kind: str,
    by: str,
    by_name: str,
    note: str | None,
) -> tuple[AckRow, bool]:
    """Keep the acknowledgement; (the kept row, whether it was there already)."""
    params = {
        "city": city_id,
        "id": alert_id,
        "kind": kind,
        "by": by,
        "name": by_name,
        "note": note,
    }
    created = await fetch_one(conn, AckRow, INSERT_ACK, params)
    if created is not None:
        return created, False
    kept = await fetch_one(conn, AckRow, GET_ACK, params)
    assert kept is not None, "ON CONFLICT DO NOTHING found a row that is not there"
    return kept, True
