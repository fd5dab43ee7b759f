"""HTTP client for the API: every answer decoded into the API's own models (pisman/contract.py);
failures become ApiUnavailable / ApiRefused values to show."""

from __future__ import annotations

import functools
import logging
import threading
import time
from datetime import date, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import flask
import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from pisman.contract import (
    Alert,
    AlertAck,
    Bin,
    BinForecast,
    BinForecastsAnswer,
    CitiesAnswer,
    Device,
    DistrictBoundariesAnswer,
    MetaAnswer,
    NationalMonthAnswer,
    NationalYearAnswer,
    PlanAnswer,
    ProgressAnswer,
    Site,
    TonnageAnswer,
)
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


class Export(BaseModel):
    """A downloaded export file (the API's CSV and XLSX are files, not JSON answers)."""

    filename: str
    content: bytes
    media_type: str


AnswerT = TypeVar("AnswerT")


# One validator per answer type, built on first use (building one costs more than a decode).
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(answer_type: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(answer_type)
    if adapter is None:
        adapter = _ADAPTERS.setdefault(answer_type, TypeAdapter(answer_type))
    return adapter


def record_call(path: str, elapsed_ms: float) -> None:
    """Note an API call's time for the dashboard request's Server-Timing header (dashboard/app.py);
    calls made outside a request's own thread are not noted."""
    if flask.has_request_context():
        flask.g.setdefault("api_calls", []).append((path, elapsed_ms))


class ApiClient:
    """The dashboard's view of the API, one method per endpoint it uses."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        city: str | None = None,
        timeout_s: float = 10.0,
        http: httpx.Client | None = None,
    ) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self._http = http or httpx.Client(base_url=base_url, timeout=timeout_s)
        self._base_url = base_url
        self._headers = headers
        self._city = city
        # Labels per credential and city (a user limited to other cities must not see them), and
        # the cities each credential may see, shared by the per-request views of one process.
        self._meta: dict[str, tuple[float, MetaAnswer]] = {}
        self._cities: dict[str, tuple[float, CitiesAnswer]] = {}
        self._meta_lock = threading.Lock()

    @property
    def city(self) -> str | None:
        """The city every data call asks about (None: the API's default city)."""
        return self._city

    def for_token(self, token: str | None, *, city: str | None = None) -> ApiClient:
        """A client sharing this one's connections that sends a user's session token (or
        nothing, so the API answers 401) and asks about `city` (default: this client's)."""
        view = ApiClient(self._base_url, None, city=city or self._city, http=self._http)
        view._meta, view._cities, view._meta_lock = self._meta, self._cities, self._meta_lock
        if token:
            view._headers = {"Authorization": f"Bearer {token}"}
        return view

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _get(
        self, path: str, params: dict[str, Any] | None = None, *, timeout_s: float | None = None
    ) -> httpx.Response:
        return self._request("GET", path, params, timeout_s=timeout_s)

    def _request(
        self,
        method: Literal["GET", "POST"],
        path: str,
        params: dict[str, Any] | None = None,
        *,
        json: Any = None,
        timeout_s: float | None = None,
    ) -> httpx.Response:
        """One call; unreachable or 5xx -> ApiUnavailable, 4xx -> ApiRefused (a 401 of a user's
        session also ends the dashboard's session)."""
        # Every data endpoint takes the city: the one this user chose (dashboard/auth.py).
        clean = {k: v for k, v in {"city": self._city, **(params or {})}.items() if v is not None}
        started = time.perf_counter()
        try:
            response = self._http.request(
                method,
                path,
                params=clean,
                json=json,
                headers=self._headers,
                # A slow answer (a collection plan's solve) may wait longer than the default.
                timeout=httpx.USE_CLIENT_DEFAULT if timeout_s is None else timeout_s,
            )
        except httpx.HTTPError as exc:
            log_event(
                logger, logging.WARNING, "api_unreachable", path=path, error=type(exc).__name__
            )
            raise ApiUnavailable(str(exc)) from None
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        record_call(path, elapsed_ms)
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
            if response.status_code == 401 and "Authorization" in self._headers:
                from dashboard.auth import note_session_ended

                note_session_ended()
            raise ApiRefused(response.status_code, detail)
        log_event(logger, logging.DEBUG, "api_call", path=path, ms=elapsed_ms)
        return response

    def _answer(
        self,
        answer_type: type[AnswerT],
        path: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> AnswerT:
        """The answer decoded into its contract model; one that does not fit is a failed call."""
        response = self._get(path, params, timeout_s=timeout_s)
        try:
            answer: AnswerT = _adapter(answer_type).validate_json(response.content)
        except ValidationError as exc:
            log_event(
                logger,
                logging.WARNING,
                "api_answer_off_contract",
                path=path,
                errors=exc.error_count(),
                first=exc.errors()[0]["msg"] if exc.errors() else "",
            )
            raise ApiUnavailable(f"{path} answered outside the contract") from None
        return answer

    def meta(self) -> MetaAnswer:
        """Labels and the city's districts (cached for a minute per credential and city)."""
        who = f"{self._headers} {self._city}"
        with self._meta_lock:
            cached = self._meta.get(who)
            if cached and time.monotonic() - cached[0] < META_CACHE_S:
                return cached[1]
        meta = self._answer(MetaAnswer, "/v1/meta")
        with self._meta_lock:
            if len(self._meta) > 1000:
                self._meta.clear()
            self._meta[who] = (time.monotonic(), meta)
        return meta

    def today(self) -> date:
        """Today in the chosen city's own time zone (from /v1/meta, cached; the deployment's
        PISMAN_TIMEZONE when the API cannot say): a city in WITA starts its day an hour before
        one in WIB."""
        try:
            zone = ZoneInfo(self.meta().city.timezone)
        except (ApiUnavailable, ApiRefused, ZoneInfoNotFoundError, ValueError):
            zone = get_settings().tz
        return datetime.now(zone).date()

    def cities(self) -> CitiesAnswer:
        """The cities this credential may see, by name (cached for a minute per credential)."""
        who = str(self._headers)
        with self._meta_lock:
            cached = self._cities.get(who)
            if cached and time.monotonic() - cached[0] < META_CACHE_S:
                return cached[1]
        answer = self._answer(CitiesAnswer, "/v1/cities")  # the city= sent along is ignored
        with self._meta_lock:
            if len(self._cities) > 1000:
                self._cities.clear()
            self._cities[who] = (time.monotonic(), answer)
        return answer

    def progress(self, *, day: date | None = None, trend_days: int = 90) -> ProgressAnswer:
        """Today's (or a day's) figures against targets, month to date and the trend."""
        params = {"date": day.isoformat() if day else None, "trend_days": trend_days}
        return self._answer(ProgressAnswer, "/v1/progress", params)

    def tonnage(
        self, *, start: date, end: date, bucket: str = "total", group_by: str = "category"
    ) -> TonnageAnswer:
        """Tonnage over [start, end) in buckets, grouped."""
        params = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "bucket": bucket,
            "group_by": group_by,
        }
        return self._answer(TonnageAnswer, "/v1/tonnage", params)

    def sites(self, *, district: str | None = None) -> list[Site]:
        """Sites, optionally of one district."""
        return self._answer(list[Site], "/v1/sites", {"district": district})

    def bins(
        self, *, district: str | None = None, needs_collection: bool | None = None
    ) -> list[Bin]:
        """Bins, fullest first."""
        params = {
            "district": district,
            "needs_collection": None if needs_collection is None else str(needs_collection).lower(),
        }
        return self._answer(list[Bin], "/v1/bins", params)

    def devices(self, *, district: str | None = None, status: str | None = None) -> list[Device]:
        """Devices with their connection status."""
        return self._answer(list[Device], "/v1/devices", {"district": district, "status": status})

    def alerts(self, *, district: str | None = None) -> list[Alert]:
        """Current alerts."""
        return self._answer(list[Alert], "/v1/alerts", {"district": district})

    def district_boundaries(self) -> DistrictBoundariesAnswer:
        """The city's district outlines (empty when its city file provides none)."""
        return self._answer(DistrictBoundariesAnswer, "/v1/districts/boundaries")

    def acknowledge_alert(self, alert_id: str, *, note: str | None = None) -> AlertAck:
        """POST /v1/alerts/{alert_id}/ack as this user: the acknowledgement the API keeps (the
        first one, when someone was quicker). 404: the alert ended meanwhile."""
        path = f"/v1/alerts/{quote(alert_id, safe='')}/ack"
        response = self._request("POST", path, json={"note": note})
        try:
            return AlertAck.model_validate_json(response.content)
        except ValidationError:
            raise ApiUnavailable(f"{path} answered outside the contract") from None

    def national_month(self, month: str) -> NationalMonthAnswer:
        """The national report of a month, with its coverage."""
        return self._answer(NationalMonthAnswer, "/v1/reports/national", {"month": month})

    def national_year(self, year: int) -> NationalYearAnswer:
        """The national report of a year: each month's terms and coverage, and the annual terms."""
        return self._answer(NationalYearAnswer, "/v1/reports/national", {"year": str(year)})

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
        return _as_file(self._get(path, params), fallback)

    def bin_forecasts(self, *, district: str | None = None) -> BinForecastsAnswer:
        """Every active bin's forecast (time until its full threshold), soonest first."""
        return self._answer(BinForecastsAnswer, "/v1/bins/forecast", {"district": district})

    def bin_forecast(self, device_id: str) -> BinForecast:
        """One bin's forecast with its band and hourly profile."""
        return self._answer(BinForecast, f"/v1/bins/{quote(device_id, safe='')}/forecast")

    def collection_plan(self, *, day: date | None = None, pool: str | None = None) -> PlanAnswer:
        """The day's collection plan (default tomorrow; planner and above: a viewer gets
        ApiRefused 403). A first solve takes up to PISMAN_PLAN_TIME_LIMIT_S and the forecasts."""
        params = {"date": day.isoformat() if day else None, "pool": pool}
        return self._answer(PlanAnswer, "/v1/collection-plan", params, timeout_s=plan_wait_s())

    def collection_plan_file(
        self,
        kind: Literal["xlsx", "print"],
        *,
        day: date | None = None,
        pool: str | None = None,
        truck: str | None = None,
    ) -> Export:
        """The plan as an XLSX workbook or as its printable HTML page (one truck per sheet, or
        only `truck`), downloaded with this user's credential (planner and above)."""
        when = day.isoformat() if day else "besok"
        if kind == "xlsx":
            path, fallback = "/v1/collection-plan.xlsx", f"rencana-angkut-{when}.xlsx"
        else:
            path, fallback = "/v1/collection-plan/print", f"rencana-angkut-{when}.html"
        params = {"date": day.isoformat() if day else None, "pool": pool}
        if kind == "print":
            params["truck"] = truck
        return _as_file(self._get(path, params, timeout_s=plan_wait_s()), fallback)


def plan_wait_s() -> float:
    """How long the dashboard waits for a collection plan: the solver's limit and 40 s for the
    forecasts, the answer and a busy server."""
    return get_settings().PISMAN_PLAN_TIME_LIMIT_S + 40.0


def _as_file(response: httpx.Response, fallback: str) -> Export:
    """A file answer as an Export, named by its Content-Disposition (else `fallback`)."""
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
def base_client() -> ApiClient:
    """The process's connections to the API (API_URL), sending no credential of its own."""
    settings = get_settings()
    return ApiClient(settings.API_URL, None, city=settings.PISMAN_CITY)


def get_client() -> ApiClient:
    """The API client for this request's user: every call carries that user's session token,
    so the API applies the user's role and city limits (a viewer cannot export), and asks about
    the city the user chose in the top bar (dashboard/auth.py; the API refuses others with 403)."""
    from dashboard.auth import current_city, current_token

    return base_client().for_token(current_token(), city=current_city())
