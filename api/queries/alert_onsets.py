"""When each ongoing bin condition began: the first reading of its current unbroken run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from api.queries.rows import fetch_all
from pisman.domain import DeviceKind

# Below this battery level a device alerts (info); below the critical level, critically.
LOW_BATTERY_PCT = 20
CRITICAL_BATTERY_PCT = 5

# A condition over a bin reading `r` (its device's threshold is n.threshold) and the reading
# that ends it. A reading without a battery level neither starts nor ends a battery run.
CONDITIONS: dict[str, tuple[str, str]] = {
    "fire": ("{r}.fire", "NOT {r}.fire"),
    "tilt": ("{r}.tilt", "NOT {r}.tilt"),
    "lid_open": ("{r}.lid_open", "NOT {r}.lid_open"),
    "full": ("{r}.fill_ratio >= n.threshold", "{r}.fill_ratio < n.threshold"),
    "battery_low": (
        f"{{r}}.battery_pct < {LOW_BATTERY_PCT:d}",
        f"{{r}}.battery_pct >= {LOW_BATTERY_PCT:d}",
    ),
    "battery_critical": (
        f"{{r}}.battery_pct < {CRITICAL_BATTERY_PCT:d}",
        f"{{r}}.battery_pct >= {CRITICAL_BATTERY_PCT:d}",
    ),
}


def _onset(name: str) -> str:
    """The first reading meeting the condition after the last one that did not (a run's start).

    Remembered in alert_onset (sql/056): while no reading after the remembered `through` ends
    the run, the remembered start stands and only those few readings are read. Otherwise both
    look-ups walk the dedupe index (device_id, ts, seq) from one end, through the whole run.
    """
    holds, ends = CONDITIONS[name]
    m = f"m_{name}"
    fresh = (
        f"(SELECT min(r.ts) FROM bin_reading r WHERE r.device_id = n.device_id"
        f" AND {holds.format(r='r')}"
        f" AND r.ts > coalesce((SELECT max(x.ts) FROM bin_reading x"
        f" WHERE x.device_id = n.device_id AND {ends.format(r='x')}), '-infinity'))"
    )
    # Only for a condition the caller says holds now (n.wanted): the others' look-ups would walk
    # a bin's whole history for nothing (a column a bin never reports matches neither end).
    return (
        f"CASE WHEN strpos(n.wanted, ',{name},') = 0 THEN NULL"
        f" WHEN {m}.since IS NOT NULL AND NOT EXISTS (SELECT 1 FROM bin_reading x"
        f" WHERE x.device_id = n.device_id AND x.ts > {m}.through AND {ends.format(r='x')})"
        f" THEN {m}.since ELSE {fresh} END AS {name}_since"
    )


def _remembered(name: str) -> str:
    return (
        f"LEFT JOIN alert_onset m_{name} ON m_{name}.device_id = n.device_id"
        f" AND m_{name}.condition = '{name}'"
    )


ONSETS = f"""
WITH n AS (
  SELECT d.device_id, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold, k.wanted
  FROM unnest(%(devices)s::text[], %(wanted)s::text[]) AS k(device_id, wanted)
  JOIN device d ON d.device_id = k.device_id
  JOIN city c ON c.city_id = d.city_id
  WHERE d.city_id = %(city)s AND d.kind = '{DeviceKind.BIN_SENSOR.value}'
)
SELECT n.device_id,
       (SELECT max(r.ts) FROM bin_reading r WHERE r.device_id = n.device_id) AS newest,
       {", ".join(_onset(name) for name in CONDITIONS)}
FROM n
{" ".join(_remembered(name) for name in CONDITIONS)}
"""

# Sorted keys: concurrent requests lock the rows in the same order.
REMEMBER = """
INSERT INTO alert_onset AS o (device_id, city_id, condition, since, through)
SELECT k.device_id, %(city)s, k.condition, k.since, k.through
FROM unnest(%(devices)s::text[], %(conditions)s::text[], %(since)s::timestamptz[],
            %(through)s::timestamptz[]) AS k(device_id, condition, since, through)
ORDER BY k.device_id, k.condition
ON CONFLICT (device_id, condition) DO UPDATE SET since = EXCLUDED.since, through = EXCLUDED.through
WHERE (o.since, o.through) IS DISTINCT FROM (EXCLUDED.since, EXCLUDED.through)
"""
FORGET = """
DELETE FROM alert_onset
WHERE city_id = %(city)s AND device_id = ANY(%(devices)s)
  AND NOT ((device_id || ' ' || condition) = ANY(%(kept)s))
"""


@dataclass(frozen=True, slots=True)
class Onsets:
    """When each condition of a bin began (None: not ongoing, or no reading says)."""

    device_id: str
    newest: datetime | None
    fire_since: datetime | None
    tilt_since: datetime | None
    lid_open_since: datetime | None
    full_since: datetime | None
    battery_low_since: datetime | None
    battery_critical_since: datetime | None


async def bin_onsets(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, ongoing: dict[str, set[str]]
) -> dict[str, Onsets]:
    """When each ongoing condition of the city's bins began: `ongoing` names, by device id, the
    conditions (keys of CONDITIONS) that hold now; the others' onsets are None and forgotten.
    Remembered for the next request."""
    unknown = set().union(*ongoing.values()) - CONDITIONS.keys()
    if unknown:
        raise ValueError(f"no such conditions: {sorted(unknown)}")
    device_ids = sorted(device for device, names in ongoing.items() if names)
    if not device_ids:
        return {}
    wanted = ["," + ",".join(sorted(ongoing[device])) + "," for device in device_ids]
    params = {"city": city_id, "devices": device_ids, "wanted": wanted}
    rows = await fetch_all(conn, Onsets, ONSETS, params)
    kept = sorted(
        (row.device_id, name, since, row.newest)
        for row in rows
        for name in CONDITIONS
        if (since := getattr(row, f"{name}_since")) is not None and row.newest is not None
    )
    # Remembering only saves the next request work: two requests colliding must not fail one.
    try:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(
                FORGET,
                {
                    "city": city_id,
                    "devices": device_ids,
                    "kept": [f"{device} {name}" for device, name, _, _ in kept],
                },
            )
            if kept:
                await cur.execute(
                    REMEMBER,
                    {
                        "city": city_id,
                        "devices": [k[0] for k in kept],
                        "conditions": [k[1] for k in kept],
                        "since": [k[2] for k in kept],
                        "through": [k[3] for k in kept],
                    },
                )
    except psycopg.errors.TransactionRollback:  # a deadlock or serialization failure
        pass
    return {row.device_id: row for row in rows}
