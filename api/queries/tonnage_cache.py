"""Retired: the per-process closed-day cache of tonnage rows (its counters were dropped by sql/026).

The tonnage query reads the grain tables of sql/025, exact at commit on both backends, and caches
nothing. This module remains only because tests/test_api_residual_by_origin.py still imports
CACHE and clears it; nothing reads or fills it. Delete it with that import.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ClosedDayCache:
    """Holds nothing; kept so that an old test's clear() still runs."""

    hits: int = 0
    misses: int = 0

    def clear(self) -> None:
        """Nothing to forget."""


CACHE = ClosedDayCache()
