"""Bin fill forecasts: fill rate by hour of week from a bin's own history, robust to emptyings and noise.

Pure: hourly mean fill levels in, a Forecast out; no database, no clock. The API
(api/routes/forecast.py, api/routes/collection.py) and the simulator's planned collection
(simulators/) both call it. Method (docs/collection-planning.md):

1. Increments between consecutive hourly means; a drop of more than `drop` is an emptying
   (a truck came) and is left out with the hour on each side of it (half-emptied hours);
   levels near 100 % are left out too (a full bin reads 100 % whatever arrives).
2. A profile: the trimmed mean of the increments per local hour of day, times a trimmed
   weekday factor, blended with the trimmed mean per hour of week where there are enough
   weeks of it (shrinkage: a single odd week does not make a peak).
3. Calibration and band: the history is cut into day-long pieces between emptyings; each
   piece's rise is a Theil-Sen slope (robust to sensor noise and outliers) over its hours,
   divided by what the profile expects over the same hours. The median ratio scales the
   profile; its 10th and 90th percentiles are the band (slow and fast days).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

HOURS_PER_WEEK = 168
# Hourly increments below this are emptyings (a truck came), not noise.
DEFAULT_DROP = 0.12
# A level at or above this is treated as censored: a full bin's sensor reads 100 %.
CENSORED_LEVEL = 0.97
TRIM = 0.1
# Weight (in samples) of the hour-of-day x weekday profile against one hour of week's own mean.
SHRINK_SAMPLES = 8
MIN_INCREMENTS = 24
MIN_PIECE_H = 12
# Band when there are too few day-long pieces to take quantiles from (assumption: +-50 %).
FALLBACK_BAND = (0.5, 1.5)
MIN_PIECES_FOR_BAND = 4
STALE_AFTER_H = 48
# Why a forecast cannot be made (Forecast.reason; the API passes them on, the dashboard words them).
NO_READINGS = "no_readings"
STALE = "stale"
TOO_FEW_HOURS = "too_few_hours"


@dataclass(frozen=True, slots=True)
class Forecast:
    """What a bin's history says about its next hours; rates are fill ratio per hour."""

    status: str  # "ok" or "insufficient_history"
    message: str
    as_of: datetime
    tz_name: str
    current_fill: float | None
    last_reading_at: datetime | None
    rate_by_hour_of_week: tuple[float, ...]  # index: weekday (Monday 0) * 24 + local hour
    band_low: float  # multipliers of the rates: a slow day
    band_high: float  # a fast day
    history_hours: int
    emptyings: int
    pieces: int
    # Why there is no forecast: NO_READINGS, STALE or TOO_FEW_HOURS ("" when ok).
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the forecast can be used."""
        return self.status == "ok"

    @property
    def rate_per_day(self) -> float:
        """Mean fill ratio added per day over a week."""
        return sum(self.rate_by_hour_of_week) / 7

    def rise(self, start: datetime, end: datetime, factor: float = 1.0) -> float:
        """Expected fill added between two instants (hour of week of each part)."""
        return factor * _profile_integral(
            self.rate_by_hour_of_week, ZoneInfo(self.tz_name), start, end
        )

    def fill_at(self, when: datetime, factor: float = 1.0) -> float:
        """Expected fill ratio at `when` (not capped at 1: above 1 means overflowing)."""
        if self.current_fill is None:
            return math.nan
        if when <= self.as_of:
            return self.current_fill
        return self.current_fill + self.rise(self.as_of, when, factor)

    def hours_until(
        self, level: float, factor: float = 1.0, horizon_h: int = 14 * 24
    ) -> float | None:
        """Hours from as_of until the expected fill reaches `level` (None: not within horizon)."""
        if self.current_fill is None:
            return None
        if self.current_fill >= level:
            return 0.0
        tz = ZoneInfo(self.tz_name)
        need = level - self.current_fill
        t = self.as_of
        for _ in range(horizon_h + 1):
            nxt = t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
            rate = factor * self.rate_by_hour_of_week[_how(t, tz)]
            span_h = (nxt - t).total_seconds() / 3600
            if rate * span_h >= need:
                done = (t - self.as_of).total_seconds() / 3600 + need / rate
                return done if done <= horizon_h else None
            need -= rate * span_h
            t = nxt
        return None


def _how(t: datetime, tz: ZoneInfo) -> int:
    local = t.astimezone(tz)
    return local.weekday() * 24 + local.hour


@functools.lru_cache(maxsize=1 << 16)
def _how_of_hour(hour: int, tz: ZoneInfo) -> int:
    """Local hour of week of the UTC hour starting at `hour` x 3600 s (every bin of a city asks
    for the same few hundred hours: a batch of forecasts converts each once)."""
    return _how(datetime.fromtimestamp(hour * 3600, UTC), tz)


def _profile_integral(
    rates: Sequence[float], tz: ZoneInfo, start: datetime, end: datetime
) -> float:
    total = 0.0
    t = start
    while t < end:
        nxt = min(end, t.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
        total += rates[_how(t, tz)] * (nxt - t).total_seconds() / 3600
        t = nxt
    return total


def _trimmed_mean(values: Sequence[float], trim: float = TRIM) -> float:
    # Plain Python: the lists are short (a few to a few hundred), where numpy's call costs more.
    arr = sorted(values)
    n = len(arr)
    if n == 0:
        return math.nan
    k = int(n * trim)
    kept = arr[k : n - k] if n - 2 * k > 0 else arr
    return math.fsum(kept) / len(kept)


@functools.lru_cache(maxsize=256)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(n, k=1)
    return i, j


def _median(values: np.ndarray) -> float:
    """np.median's value without its per-call overhead (this runs a few dozen times per bin)."""
    arr = np.sort(values)
    n = len(arr)
    if n == 0:
        return math.nan
    mid = n // 2
    return float(arr[mid]) if n % 2 else float((arr[mid - 1] + arr[mid]) / 2)


