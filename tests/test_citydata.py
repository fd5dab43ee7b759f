"""City data files: validation with clear errors, and idempotent loading."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from pisman import citydata
from pisman.cli import main
from pisman.settings import PROJECT_ROOT

CITIES = PROJECT_ROOT / "data" / "cities"


def test_bandung_file_has_thirty_kecamatan_and_the_reported_sites() -> None:
    city = citydata.read_city_file(CITIES / "bandung.yaml")
    sites = city.all_sites()
    kecamatan = [d for d in city.districts if d.id != "tpa-sarimukti"]
    assert len(kecamatan) == 30
    assert sum(d.kelurahan for d in kecamatan) == 151
    by_type = {t: sum(1 for s in sites if s.type == t) for t in {s.type for s in sites}}
    assert by_type["depot"] == 260
    assert by_type["waste_bank_hub"] == 3
    assert by_type["landfill"] == 1
    assert 8 <= by_type["processing"] <= 12
    in_city = [s for s in sites if s.type != "landfill"]
    assert all(-6.99 < s.lat < -6.84 and 107.54 < s.lon < 107.75 for s in in_city)
    hoods = city.neighbourhoods()
    assert sum(1 for n in hoods if n.kbs_since is not None) == 466
    # A KBS neighbourhood is one where at least 30 % of households separate.
    assert all(
        (n.separating_households / n.households >= 0.30) == (n.kbs_since is not None) for n in hoods
    )
    targets = {t.metric.value: t for t in city.targets}
    assert targets["generation_t"].value == 1500 and targets["landfill_quota_t"].period == "14 days"
    assert all(t.source for t in city.targets)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "city.yaml"
    path.write_text(text)
    return path


def test_site_in_unknown_district_is_rejected_naming_the_field(tmp_path: Path) -> None:
    text = (
        (CITIES / "testville.yaml")
        .read_text()
        .replace("district: south, lat: -6.990", "district: west, lat: -6.990")
    )
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(_write(tmp_path, text))
    assert "city.yaml" in str(err.value)
    assert "unknown district 'west'" in str(err.value)


def test_bad_value_error_names_the_dotted_field(tmp_path: Path) -> None:
    text = (
        (CITIES / "testville.yaml")
        .read_text()
        .replace("bin_full_threshold: 0.8", "bin_full_threshold: 1.7")
    )
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(_write(tmp_path, text))
    assert err.value.field == "city.bin_full_threshold"


def test_composition_that_does_not_add_up_is_rejected(tmp_path: Path) -> None:
    text = (CITIES / "testville.yaml").read_text().replace("food: 0.401", "food: 0.601")
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(_write(tmp_path, text))
    assert err.value.field == "simulation.composition.shares"
    assert "add up to" in err.value.message


def test_cli_reports_bad_city_file_with_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "city: [unclosed\n")
    assert main(["city", "load", str(path)]) == 2
    err = capsys.readouterr().err
    assert "city.yaml" in err and "not valid YAML" in err


def _counts(conn: psycopg.Connection) -> tuple[int, ...]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM city), (SELECT count(*) FROM district), (SELECT count(*) FROM site),"
        " (SELECT count(*) FROM neighbourhood), (SELECT count(*) FROM target),"
        " (SELECT count(*) FROM category_map)"
    ).fetchone()
    assert row is not None
    return tuple(row)


def test_loading_a_city_twice_changes_nothing(db_url: str) -> None:
    city = citydata.read_city_file(CITIES / "testville.yaml")
    with psycopg.connect(db_url) as conn:
        summary = citydata.load_city(conn, city)
        first = _counts(conn)
        citydata.load_city(conn, city)
        assert _counts(conn) == first
    assert summary.startswith("city testville: 2 districts, 8 sites")
    assert first[:5] == (1, 2, 8, 10, 9)
    assert first[5] > 0  # the city's category rules were seeded


def test_site_dropped_from_the_file_is_deactivated_not_deleted(db_url: str, tmp_path: Path) -> None:
    full = citydata.read_city_file(CITIES / "testville.yaml")
    text = (CITIES / "testville.yaml").read_text()
    lines = [ln for ln in text.splitlines() if "tv-tps3r-recycling" not in ln]
    smaller = citydata.read_city_file(_write(tmp_path, "\n".join(lines)))
    with psycopg.connect(db_url) as conn:
        citydata.load_city(conn, full)
        citydata.load_city(conn, smaller)
        row = conn.execute(
            "SELECT active FROM site WHERE site_id = 'tv-tps3r-recycling'"
        ).fetchone()
    assert row == (False,)


def test_bandung_loads_with_every_site_and_neighbourhood(db_url: str) -> None:
    city = citydata.read_city_file(CITIES / "bandung.yaml")
    with psycopg.connect(db_url) as conn:
        citydata.load_city(conn, city)
        sites, kbs = conn.execute(
            "SELECT (SELECT count(*) FROM site WHERE city_id = 'bandung'),"
            " (SELECT count(*) FROM neighbourhood WHERE kbs_since IS NOT NULL)"
        ).fetchone() or (0, 0)
    assert sites == len(city.all_sites())
    assert kbs == 466
