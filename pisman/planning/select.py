"""Which depots the plan must empty, which it may, from each bin's forecast."""

from __future__ import annotations

import math
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from pisman.planning.model import NO_DATA, REASONS, BinState, Stop, TruckSpec, Uncovered

# A depot below this expected fill at mid-shift is not worth a stop (assumption: a truck
# stop for less than a third of a container costs more road than it saves).
OPTIONAL_MIN_FILL = 0.3
# Tomorrow's trucks reach a depot by about this hour after their shift starts: a bin that
# would overflow before then (on a fast day) must be emptied today.
NEXT_DAY_REACH_H = 5
# Loads are estimated at the first shift's start: a lower bound, so a truck planned full is
# full (it takes what fits; a later stop's extra waits for the next day). Estimating them
# later in the morning made trucks leave a ton short (bench/collection.py: 8.1 t a trip
# with loads at 08:00 against 9.6 t at 05:00, Bandung).
LOAD_AT_H = 0
# "Would overflow" is judged on a day this much faster than the bin's usual one (the band's
# fast end, about 1.3-1.6 for Bandung's simulated depots, is for the time window).
MUST_FACTOR = 1.3


def _at(day: date, minute: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz) + timedelta(minutes=minute)


def select_stops(
    bins: list[BinState], *, day: date, tz: ZoneInfo, trucks: list[TruckSpec]
) -> tuple[list[Stop], list[Uncovered]]:
    """Stops for `day`: mandatory (will pass its threshold by shift end, or overflow before
    tomorrow's trucks come) or optional (worth topping up a truck); bins without a usable
    forecast are reported, never guessed."""
    if trucks:
        shift_start = min(t.shift_start_min for t in trucks)
        shift_end = max(t.shift_end_min for t in trucks)
    else:
        shift_start, shift_end = 6 * 60, 14 * 60
    mid = (shift_start + shift_end) // 2
    end_at = _at(day, shift_end, tz)
    next_reach = _at(day, 24 * 60 + shift_start + NEXT_DAY_REACH_H * 60, tz)
    stops: list[Stop] = []
    uncovered: list[Uncovered] = []
    for b in bins:
        fc = b.forecast
        if fc is None or not fc.ok:
            uncovered.append(
                Uncovered(
                    b.site_id,
                    b.site_name,
                    b.district_id,
                    b.kelurahan,
                    b.pool_id,
                    None,
                    NO_DATA,
                    f"{REASONS[NO_DATA]}: {fc.message if fc else 'no bin sensor'}",
                )
            )
            continue
        at_load = fc.fill_at(_at(day, shift_start + LOAD_AT_H * 60, tz))
        at_mid = fc.fill_at(_at(day, mid, tz))
        above = fc.fill_at(end_at) >= b.threshold
        # Must: it would overflow (on a fast day) before tomorrow's trucks can come. A bin
        # above its threshold that will not is worth a stop (optional, valued by its load) and
        # is reported as deferred when the trucks have better things to do.
        mandatory = fc.fill_at(next_reach, MUST_FACTOR) >= 1.0
        if not mandatory and at_mid < OPTIONAL_MIN_FILL:
            continue
        # Latest arrival: before the bin overflows on a fast day, if that is within the shift.
        window_end = shift_end
        full_h = fc.hours_until(1.0, fc.band_high, horizon_h=72)
        if full_h is not None:
            full_at = fc.as_of + timedelta(hours=full_h)
            minute = math.floor((full_at - _at(day, 0, tz)).total_seconds() / 60)
            if shift_start + 90 <= minute < shift_end:
                window_end = minute
        if mandatory:
            why = "meluap sebelum truk besok / would overflow before tomorrow's trucks"
        elif above:
            why = (
                f"≥ {b.threshold:.0%} sebelum {shift_end // 60:02d}:00, aman sampai besok / "
                "above threshold by shift end, safe until tomorrow"
            )
        else:
            why = "tambahan muatan / top-up"
        load = round(min(max(at_load, 0.0), 1.0) * b.container_kg)
        stops.append(
            Stop(
                site_id=b.site_id,
                device_id=b.device_id,
                site_name=b.site_name,
                district_id=b.district_id,
                district_name=b.district_name,
                kelurahan=b.kelurahan,
                lat=b.lat,
                lon=b.lon,
                pool_id=b.pool_id,
                load_kg=max(1, load),
                expected_fill=at_mid,
                mandatory=mandatory,
                above_threshold=above,
                window_start_min=shift_start,
                window_end_min=window_end,
                why=why,
            )
        )
    return stops, uncovered
