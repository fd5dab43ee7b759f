"""HTTP client for the API: typed results; failures become ApiUnavailable / ApiRefused values to show."""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import date
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from pisman.logs import log_event
from pisman.settings import get_settings

logger = logging.getLogger("pisman.dashboard.client")

META_CACHE_S = 60.0  # labels and districts change rarely; spare the API a request per refresh


class ApiUnavailable(Exception):
    """The API could not be reached or failed (connection refused, timeout, 5xx)."""


class ApiRefused(Exception):
    """The API answered 4xx; status and detail say why (401/403: the dashboard's key)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class CategoryFigure(_Model):
    """One category's figure for a period (tonnes or, for separate, a share)."""

    tonnes: float = 0.0
    target_t: float | None = None
    share_of_generation: float | None = None
    share_of_collected: float | None = None
    target_share: float | None = None


class PeriodFigures(_Model):
    """A day's or the month-to-date's figures."""

    categories: dict[str, CategoryFigure] = {}
    collected_t: float = 0.0
    diverted_t: float = 0.0
    diverted_share: float | None = None
    landfilled_share: float | None = None
    projection: dict[str, float] | None = None
    days: int | None = None


class LandfillQuota(_Model):
    """The rolling landfill quota window."""

    quota_t: float | None = None
    period_days: int | None = None
    used_t: float = 0.0
    remaining_t: float | None = None
    used_share: float | None = None


class Kbs(_Model):
    """Waste-free neighbourhood count against its target."""

    count: int = 0
    target: int | None = None


class Progress(_Model):
    """GET /v1/progress."""

    city: str
    date: str
    as_of: str | None = None
    generation_t_per_day: float | None = None
    day: PeriodFigures
    month_to_date: PeriodFigures
    trend: list[dict[str, Any]] = []
    landfill_quota: LandfillQuota | None = None
    kbs: Kbs | None = None
    organic_at_landfill_t: float | None = None


class Tonnage(_Model):
    """GET /v1/tonnage."""

    rows: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    total_tonnes: float = 0.0


class Meta(_Model):
    """GET /v1/meta: labels in both languages and the city's districts."""

    city: dict[str, Any] = {}
    categories: list[dict[str, Any]] = []
    materials: list[dict[str, Any]] = []
    streams: list[dict[str, Any]] = []
    site_types: list[dict[str, Any]] = []
    districts: list[dict[str, Any]] = []


class Site(_Model):
    """An item of GET /v1/sites."""

    site_id: str
    name: str
    site_type: str
    district_id: str
    district_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    active: bool = True


class Bin(_Model):
    """An item of GET /v1/bins."""

    device_id: str
    site_id: str
    site_name: str | None = None
    district_id: str | None = None
    district_name: str | None = None
    lat: float | None = None
    lon: float | None = None
    fill_pct: float | None = None
    threshold_pct: float | None = None
    needs_collection: bool = False
    battery_pct: float | None = None
    reading_ts: str | None = None
    status: str | None = None


class Device(_Model):
    """An item of GET /v1/devices."""

    device_id: str
    kind: str
    site_id: str
    site_name: str | None = None
    district_id: str | None = None
    last_seen_at: str | None = None
    status: str
    silent_for_s: float | None = None
    battery_pct: float | None = None


class Alert(_Model):
    """An item of GET /v1/alerts."""

    kind: str
    severity: str
    device_id: str | None = None
    site_id: str | None = None
    district_id: str | None = None
    message_id: str = ""
    message_en: str = ""
    since: str | None = None


class NationalTerms(_Model):
    """A month's (or a year's) national terms as /v1/reports/national gives them."""

    month: str | None = None
    period: str | None = None
    status: str | None = None
    days: int = 0
    days_with_data: int = 0
    A_t: float | None = None
    A_month_estimate_t: float | None = None
    B_t: float | None = None
    B_share: float | None = None
    C_t: float | None = None
    C_share: float | None = None
    managed_share: float | None = None
    unmanaged_t: float | None = None
    recycling_rate: float | None = None
    partial: bool | None = None
    coverage: dict[str, Any] = {}


class NationalYear(_Model):
    """/v1/reports/national?year=: twelve months and the annual terms."""

    year: int
    annual: NationalTerms
    months: list[NationalTerms]


class Export(_Model):
    """A downloaded export file."""

    filename: str
    content: bytes
    media_type: str


def _items(payload: Any) -> list[Any]:
    """List endpoints answer a bare list or {"items": [...]}; accept both."""
    if isinstance(payload, dict):
        return list(payload.get("items") or payload.get("rows") or [])
    return list(payload)