def _groups(keys: np.ndarray, values: np.ndarray, size: int) -> list[list[float]]:
    """values split by integer key 0..size-1 (each group in the values' order)."""
    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(size + 1))
    ordered = values[order].tolist()
    return [ordered[bounds[k] : bounds[k + 1]] for k in range(size)]


def _piece_ratios(
    pieces: list[list[int]],
    hours: list[int],
    levels: list[float],
    rates: list[float],
    tz: ZoneInfo,
) -> list[float]:
    """Each piece's ratio of observed to expected filling: the Theil-Sen slope of its levels
    against the profile's expected cumulative rise (whatever the shape of the day), robust to
    noise and outliers. All pieces at once: padded to one array, pairs masked."""
    if not pieces:
        return []
    width = max(len(p) for p in pieces)
    xs = np.full((len(pieces), width), np.nan)
    ys = np.full((len(pieces), width), np.nan)
    for row, piece in enumerate(pieces):
        # A piece holds consecutive hours: the expected rise is a running sum of the profile.
        steps = [rates[_how_of_hour(hours[k], tz)] for k in piece[:-1]]
        xs[row, 0] = 0.0
        xs[row, 1 : len(piece)] = np.cumsum(steps)
        ys[row, : len(piece)] = [levels[k] for k in piece]
    last = np.array([xs[row, len(p) - 1] for row, p in enumerate(pieces)])
    i, j = _pairs(width)
    dx = xs[:, j] - xs[:, i]
    dy = ys[:, j] - ys[:, i]
    real = ~np.isnan(dx)
    # Pairs closer than an eighth of the piece's expected rise are too noisy to count.
    keep = real & (dx > np.maximum(last / 8, 1e-12)[:, None])
    none = ~keep.any(axis=1)
    keep[none] = real[none] & (dx[none] > 1e-12)
    with np.errstate(invalid="ignore", divide="ignore"):
        slopes = np.where(keep, dy / np.where(keep, dx, 1.0), np.nan)
    ratios = []
    for row in range(len(pieces)):
        if last[row] > 1e-6:
            ratios.append(max(0.0, _median(slopes[row][keep[row]])))
    return ratios


def insufficient(
    as_of: datetime, tz: ZoneInfo, message: str, reason: str = "", **extra: int
) -> Forecast:
    """A forecast that says why it cannot be made (`reason` a code, `message` for people)."""
    return Forecast(
        status="insufficient_history",
        message=message,
        as_of=as_of,
        tz_name=str(tz),
        current_fill=None,
        last_reading_at=None,
        rate_by_hour_of_week=(0.0,) * HOURS_PER_WEEK,
        band_low=math.nan,
        band_high=math.nan,
        history_hours=extra.get("history_hours", 0),
        emptyings=extra.get("emptyings", 0),
        pieces=0,
        reason=reason,
    )


