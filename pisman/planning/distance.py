"""Distances between places: haversine times a detour factor, or any road matrix behind one interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

EARTH_RADIUS_KM = 6371.0088


class DistanceMatrix(Protocol):
    """Road kilometres between every pair of (lat, lon) points; a road-network service can implement it."""

    def km(self, points: Sequence[tuple[float, float]]) -> np.ndarray:
        """An n x n array of kilometres (row: from, column: to)."""
        ...


class HaversineMatrix:
    """Great-circle distance times a detour factor (roads are longer than the straight line)."""

    def __init__(self, detour_factor: float) -> None:
        if not 1.0 <= detour_factor <= 5.0:
            raise ValueError(f"detour factor must be between 1 and 5, got {detour_factor}")
        self.detour_factor = detour_factor

    def km(self, points: Sequence[tuple[float, float]]) -> np.ndarray:
        """Haversine kilometres x detour factor."""
        if not points:
            return np.zeros((0, 0))
        lat = np.radians(np.array([p[0] for p in points]))
        lon = np.radians(np.array([p[1] for p in points]))
        dlat = lat[:, None] - lat[None, :]
        dlon = lon[:, None] - lon[None, :]
        a = (
            np.sin(dlat / 2) ** 2
            + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
        )
        km = 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
        return np.asarray(km * self.detour_factor)
