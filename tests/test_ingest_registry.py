"""The registry snapshot finds a device provisioned just before its first message."""

from __future__ import annotations

import time

import psycopg

from ingest.registry import Registry
from pisman import devices
from tests.support.ingest_world import seed_city


def test_a_device_provisioned_just_after_a_reload_is_found_for_its_first_message(
    db_url: str,
) -> None:
    registry = Registry(max_age_s=60, min_refresh_gap_s=60)  # the rate limit never lapses here
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        registry.refresh(conn)  # a periodic reload, a moment before the installer's command
        devices.add_device(conn, device_id="scale-new", site_id="depot-1", kind="platform_scale")
        conn.commit()
        received_at = time.time()  # its first message arrives after the commit
        assert "scale-new" not in registry.snapshot.devices
        assert registry.refresh_if_stale(conn, missed=True, received_at=received_at)
        assert "scale-new" in registry.snapshot.devices
        # A message received before the snapshot was read gives no reason to read it again.
        assert not registry.refresh_if_stale(conn, missed=True, received_at=received_at - 60)