def forecast_bin(
    hourly: Sequence[tuple[datetime, float]],
    *,
    as_of: datetime,
    tz: ZoneInfo,
    lookback_days: int = 28,
    drop: float = DEFAULT_DROP,
) -> Forecast:
    """Forecast from hourly mean fill ratios [(hour start, aware), mean fill 0..1] before as_of."""
    start = as_of - timedelta(days=lookback_days)
    points: dict[int, float] = {}
    for hour_start, fill in hourly:
        if start <= hour_start < as_of and math.isfinite(fill):
            points[int(hour_start.timestamp() // 3600)] = min(1.0, max(0.0, float(fill)))
    hours = sorted(points)
    levels = [points[h] for h in hours]
    return _forecast(hours, levels, as_of=as_of, tz=tz, lookback_days=lookback_days, drop=drop)


def forecast_hours(
    hours: Sequence[int],
    fills: Sequence[float],
    *,
    as_of: datetime,
    tz: ZoneInfo,
    lookback_days: int = 28,
    drop: float = DEFAULT_DROP,
) -> Forecast:
    """forecast_bin for hours given as epoch hours (hour start // 3600), as the API reads them."""
    first = (as_of - timedelta(days=lookback_days)).timestamp()
    end = as_of.timestamp()
    hour_arr = np.asarray(hours, dtype=np.int64)
    fill_arr = np.asarray(fills, dtype=float)
    if hour_arr.shape != fill_arr.shape:
        raise ValueError("hours and fills differ in length")
    keep = (hour_arr * 3600 >= first) & (hour_arr * 3600 < end) & np.isfinite(fill_arr)
    # Ascending hours; of an hour given twice the later value counts (as in forecast_bin).
    unique, last = np.unique(hour_arr[keep][::-1], return_index=True)
    levels = np.clip(fill_arr[keep][::-1][last], 0.0, 1.0)
    return _forecast(
        unique.tolist(),
        levels.tolist(),
        as_of=as_of,
        tz=tz,
        lookback_days=lookback_days,
        drop=drop,
    )


@dataclass(frozen=True, slots=True)
class _Increments:
    """Step 1's reading of the hours: where a bin was emptied or near full, and the usable
    hourly rises."""

    consecutive: np.ndarray  # hour i+1 follows hour i
    emptied: np.ndarray  # a drop of more than `drop` from hour i to i+1
    censored: np.ndarray  # hour i's level is near full
    rise_hours: np.ndarray  # epoch hour at the end of each usable rise
    rises: np.ndarray


def _forecast(
    hours: list[int],
    levels: list[float],
    *,
    as_of: datetime,
    tz: ZoneInfo,
    lookback_days: int,
    drop: float,
) -> Forecast:
    """The forecast from ascending epoch hours and their mean levels (0..1) in the window."""
    unusable = _no_recent_readings(hours, as_of=as_of, tz=tz, lookback_days=lookback_days)
    if unusable is not None:
        return unusable
    inc = _increments(hours, levels, drop)
    n_emptyings = int(inc.emptied.sum())
    if len(inc.rises) < MIN_INCREMENTS:
        return insufficient(
            as_of,
            tz,
            f"perlu minimal {MIN_INCREMENTS} jam pembacaan di antara pengosongan, baru "
            f"{len(inc.rises)} / needs at least {MIN_INCREMENTS} hours of readings between "
            f"emptyings; has {len(inc.rises)}",
            TOO_FEW_HOURS,
            history_hours=len(hours),
            emptyings=n_emptyings,
        )
    rates = _weekly_profile(inc.rise_hours, inc.rises, tz)
    pieces = _day_pieces(inc)
    ratios = _piece_ratios(pieces, hours, levels, rates, tz)
    rates = _calibrated(rates, ratios)
    band = _band(ratios)
    last_at = datetime.fromtimestamp(hours[-1] * 3600, UTC)
    return Forecast(
        status="ok",
        message="",
        as_of=as_of,
        tz_name=str(tz),
        current_fill=_level_now(levels, rates, tz, last_at=last_at, as_of=as_of),
        last_reading_at=last_at,
        rate_by_hour_of_week=tuple(rates),
        band_low=band[0],
        band_high=band[1],
        history_hours=len(hours),
        emptyings=n_emptyings,
        pieces=len(ratios),
    )


def _no_recent_readings(
    hours: list[int], *, as_of: datetime, tz: ZoneInfo, lookback_days: int
) -> Forecast | None:
    """The insufficient forecast when the window has no reading or only stale ones, else None."""
    if not hours:
        return insufficient(
            as_of,
            tz,
            f"tidak ada pembacaan dalam {lookback_days} hari terakhir / no readings in the "
            f"{lookback_days} days before {as_of.isoformat()}",
            NO_READINGS,
        )
    last_at = datetime.fromtimestamp(hours[-1] * 3600, UTC)
    if (as_of - last_at) > timedelta(hours=STALE_AFTER_H):
        return insufficient(
            as_of,
            tz,
            f"pembacaan terbaru lebih dari {STALE_AFTER_H} jam yang lalu / the newest reading is "
            f"from {last_at.isoformat()}, more than {STALE_AFTER_H} h old",
            STALE,
            history_hours=len(hours),
        )
    return None


def _increments(hours: list[int], levels: list[float], drop: float) -> _Increments:
    """1. Increments, emptyings, censored levels (arrays: a city's bins in one request).

    A rise counts between two consecutive hours, with no emptying in it or beside it (the
    half-emptied hours), and neither end near full."""
    n = len(hours)
    hour_arr = np.array(hours, dtype=np.int64)
    level_arr = np.array(levels)
    consecutive = np.diff(hour_arr) == 1
    diffs = np.diff(level_arr)
    emptied = consecutive & (diffs < -drop)
    censored = level_arr >= CENSORED_LEVEL
    beside = np.zeros(n - 1, dtype=bool)
    beside[1:] |= emptied[:-1]
    beside[:-1] |= emptied[1:]
    usable = consecutive & ~emptied & ~beside & ~censored[:-1] & ~censored[1:]
    return _Increments(consecutive, emptied, censored, hour_arr[1:][usable], diffs[usable])


def _weekly_profile(rise_hours: np.ndarray, rises: np.ndarray, tz: ZoneInfo) -> list[float]:
    """2. Profile: the rise per hour of the week, hour of day x weekday, blended with the hour
    of the week's own rises (shrunk toward the former when it has few)."""
    hows = np.array([_how_of_hour(h - 1, tz) for h in rise_hours.tolist()])  # hour of the rise
    by_how = _groups(hows, rises, HOURS_PER_WEEK)
    by_hod = _groups(hows % 24, rises, 24)
    by_dow = _groups(hows // 24, rises, 7)
    overall = _trimmed_mean(rises.tolist())
    hod = [_trimmed_mean(v) if len(v) >= 3 else overall for v in by_hod]
    mean_hod = sum(hod) / 24
    dow = []
    for v in by_dow:
        if len(v) >= 24 and overall > 0 and mean_hod > 0:
            dow.append(max(0.0, _trimmed_mean(v) / mean_hod))
        else:
            dow.append(1.0)
    rates = []
    for how in range(HOURS_PER_WEEK):
        prior = hod[how % 24] * dow[how // 24]
        own = by_how[how]
        if own:
            m = len(own)
            prior = (m * _trimmed_mean(own) + SHRINK_SAMPLES * prior) / (m + SHRINK_SAMPLES)
        rates.append(max(0.0, prior))
    if sum(rates) <= 0:
        rates = [max(overall, 0.0)] * HOURS_PER_WEEK
    return rates


def _day_pieces(inc: _Increments) -> list[list[int]]:
    """3a. Day-long pieces between emptyings (positions in hours, at most 24, at least
    MIN_PIECE_H), with no near-full hour and no hour an emptying starts from."""
    n = len(inc.censored)
    pieces: list[list[int]] = []
    piece: list[int] = []
    emptied_list = inc.emptied.tolist()
    breaks = [False] + [
        not c or e for c, e in zip(inc.consecutive.tolist(), emptied_list, strict=True)
    ]
    full = inc.censored.tolist()
    for i in range(n):
        if breaks[i] or full[i] or len(piece) >= 24:
            if len(piece) >= MIN_PIECE_H:
                pieces.append(piece)
            piece = []
        if not full[i] and not (i + 1 < n and emptied_list[i]):
            piece.append(i)
    if len(piece) >= MIN_PIECE_H:
        pieces.append(piece)
    return pieces


def _calibrated(rates: list[float], ratios: list[float]) -> list[float]:
    """3b. The profile scaled by the pieces' median ratio of observed to profiled rise."""
    if ratios:
        scale = float(np.median(ratios))
        if scale > 0:
            return [r * scale for r in rates]
    return rates


def _band(ratios: list[float]) -> tuple[float, float]:
    """3c. The band: the pieces' 10th and 90th percentile ratios over their median, or
    FALLBACK_BAND with fewer than MIN_PIECES_FOR_BAND pieces."""
    if len(ratios) >= MIN_PIECES_FOR_BAND and np.median(ratios) > 0:
        med = float(np.median(ratios))
        low = float(np.quantile(ratios, 0.1)) / med
        high = float(np.quantile(ratios, 0.9)) / med
        return (min(low, 1.0), max(high, 1.0))
    return FALLBACK_BAND


def _level_now(
    levels: list[float], rates: list[float], tz: ZoneInfo, *, last_at: datetime, as_of: datetime
) -> float:
    """The level now: the newest hourly mean, advanced by the profile to as_of."""
    last_mid = last_at + timedelta(minutes=30)
    return levels[-1] + (_profile_integral(rates, tz, last_mid, as_of) if as_of > last_mid else 0.0)
