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

    Both look-ups walk the dedupe index (device_id, ts, seq) from one end; a run is short
    compared with a bin's history, so neither reads much.
    """
    holds, ends = CONDITIONS[name]
    return (
        f"(SELECT min(r.ts) FROM bin_reading r WHERE r.device_id = n.device_id"
        f" AND {holds.format(r='r')}"
        f" AND r.ts > coalesce((SELECT max(x.ts) FROM bin_reading x"
        f" WHERE x.device_id = n.device_id AND {ends.format(r='x')}), '-infinity'))"
        f" AS {name}_since"
    )


ONSETS = f"""
WITH n AS (
  SELECT d.device_id, coalesce(d.full_threshold, c.bin_full_threshold) AS threshold
  FROM device d JOIN city c ON c.city_id = d.city_id
  WHERE d.city_id = %(city)s AND d.kind = '{DeviceKind.BIN_SENSOR.value}'
    AND d.device_id = ANY(%(devices)s)
)
SELECT n.device_id, {", ".join(_onset(name) for name in CONDITIONS)}
FROM n
"""


@dataclass(frozen=True, slots=True)
class Onsets:
    """When each condition of a bin began (None: not ongoing, or no reading says)."""

    device_id: str
    fire_since: datetime | None
    tilt_since: datetime | None
    lid_open_since: datetime | None
    full_since: datetime | None
    battery_low_since: datetime | None
    battery_critical_since: datetime | None


async def bin_onsets(
    conn: psycopg.AsyncConnection[Any], *, city_id: str, device_ids: list[str]
) -> dict[str, Onsets]:
    """The onsets of the given bins of the city, by device id (bins with no alert: not asked)."""
    if not device_ids:
        return {}
    rows = await fetch_all(conn, Onsets, ONSETS, {"city": city_id, "devices": device_ids})
    return {row.device_id: row for row in rows}
