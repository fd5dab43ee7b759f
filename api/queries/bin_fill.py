"""Hourly mean fill of bins over a span, from bin_hourly (the forecast and the collection plan read it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg

# Hourly means from the rollup the API reads (sql/004: bin_hourly keeps sums and counts).
HOURLY_FILL = """
SELECT device_id, bucket, sum_fill_ratio / readings
FROM bin_hourly
WHERE city_id = %(city)s AND device_id = ANY(%(devices)s)
  AND bucket >= %(start)s AND bucket < %(end)s AND readings > 0
ORDER BY device_id, bucket
"""


async def hourly_fill(
    conn: psycopg.AsyncConnection, *, city_id: str, device_ids: list[str], end: datetime, days: int
) -> dict[str, list[tuple[datetime, float]]]:
    """Hourly mean fill ratios per bin over the `days` before `end`."""
    params = {
        "city": city_id,
        "devices": device_ids,
        "start": end - timedelta(days=days),
        "end": end,
    }
    out: dict[str, list[tuple[datetime, float]]] = {d: [] for d in device_ids}
    for device_id, bucket, fill in await (await conn.execute(HOURLY_FILL, params)).fetchall():
        out[device_id].append((bucket, float(fill)))
    return out
