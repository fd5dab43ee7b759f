"""A cached snapshot of the device and site registry, refreshed periodically and on a miss."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import psycopg

from pisman.logs import log_event

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KnownDevice:
    """What validation needs to know about a registered device."""

    device_id: str
    city_id: str
    site_id: str
    kind: str
    active: bool


@dataclass(frozen=True, slots=True)
class RegistrySnapshot:
    """Devices by id and each site's city, as of one moment."""

    devices: dict[str, KnownDevice] = field(default_factory=dict)
    site_city: dict[str, str] = field(default_factory=dict)


LIST_DEVICES = "SELECT device_id, city_id, site_id, kind, active FROM device"
LIST_SITES = "SELECT site_id, city_id FROM site"


def load_snapshot(conn: psycopg.Connection) -> RegistrySnapshot:
    """Read every device and site (a few thousand rows at most)."""
    devices = {row[0]: KnownDevice(*row) for row in conn.execute(LIST_DEVICES)}
    sites = {row[0]: row[1] for row in conn.execute(LIST_SITES)}
    return RegistrySnapshot(devices, sites)


class Registry:
    """Holds the current snapshot; refreshes it every `max_age_s` and, rate-limited, on a miss."""

    def __init__(self, *, max_age_s: float = 30.0, min_refresh_gap_s: float = 1.0) -> None:
        self.snapshot = RegistrySnapshot()
        self.max_age_s = max_age_s
        self.min_refresh_gap_s = min_refresh_gap_s
        self._loaded_at = float("-inf")
        self._load_started_wall = float("-inf")  # wall clock, like a message's received_at

    def refresh(self, conn: psycopg.Connection) -> None:
        """Reload now (the caller handles database errors)."""
        started = time.time()
        snapshot = load_snapshot(conn)
        conn.commit()
        if len(snapshot.devices) != len(self.snapshot.devices):
            log_event(
                log,
                logging.INFO,
                "registry_loaded",
                devices=len(snapshot.devices),
                sites=len(snapshot.site_city),
            )
        self.snapshot = snapshot
        self._loaded_at = time.monotonic()
        self._load_started_wall = started

    def refresh_if_stale(
        self, conn: psycopg.Connection, *, missed: bool = False, received_at: float | None = None
    ) -> bool:
        """Reload when old, or when a device was missing and the snapshot may not know it yet.

        A miss reloads when the snapshot was read before the message arrived (a device
        provisioned before its first message is then always found, however recent the last
        reload), or when the last reload was not just now.
        """
        age = time.monotonic() - self._loaded_at
        predates = received_at is not None and self._load_started_wall <= received_at
        if age >= self.max_age_s or (missed and (predates or age >= self.min_refresh_gap_s)):
            self.refresh(conn)
            return True
        return False
