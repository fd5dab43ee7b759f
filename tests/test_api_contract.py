"""The OpenAPI schema the API serves is the contract: every route declares its answer, the
dashboard decodes into the very same models, and real answers (seeded city, both backends)
are exactly what the models describe."""

from __future__ import annotations

import random
import typing
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pydantic import TypeAdapter

from api.app import create_app
from api.queries.monthly_report import month_report, summarize, year_reports
from dashboard.client import ApiClient, ApiUnavailable
from pisman import contract, keys
from pisman.settings import Settings
from tests.support.api_seed import (
    CITY,
    Weighing,
    insert_bin_reading,
    insert_weighings,
    random_weighings,
    seed_city,
)
from tests.support.api_server import running_api

# Routes whose answer is not JSON data: service probes (outside the versioned API); and the
# media types of files and pages, which declare a string body instead of a model.
NOT_JSON_DATA = {"/healthz", "/readyz", "/metrics", "/healthz/jobs"}
FILE_MEDIA_TYPES = {
    "text/csv",
    "text/html",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _app_openapi() -> dict[str, Any]:
    return create_app(Settings()).openapi()  # type: ignore[call-arg]


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    name = ref.rsplit("/", 1)[1]
    resolved: dict[str, Any] = spec["components"]["schemas"][name]
    return resolved


def free_places(schema: Any, spec: dict[str, Any], where: str, seen: set[str]) -> list[str]:
    """Where a schema lets anything through: `{}`, additionalProperties true, a bare object."""
    if not isinstance(schema, dict):
        return []
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return []
        seen.add(ref)
        return free_places(_resolve(schema, spec), spec, ref, seen)
    typed = {"type", "anyOf", "oneOf", "allOf", "enum", "const"}
    if not typed & schema.keys():
        return [f"{where}: untyped {schema}"]
    out = []
    if schema.get("additionalProperties") is True:
        out.append(f"{where}: additionalProperties true")
    if (
        schema.get("type") == "object"
        and "properties" not in schema
        and not isinstance(schema.get("additionalProperties"), dict)
    ):
        out.append(f"{where}: an object without properties")
    for name, sub in (schema.get("properties") or {}).items():
        out += free_places(sub, spec, f"{where}.{name}", seen)
    for key in ("items", "additionalProperties"):
        out += free_places(schema.get(key), spec, f"{where}[{key}]", seen)
    for key in ("anyOf", "oneOf", "allOf"):
        for i, sub in enumerate(schema.get(key) or []):
            out += free_places(sub, spec, f"{where}.{key}[{i}]", seen)
    return out


def test_every_route_declares_a_typed_answer_and_its_errors() -> None:
    spec = _app_openapi()
    problems: list[str] = []
    checked = 0
    for path, item in spec["paths"].items():
        if path in NOT_JSON_DATA:
            continue
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            responses = op["responses"]
            success = responses.get("200") or responses.get("201")
            if success is None:
                problems.append(f"{where}: no success answer")
                continue
            content = success.get("content") or {}
            files = FILE_MEDIA_TYPES & content.keys()
            if files:
                # A file declares its media type and a string body, and no JSON besides.
                if "application/json" in content or any("schema" not in content[m] for m in files):
                    problems.append(f"{where}: a file answer must declare only its media type")
                checked += 1
                continue
            schema = (content.get("application/json") or {}).get("schema")
            if schema is None:
                problems.append(f"{where}: no JSON schema for its answer")
                continue
            problems += free_places(schema, spec, where, set())
            for status in ("401", "403", "404", "422", "429", "503"):
                error = (responses.get(status) or {}).get("content", {}).get("application/json")
                if error is None or error["schema"] != {"$ref": "#/components/schemas/ErrorAnswer"}:
                    problems.append(f"{where}: {status} is not declared as ErrorAnswer")
            checked += 1
    assert checked >= 20, checked
    assert not problems, problems


def test_the_free_dict_finder_finds_free_dicts() -> None:
    """The check above would catch a route going back to dict[str, Any]."""
    spec: dict[str, Any] = {"components": {"schemas": {}}}
    loose = TypeAdapter(dict[str, Any]).json_schema()
    assert "x: additionalProperties true" in free_places(loose, spec, "x", set())
    assert free_places({}, spec, "y", set()) == ["y: untyped {}"]
    typed = TypeAdapter(dict[str, int]).json_schema()
    assert free_places(typed, spec, "z", set()) == []


# The dashboard's client methods and the route each one calls.
CLIENT_CALLS = {
    "meta": "/v1/meta",
    "progress": "/v1/progress",
    "tonnage": "/v1/tonnage",
    "sites": "/v1/sites",
    "bins": "/v1/bins",
    "devices": "/v1/devices",
    "alerts": "/v1/alerts",
    "national_month": "/v1/reports/national",
    "national_year": "/v1/reports/national",
    "cities": "/v1/cities",
    "district_boundaries": "/v1/districts/boundaries",
    "bin_forecasts": "/v1/bins/forecast",
    "bin_forecast": "/v1/bins/{device_id}/forecast",
    "collection_plan": "/v1/collection-plan",
}


def served_type(schema: dict[str, Any]) -> Any:
    """The contract type an answer schema names: a model, a list of one, or a union of them;
    None when a model it names is not one of pisman/contract.py's."""
    if "$ref" in schema:
        return getattr(contract, schema["$ref"].rsplit("/", 1)[1], None)
    if schema.get("type") == "array":
        item = served_type(schema["items"])
        return None if item is None else list[item]  # type: ignore[valid-type]
    members = tuple(served_type(s) for s in schema["anyOf"])
    return None if None in members else typing.Union[members]  # noqa: UP007


def _served_types() -> dict[str, Any]:
    """The contract type of each JSON GET route's answer, from the schema the app serves."""
    spec = _app_openapi()
    out = {}
    for path, item in spec["paths"].items():
        content = (item.get("get") or {}).get("responses", {}).get("200", {}).get("content", {})
        if path not in NOT_JSON_DATA and "application/json" in content:
            out[path] = served_type(content["application/json"]["schema"])
    return out


# JSON routes whose models still live in their route module, so no client can share them: each
# moves into pisman/contract.py (then leaves this list; the test fails while it is listed).
MODELS_OUTSIDE_THE_CONTRACT: set[str] = set()


def test_every_json_answer_is_a_model_of_the_contract_module() -> None:
    outside = {path for path, answer in _served_types().items() if answer is None}
    assert outside == MODELS_OUTSIDE_THE_CONTRACT & _served_types().keys(), outside


def test_the_dashboard_decodes_into_the_apis_own_models() -> None:
    spec = _app_openapi()
    served = _served_types()
    for method, path in CLIENT_CALLS.items():
        decoded = typing.get_type_hints(getattr(ApiClient, method))["return"]
        members = (
            typing.get_args(served[path]) if typing.get_origin(served[path]) is typing.Union else ()
        )
        # Identity, not a look-alike: the very class (or list of it) the route declares...
        assert decoded == served[path] or decoded in members, (method, decoded, served[path])
        # ...and the schema the app serves for it is that class's own.
        model = typing.get_args(decoded)[0] if typing.get_origin(decoded) is list else decoded
        own = model.model_json_schema(
            ref_template="#/components/schemas/{model}", mode="serialization"
        )
        own.pop("$defs", None)
        assert spec["components"]["schemas"][model.__name__] == own, model.__name__


# --- real answers -------------------------------------------------------------------------


def seed(conn: psycopg.Connection, now: datetime) -> None:
    """A city with a month of weighings, bins (full, on fire, low battery, fresh) and quarantine."""
    seed_city(conn, bins=4)
    insert_weighings(
        conn, random_weighings(random.Random(7), datetime(2026, 2, 20, tzinfo=UTC), 24 * 20, 3)
    )
    insert_weighings(
        conn,
        [
            Weighing(now - timedelta(minutes=5), "tpa-gate", 99001, 1234, "food", "to_landfill"),
            Weighing(now - timedelta(minutes=4), "tpa-gate", 99002, 2000, "mixed", "to_landfill"),
        ],
    )
    t0 = datetime(2026, 3, 5, 3, tzinfo=UTC)
    insert_bin_reading(conn, "bin-000", t0, 0.91, battery_pct=3, fire=True)
    insert_bin_reading(conn, "bin-001", t0, 0.2, battery_pct=15)
    insert_bin_reading(conn, "bin-002", now - timedelta(minutes=1), 0.85)
    conn.execute(
        "INSERT INTO quarantine (city_id, received_at, topic, payload, reason, site_id, device_id, kind)"
        " VALUES (%s, '2026-03-02T00:00:00Z', 'pisman/v1/tps-coblong/x/weighing', '\\xff00',"
        " 'bad json', 'tps-coblong', 'x', 'weighing'),"
        " (NULL, '2026-03-03T00:00:00Z', 'pisman/v1/nowhere/y/bin', '{}', 'unknown site',"
        " NULL, NULL, NULL)",
        (CITY,),
    )
    conn.commit()


class Served:
    """The API over the seeded city: its URL and an admin key."""

    def __init__(self, url: str, key: str, db_url: str) -> None:
        self.url = url
        self.key = key
        self.db_url = db_url


@pytest.fixture(scope="module")
def served(module_db_url: str) -> Iterator[Served]:
    with psycopg.connect(module_db_url) as conn:
        seed(conn, datetime.now(UTC).replace(microsecond=0))
        key = keys.create_key(conn, role="admin", name="contract")
    settings = Settings(DATABASE_URL=module_db_url, PISMAN_CITY=CITY, MQTT_URL="mqtt://127.0.0.1:1")  # type: ignore[call-arg]
    with running_api(settings) as url:
        yield Served(url, key, module_db_url)


# Every JSON GET route, with the queries its answers are checked on.
SAMPLES: dict[str, list[str]] = {
    "/v1/meta": [""],
    "/v1/districts/boundaries": [""],
    "/v1/tonnage": [
        "?from=2026-02-20&to=2026-03-12&bucket=day",
        "?from=2026-02-20&to=2026-03-12&bucket=total&group_by=district,category",
        "?from=2026-02-20&to=2026-03-12&bucket=week&group_by=site,site_type,material",
        "?from=2026-03-01&to=2026-03-02&bucket=hour&group_by=category,district",
    ],
    "/v1/progress": ["?date=2026-03-05", "?date=2025-01-01&trend_days=3", ""],
    "/v1/sites": ["", "?site_type=depot"],
    "/v1/sites/{site_id}": ["tps-coblong"],
    "/v1/devices": ["", "?status=offline&kind=bin_sensor"],
    "/v1/devices/{device_id}": ["bin-000", "scale-tpa-gate"],
    "/v1/bins": ["", "?needs_collection=true"],
    "/v1/bins/forecast": ["", "?district=cicendo"],
    "/v1/bins/{device_id}/forecast": ["bin-000", "bin-002"],
    "/v1/collection-plan": ["", "?date=2026-03-05"],
    "/v1/alerts": ["", "?district=cicendo"],
    "/v1/reports/national": ["?month=2026-03", "?month=2099-01", "?year=2026"],
    "/v1/targets": [""],
    "/v1/quarantine": ["", "?status=new"],
    "/v1/auth/me": [""],
    "/v1/cities": [""],
}


def _url(path: str, sample: str) -> str:
    if "{" in path:
        return path[: path.index("{")] + sample + path[path.index("}") + 1 :]
    return path + sample


def test_every_json_route_has_samples_here() -> None:
    in_contract = {path for path, answer in _served_types().items() if answer is not None}
    assert in_contract <= SAMPLES.keys(), in_contract - SAMPLES.keys()


def test_real_answers_are_exactly_what_the_models_describe(served: Served) -> None:
    """Each answer decodes into its route's model, and the model gives back the same JSON: no
    field served that the schema does not name, none named that is not served."""
    models = _served_types()
    checked = 0
    with httpx.Client(base_url=served.url, headers={"X-API-Key": served.key}, timeout=60) as http:
        for path, samples in SAMPLES.items():
            if models.get(path) is None:
                continue  # a route of another branch, or one listed in MODELS_OUTSIDE_THE_CONTRACT
            adapter = TypeAdapter(models[path])
            for sample in samples:
                response = http.get(_url(path, sample))
                assert response.status_code == 200, (path, sample, response.text[:300])
                body = response.json()
                decoded = adapter.validate_json(response.content)
                again = adapter.dump_python(decoded, mode="json", by_alias=True, exclude_unset=True)
                assert again == body, (path, sample)
                checked += 1
    assert checked >= 25


def test_the_dashboard_client_decodes_every_real_answer(served: Served) -> None:
    client = ApiClient(served.url, served.key, city=CITY)
    try:
        meta = client.meta()
        assert {c.code for c in meta.categories} == {"reduce", "separate", "utilize", "residual"}
        progress = client.progress(day=date(2026, 3, 5), trend_days=7)
        assert progress.month_to_date.from_ == "2026-03-01" and len(progress.trend) == 7
        tonnage = client.tonnage(
            start=date(2026, 2, 20), end=date(2026, 3, 12), group_by="district,category"
        )
        assert tonnage.rows and all(r.district and r.category for r in tonnage.rows)
        assert client.sites() and client.devices() and client.alerts()
        assert [b.device_id for b in client.bins(needs_collection=True)][:1] == ["bin-000"]
        month = client.national_month("2026-03")
        assert month.coverage.month == "2026-03" and month.data_quality.quarantined >= 1
        year = client.national_year(2026)
        assert len(year.months) == 12 and year.annual.period == "2026"
    finally:
        client.close()


def test_an_answer_outside_the_contract_is_a_failed_call_not_a_crash(served: Served) -> None:
    """A server answering JSON of another shape (an old or foreign API) is shown as unavailable."""
    client = ApiClient(served.url, served.key, city=CITY)
    try:
        with pytest.raises(ApiUnavailable, match="outside the contract"):
            client._answer(contract.ProgressAnswer, "/v1/meta")
    finally:
        client.close()


async def _report_sections(db_url: str) -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    tz = ZoneInfo("Asia/Jakarta")
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        report = await month_report(conn, city_id=CITY, tz=tz, first=date(2026, 3, 1))
        year = await year_reports(conn, city_id=CITY, tz=tz, year=2026)
    return report.public(), [{**m.national, "coverage": m.coverage} for m in year], year


def test_the_monthly_reports_sections_fit_the_models_without_losing_a_field(
    served: Served,
) -> None:
    """The report query builds dicts; the route turns them into models. A key the model does not
    name would be dropped silently: here it fails instead."""
    import asyncio

    public, months, year = asyncio.run(_report_sections(served.db_url))
    flat = {
        "city": CITY,
        **public.pop("national"),
        **{k: v for k, v in public.items() if k != "month"},
    }
    month_adapter = TypeAdapter(contract.NationalMonthAnswer)
    assert (
        month_adapter.dump_python(month_adapter.validate_python(flat), mode="json", by_alias=True)
        == flat
    )
    for m in months:
        model = contract.CoveredMonthTerms.model_validate(m)
        assert model.model_dump(mode="json") == m
    annual = summarize(year, "2026")
    assert contract.AnnualTerms.model_validate(annual).model_dump(mode="json") == annual
