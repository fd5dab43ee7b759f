"""Dashboard callbacks given values no dropdown offers: a message on the page, never a 500."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pisman import users
from pisman.settings import Settings, get_settings
from tests.support.api_seed import CITY, seed_city
from tests.support.api_server import running_api
from tests.support.dashboard_login import PASSWORD, log_in

__all__ = ["PASSWORD", "log_in"]  # tests/test_dashboard_login.py imports them from here

HOSTILE: list[Any] = [
    None,
    "",
    "garbage",
    "0001-01",
    "0000-00",
    "9999-12",
    "2026-13",
    "2026-1",
    "2026-10-01",
    "２０２６-１０",
    "2026-10\n",
    "x" * 5000,
    "\x00",
    -1,
    2**70,
    1e308,
    True,
    [],
    ["district", "site"],
    {},
    {"id": "x"},
]


@pytest.fixture(scope="module")
def dashboard_client(module_db_url: str) -> Iterator[Any]:
    """The dashboard app (Flask test client) reading a live API over a seeded city."""
    from dashboard import client as api_client_module
    from dashboard.app import create_app

    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        users.add_user(conn, username="hostile", password=PASSWORD, role="planner")
    settings = Settings(DATABASE_URL=module_db_url, PISMAN_CITY=CITY, MQTT_URL="mqtt://127.0.0.1:1")  # type: ignore[call-arg]
    with running_api(settings) as api_url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("API_URL", api_url)
        mp.setenv("PISMAN_CITY", CITY)
        get_settings.cache_clear()
        api_client_module.base_client.cache_clear()
        app = create_app()
        client = app.server.test_client()
        assert client.get("/_dash-layout").status_code == 401  # no session yet
        assert log_in(client, "hostile", PASSWORD).status_code == 303
        assert client.get("/_dash-layout").status_code == 200  # registers every page callback
        yield app, client
        api_client_module.base_client.cache_clear()
        get_settings.cache_clear()


def _dependency(text: str) -> dict[str, str]:
    component, prop = text.rsplit(".", 1)
    return {"id": component, "property": prop}


def _outputs(output_key: str) -> Any:
    if output_key.startswith(".."):
        return [_dependency(o) for o in output_key[2:-2].split("...")]
    return _dependency(output_key)


def test_every_callback_answers_hostile_values_without_a_server_error(
    dashboard_client: Any,
) -> None:
    app, client = dashboard_client
    failures: list[str] = []
    # Server-side callbacks (clientside ones run in the browser and have no function here).
    callbacks = {k: v for k, v in app.callback_map.items() if v.get("callback")}
    assert any("report-body" in k for k in callbacks), list(callbacks)
    for output_key, cb in callbacks.items():
        inputs, states = cb["inputs"], cb.get("state", [])
        slots = len(inputs) + len(states)
        # Each slot hostile in turn (the others plausible), then every slot hostile at once.
        cases = [
            [value if i == slot else None for i in range(slots)]
            for slot, value in itertools.product(range(slots), HOSTILE)
        ] + [[value] * slots for value in HOSTILE]
        for values in cases:
            body = {
                "output": output_key,
                "outputs": _outputs(output_key),
                "inputs": [{**d, "value": v} for d, v in zip(inputs, values, strict=False)],
                "state": [
                    {**d, "value": v} for d, v in zip(states, values[len(inputs) :], strict=False)
                ],
                "changedPropIds": [f"{inputs[0]['id']}.{inputs[0]['property']}"],
            }
            response = client.post("/_dash-update-component", json=body)
            if response.status_code >= 500:
                failures.append(f"{output_key} {values!r:.120}: {response.status_code}")
    assert not failures, failures


def test_malformed_report_month_shows_a_message_in_indonesian_and_english(
    dashboard_client: Any,
) -> None:
    app, client = dashboard_client
    output_key = next(k for k in app.callback_map if "report-body.children" in k)
    cb = app.callback_map[output_key]
    for lang, expected in (("id", "Pilih bulan"), ("en", "Choose a month")):
        values = {
            "lang.data": lang,
            "report-month.value": "2026-1x",
            "report-group.value": "site",
            "report-period.value": "month",
            "report-year.value": 2026,
        }
        body = {
            "output": output_key,
            "outputs": _outputs(output_key),
            "inputs": [{**d, "value": values[f"{d['id']}.{d['property']}"]} for d in cb["inputs"]],
            "changedPropIds": ["report-month.value"],
        }
        response = client.post("/_dash-update-component", json=body)
        assert response.status_code == 200, response.text[:300]
        assert expected in response.get_data(as_text=True)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
_PROP = st.fixed_dictionaries({"id": _JSON, "property": _JSON}, optional={"value": _JSON})


@pytest.fixture
def no_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The bare app's API is unreachable: its shell (the city switcher asks /v1/cities) must
    not reach a live API of this module's other tests with the made-up session token (that
    API would answer 401 and end the session)."""
    from dashboard import client as api_client_module

    monkeypatch.setenv("API_URL", "http://127.0.0.1:9")
    get_settings.cache_clear()
    api_client_module.base_client.cache_clear()
    _APPS.clear()
    yield
    _APPS.clear()
    api_client_module.base_client.cache_clear()
    get_settings.cache_clear()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=_JSON
    | st.fixed_dictionaries(
        {
            "output": st.sampled_from(["lang.data", "app-title.title", "nope.children"]) | _JSON,
            "outputs": _PROP | st.lists(_PROP, max_size=3) | _JSON,
            "inputs": st.lists(_PROP | _JSON, max_size=3) | _JSON,
        },
        optional={"state": st.lists(_PROP, max_size=2) | _JSON, "changedPropIds": _JSON},
    )
)
def test_hand_made_callback_requests_of_any_shape_get_400_not_500(no_api: None, body: Any) -> None:
    from dashboard.app import create_app

    client = _client(_bare_app(create_app))
    answer = client.post("/_dash-update-component", json=body)
    assert answer.status_code in (200, 204, 400), (answer.status_code, body)


def test_an_unknown_component_bundle_is_404_not_500(no_api: None) -> None:
    from dashboard.app import create_app

    client = _client(_bare_app(create_app))
    assert client.get("/_dash-component-suites/x/y.js").status_code == 404


_APPS: dict[str, Any] = {}


def _bare_app(create_app: Any) -> Any:
    """One dashboard app for the property test (no API behind it: shape checks come first)."""
    if "app" not in _APPS:
        _APPS["app"] = create_app()
        assert _client(_APPS["app"]).get("/_dash-layout").status_code == 200
    return _APPS["app"]


def _client(app: Any) -> Any:
    """A test client with a session the dashboard does not re-check during the test (no API)."""
    client = app.server.test_client()
    with client.session_transaction() as session:
        session["api_token"] = "ps_" + "x" * 43
        session["role"] = "planner"
        session["checked_at"] = time.time() + 86400
    return client
