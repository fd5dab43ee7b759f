"""A city file's hourly pace profile: validated, stored by `pisman city load` for the API (the
file's `pace_profile`, else its simulation's `hourly_profile`), removed when the file has none."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from pisman import citydata
from pisman.settings import PROJECT_ROOT

CITIES = PROJECT_ROOT / "data" / "cities"
PROFILE = "SELECT hourly, source FROM city_pace_profile WHERE city_id = 'testville'"


def _testville(tmp_path: Path, **changes: Any) -> Path:
    """testville.yaml with top-level keys changed (None: removed), written beside nothing else
    (so without the district boundaries file it may name)."""
    data = yaml.safe_load((CITIES / "testville.yaml").read_text())
    data.pop("boundaries", None)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = tmp_path / "testville.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_bandung_declares_a_pace_profile_with_its_source() -> None:
    city = citydata.read_city_file(CITIES / "bandung.yaml")
    assert city.pace_profile is not None and len(city.pace_profile.values) == 24
    assert city.pace_profile.source.startswith("assumption")
    assert citydata.pace_profile_of(city) == city.pace_profile


def test_load_stores_the_declared_profile_else_the_simulations_else_none(
    db_url: str, tmp_path: Path
) -> None:
    declared = {"values": [0] * 6 + [2] * 12 + [1] * 6, "source": "assumption: test shape"}
    with psycopg.connect(db_url) as conn:
        citydata.load_city(conn, citydata.read_city_file(_testville(tmp_path)))
        hourly, source = conn.execute(PROFILE).fetchone() or ([], "")
        city = citydata.read_city_file(CITIES / "testville.yaml")
        assert city.simulation is not None
        assert [float(v) for v in hourly] == city.simulation.hourly_profile.values
        assert source.startswith("simulation.hourly_profile: assumption")

        summary = citydata.load_city(
            conn, citydata.read_city_file(_testville(tmp_path, pace_profile=declared))
        )
        assert "pace profile" in summary
        hourly, source = conn.execute(PROFILE).fetchone() or ([], "")
        assert [float(v) for v in hourly] == declared["values"]
        assert source == "assumption: test shape"

        citydata.load_city(
            conn, citydata.read_city_file(_testville(tmp_path, simulation=None, pace_profile=None))
        )
        assert conn.execute(PROFILE).fetchone() is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1] * 23, "needs 24 values"),
        ([1] * 23 + [-1], "non-negative"),
        ([0] * 24, "positive sum"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(
    tmp_path: Path, values: list[float], message: str
) -> None:
    path = _testville(tmp_path, pace_profile={"values": values, "source": "assumption: bad"})
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(path)
    assert "pace_profile.values" in str(err.value) and message in str(err.value)


def test_a_profile_without_a_source_is_refused(tmp_path: Path) -> None:
    path = _testville(tmp_path, pace_profile={"values": [1] * 24})
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(path)
    assert "pace_profile.source" in str(err.value)
