"""Load limits of one API process: a token bucket per caller and a bound on heavy queries at once."""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from dataclasses import dataclass

# Beyond this many callers the least recently seen bucket is forgotten: random keys cannot grow
# the table without bound (a forgotten bucket starts full, which only errs towards admitting).
MAX_CALLERS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`per_min` requests a minute per caller, in bursts of up to `per_min` (0: no limit)."""

    def __init__(self, per_min: int, *, max_callers: int = MAX_CALLERS) -> None:
        self.per_min = per_min
        self.max_callers = max_callers
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def wait_s(self, caller: str, *, now: float | None = None) -> float:
        """0 when the caller may go on (a token is taken), else the seconds until the next token."""
        if self.per_min <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        rate = self.per_min / 60.0
        bucket = self._buckets.get(caller)
        if bucket is None:
            bucket = _Bucket(float(self.per_min), now)
            self._buckets[caller] = bucket
            while len(self._buckets) > self.max_callers:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(caller)
            bucket.tokens = min(float(self.per_min), bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


class HeavyGate:
    """At most `limit` heavy requests at once; the others wait up to `queue_s`, then are turned away.

    Heavy requests hold a pooled connection and CPU for long; bounding them keeps connections and
    the event loop free for everything else. Built inside the running loop (the app's lifespan).
    """

    def __init__(self, limit: int, queue_s: float) -> None:
        self.limit = limit
        self.queue_s = queue_s
        self._slots = asyncio.Semaphore(limit)
        self.in_use = 0
        self.turned_away = 0

    async def acquire(self) -> bool:
        """Take a slot; False when none came free within queue_s."""
        try:
            async with asyncio.timeout(self.queue_s):
                await self._slots.acquire()
        except TimeoutError:
            self.turned_away += 1
            return False
        self.in_use += 1
        return True

    def release(self) -> None:
        """Give the slot back."""
        self.in_use -= 1
        self._slots.release()
