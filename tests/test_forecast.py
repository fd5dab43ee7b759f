"""The bin fill forecast against known synthetic fill curves (pisman/forecast.py; no database)."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from pisman import forecast

TZ = ZoneInfo("Asia/Jakarta")
# A Monday, 00:00 local.
START = datetime(2026, 11, 2, 0, 0, tzinfo=TZ).astimezone(UTC)


def _curve(
    rate_at: Callable[[datetime], float],
    *,
    days: int,
    empty_at: float | None = 0.85,
    noise: float = 0.0,
    outliers: float = 0.0,
    seed: int = 1,
) -> tuple[list[tuple[datetime, float]], float]:
    """Hourly means of a bin filling at rate_at(local time) per hour, emptied when it passes empty_at.

    Readings every 15 min (like the simulator's backfill), each with gaussian noise and a
    share of wild outliers; returns the hourly means and the true level at the end.
    """
    rng = random.Random(seed)
    level = 0.1
    out: list[tuple[datetime, float]] = []
    for h in range(days * 24):
        hour_start = START + timedelta(hours=h)
        readings = []
        for q in range(4):
            t = hour_start + timedelta(minutes=15 * q)
            level += rate_at(t.astimezone(TZ)) / 4
            if empty_at is not None and level >= empty_at:
                level = 0.02
            value = level + rng.gauss(0, noise)
            if rng.random() < outliers:
                value = rng.choice([0.0, 1.0])
            readings.append(min(1.0, max(0.0, value)))
        out.append((hour_start, sum(readings) / 4))
    return out, level


def _true_hours_until(
    rate_at: Callable[[datetime], float], level: float, target: float, t0: datetime
) -> float:
    t, hours = t0, 0.0
    while level < target:
        level += rate_at(t.astimezone(TZ)) / 60
        t += timedelta(minutes=1)
        hours += 1 / 60
    return hours


def _linear(_t: datetime) -> float:
    return 0.02


def _weekly(t: datetime) -> float:
    """Busy mornings, quiet nights, heavier Sundays: a typical depot."""
    base = 0.035 if 5 <= t.hour < 11 else 0.015 if 11 <= t.hour < 20 else 0.004
    return base * (1.4 if t.weekday() == 6 else 1.0)


def test_linear_fill_with_emptyings_gives_its_rate_and_time_to_threshold() -> None:
    hourly, level = _curve(_linear, days=21)
    as_of = START + timedelta(days=21)
    fc = forecast.forecast_bin(hourly, as_of=as_of, tz=TZ)
    assert fc.ok, fc.message
    assert fc.emptyings >= 10
    assert fc.rate_per_day == pytest.approx(0.48, rel=0.05)
    assert fc.current_fill == pytest.approx(level, abs=0.03)
    truth = (0.8 - level) / 0.02
    got = fc.hours_until(0.8)
    assert got is not None and got == pytest.approx(truth, abs=1.5)


@pytest.mark.parametrize(("noise", "outliers"), [(0.0, 0.0), (0.03, 0.0), (0.03, 0.01)])
def test_weekly_pattern_is_learnt_by_hour_of_week_despite_noise_and_outliers(
    noise: float, outliers: float
) -> None:
    hourly, level = _curve(_weekly, days=28, noise=noise, outliers=outliers)
    as_of = START + timedelta(days=28)
    fc = forecast.forecast_bin(hourly, as_of=as_of, tz=TZ)
    assert fc.ok, fc.message
    true_day = sum(_weekly(START.astimezone(TZ) + timedelta(hours=h)) for h in range(168)) / 7
    assert fc.rate_per_day == pytest.approx(true_day, rel=0.12)
    rates = fc.rate_by_hour_of_week
    morning = sum(rates[24 * d + h] for d in range(6) for h in range(6, 10)) / 24
    night = sum(rates[24 * d + h] for d in range(6) for h in range(0, 4)) / 24
    sunday = sum(rates[24 * 6 + h] for h in range(24))
    weekday = sum(rates[24 * 2 + h] for h in range(24))
    assert morning > 4 * night  # the morning peak is found
    assert sunday / weekday == pytest.approx(1.4, rel=0.2)  # and the heavier Sunday
    # Time to the 80 % threshold, within 3 h of the truth, and inside the band.
    truth = _true_hours_until(_weekly, level, 0.8, as_of)
    got = fc.hours_until(0.8)
    assert got is not None and got == pytest.approx(truth, abs=3.0)
    fast, slow = fc.hours_until(0.8, fc.band_high), fc.hours_until(0.8, fc.band_low)
    assert fast is not None and slow is not None and fast <= got <= slow


def test_band_is_wider_for_an_erratic_bin_than_for_a_steady_one() -> None:
    steady, _ = _curve(_linear, days=21, noise=0.01)
    day_rates = [random.Random(d).uniform(0.005, 0.04) for d in range(21)]

    def erratic(t: datetime) -> float:
        return day_rates[(t - START.astimezone(TZ)).days % 21]

    wild, _ = _curve(erratic, days=21, noise=0.01)
    as_of = START + timedelta(days=21)
    a = forecast.forecast_bin(steady, as_of=as_of, tz=TZ)
    b = forecast.forecast_bin(wild, as_of=as_of, tz=TZ)
    assert a.ok and b.ok
    assert (b.band_high - b.band_low) > 2 * (a.band_high - a.band_low)


def test_too_little_history_is_said_not_guessed() -> None:
    hourly, _ = _curve(_linear, days=1, empty_at=None)
    fc = forecast.forecast_bin(hourly[:10], as_of=START + timedelta(hours=10), tz=TZ)
    assert not fc.ok
    assert "at least 24 hours" in fc.message and fc.reason == forecast.TOO_FEW_HOURS
    assert fc.hours_until(0.8) is None and math.isnan(fc.fill_at(START))
    none = forecast.forecast_bin([], as_of=START, tz=TZ)
    assert not none.ok and "no readings" in none.message and none.reason == forecast.NO_READINGS


def test_old_readings_only_give_no_forecast() -> None:
    hourly, _ = _curve(_linear, days=7)
    fc = forecast.forecast_bin(hourly, as_of=START + timedelta(days=10), tz=TZ)
    assert not fc.ok and "old" in fc.message and fc.reason == forecast.STALE


def test_readings_after_as_of_are_not_used() -> None:
    hourly, _ = _curve(_linear, days=14)
    as_of = START + timedelta(days=7)
    a = forecast.forecast_bin(hourly, as_of=as_of, tz=TZ)
    b = forecast.forecast_bin([p for p in hourly if p[0] < as_of], as_of=as_of, tz=TZ)
    assert a == b


def test_a_bin_stuck_full_is_not_read_as_a_stopped_one() -> None:
    """A bin nobody empties reads 100 % forever: those hours are censored, not a zero rate."""
    hourly, _ = _curve(_linear, days=3, empty_at=None)
    stuck = hourly + [(START + timedelta(days=3, hours=h), 1.0) for h in range(72)]
    fc = forecast.forecast_bin(stuck, as_of=START + timedelta(days=6), tz=TZ)
    assert fc.ok
    assert fc.rate_per_day == pytest.approx(0.48, rel=0.1)
    assert fc.hours_until(0.8) == 0.0