class ApiClient:
    """The dashboard's view of the API, one method per endpoint it uses."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        city: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout_s)
        self._city = city
        self._meta: tuple[float, Meta] | None = None
        self._meta_lock = threading.Lock()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(self, path: str, params: dict[str, Any] | None = None) -> httpx.Response:
        # Every data endpoint takes the city; this dashboard shows its own (PISMAN_CITY).
        clean = {k: v for k, v in {"city": self._city, **(params or {})}.items() if v is not None}
        started = time.perf_counter()
        try:
            response = self._http.get(path, params=clean)
        except httpx.HTTPError as exc:
            log_event(
                logger, logging.WARNING, "api_unreachable", path=path, error=type(exc).__name__
            )
            raise ApiUnavailable(str(exc)) from None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        if response.status_code >= 500:
            log_event(logger, logging.WARNING, "api_failed", path=path, status=response.status_code)
            raise ApiUnavailable(f"{response.status_code} from {path}")
        if response.status_code >= 400:
            try:
                detail = str(response.json().get("detail"))
            except (ValueError, AttributeError):
                detail = response.text[:200]
            log_event(
                logger,
                logging.WARNING,
                "api_refused",
                path=path,
                status=response.status_code,
                detail=detail,
            )
            raise ApiRefused(response.status_code, detail)
        log_event(logger, logging.DEBUG, "api_call", path=path, ms=elapsed_ms)
        return response

    def _json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self._get(path, params).json()
        except ValueError:
            raise ApiUnavailable(f"{path} did not answer JSON") from None

    def meta(self) -> Meta:
        """Labels and districts (cached for a minute)."""
        with self._meta_lock:
            if self._meta and time.monotonic() - self._meta[0] < META_CACHE_S:
                return self._meta[1]
        meta = Meta.model_validate(self._json("/v1/meta"))
        with self._meta_lock:
            self._meta = (time.monotonic(), meta)
        return meta

    def progress(self, *, day: date | None = None, trend_days: int = 90) -> Progress:
        """Today's (or a day's) figures against targets, month to date and the trend."""
        params = {"date": day.isoformat() if day else None, "trend_days": trend_days}
        return Progress.model_validate(self._json("/v1/progress", params))

    def tonnage(
        self, *, start: date, end: date, bucket: str = "total", group_by: str = "category"
    ) -> Tonnage:
        """Tonnage over [start, end) in buckets, grouped."""
        params = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "bucket": bucket,
            "group_by": group_by,
        }
        return Tonnage.model_validate(self._json("/v1/tonnage", params))

    def sites(self, *, district: str | None = None) -> list[Site]:
        """Sites, optionally of one district."""
        return [
            Site.model_validate(i) for i in _items(self._json("/v1/sites", {"district": district}))
        ]

    def bins(
        self, *, district: str | None = None, needs_collection: bool | None = None
    ) -> list[Bin]:
        """Bins, fullest first."""
        params = {
            "district": district,
            "needs_collection": None if needs_collection is None else str(needs_collection).lower(),
        }
        return [Bin.model_validate(i) for i in _items(self._json("/v1/bins", params))]

    def devices(self, *, district: str | None = None, status: str | None = None) -> list[Device]:
        """Devices with their connection status."""
        params = {"district": district, "status": status}
        return [Device.model_validate(i) for i in _items(self._json("/v1/devices", params))]

    def alerts(self, *, district: str | None = None) -> list[Alert]:
        """Current alerts."""
        return [
            Alert.model_validate(i)
            for i in _items(self._json("/v1/alerts", {"district": district}))
        ]

    def national_month(self, month: str) -> NationalTerms:
        """The national report of a month, with its coverage."""
        return NationalTerms.model_validate(self._json("/v1/reports/national", {"month": month}))

    def national_year(self, year: int) -> NationalYear:
        """The national report of a year: each month's terms and coverage, and the annual terms."""
        return NationalYear.model_validate(self._json("/v1/reports/national", {"year": str(year)}))

    def export(
        self,
        *,
        month: str | None = None,
        group_by: str = "category",
        fmt: str,
        lang: str = "id",
        year: int | None = None,
    ) -> Export:
        """The monthly (or, with `year`, the annual) export file (csv or xlsx) in the language."""
        if year is not None:
            path = f"/v1/exports/annual.{fmt}"
            params: dict[str, Any] = {"year": str(year), "lang": lang}
            fallback = f"pisman-{year}.{fmt}"
        else:
            path = f"/v1/exports/monthly.{fmt}"
            params = {"month": month, "group_by": group_by if fmt == "csv" else None, "lang": lang}
            fallback = (
                f"pisman-{month}-{group_by}.{fmt}" if fmt == "csv" else f"pisman-{month}.{fmt}"
            )
        response = self._get(path, params)
        disposition = response.headers.get("content-disposition", "")
        filename = fallback
        if "filename=" in disposition:
            filename = disposition.split("filename=", 1)[1].strip().strip('"') or filename
        return Export(
            filename=filename,
            content=response.content,
            media_type=response.headers.get("content-type", "application/octet-stream"),
        )


@functools.cache
def get_client() -> ApiClient:
    """The process's API client, from API_URL and API_KEY."""
    settings = get_settings()
    return ApiClient(settings.API_URL, settings.API_KEY, city=settings.PISMAN_CITY)
