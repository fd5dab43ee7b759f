"""City data files: validation with clear errors, and idempotent loading."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

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


# --- collection fleet (issue 12) ------------------------------------------------------------


def test_bandung_fleet_carries_the_reported_daily_loads_with_a_source_per_figure() -> None:
    city = citydata.read_city_file(CITIES / "bandung.yaml")
    fleet = city.fleet
    assert fleet is not None and fleet.landfill == "tpa-sarimukti"
    trucks = fleet.all_trucks()
    # Two landfill trips per truck and shift must carry ~140 loads of 4-8 t (~980 t/day).
    assert sum(t.capacity_kg for t in trucks) * 2 >= 980_000
    served = [d for p in fleet.pools for d in p.districts]
    assert sorted(served) == sorted(d.id for d in city.districts if d.id != "tpa-sarimukti")
    for fig in (fleet.detour_factor, fleet.speed_kmh, fleet.service_min, fleet.landfill_unload_min):
        assert len(fig.source) > 10
    assert all(t.source for t in trucks)


@pytest.mark.parametrize(
    ("old", "new", "field", "message"),
    [
        ("landfill: tv-tpa", "landfill: tv-tps-north", "(top level)", "not a landfill site"),
        ("pool: tv-pool, count", "pool: tv-nowhere, count", "fleet", "unknown pool 'tv-nowhere'"),
        (
            "districts: [north, south]",
            "districts: [north, west]",
            "(top level)",
            "unknown district",
        ),
        (
            "capacity_t: {value: 10,",
            "capacity_t: {value: -6,",
            "fleet.trucks.0.capacity_t",
            "above 0",
        ),
        ("shift: {low: 6, high: 14", "shift: {low: 14, high: 6", "fleet.trucks.0.shift", "before"),
        ("detour_factor: {value: 1.4", "detour_factor: {value: 0.5", "fleet", "detour_factor"),
        ("count: 2,", 'id_pattern: "{truck}", count: 2,', "fleet.trucks.0.id_pattern", "{pool}"),
        ("count: 2,", 'id_pattern: "same", count: 2,', "fleet.trucks.0.id_pattern", "distinct"),
    ],
)
def test_bad_fleet_is_refused_naming_the_field(
    tmp_path: Path, old: str, new: str, field: str, message: str
) -> None:
    text = (CITIES / "testville.yaml").read_text()
    assert old in text
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(_write(tmp_path, text.replace(old, new)))
    assert err.value.field == field
    assert message in err.value.message


def test_fleet_is_loaded_with_the_city_and_replaced_on_reload(db_url: str, tmp_path: Path) -> None:
    full = citydata.read_city_file(CITIES / "testville.yaml")
    text = (CITIES / "testville.yaml").read_text().replace("count: 2,", "count: 1,")
    smaller = citydata.read_city_file(_write(tmp_path, text))
    with psycopg.connect(db_url) as conn:
        summary = citydata.load_city(conn, full)
        assert "1 truck pools, 2 trucks" in summary
        trucks = conn.execute(
            "SELECT truck_id, capacity_kg, shift_start_h, shift_end_h FROM truck"
            " WHERE city_id = 'testville' ORDER BY truck_id"
        ).fetchall()
        assert [(t[0], t[1], float(t[2]), float(t[3])) for t in trucks] == [
            ("tv-pool-01", 10000, 6.0, 14.0),
            ("tv-pool-02", 10000, 6.0, 14.0),
        ]
        citydata.load_city(conn, smaller)
        row = conn.execute(
            "SELECT (SELECT count(*) FROM truck), (SELECT count(*) FROM truck_pool),"
            " (SELECT detour_factor FROM collection_params WHERE city_id = 'testville')"
        ).fetchone()
    assert row is not None and row[:2] == (1, 1) and float(row[2]) == 1.4


# --- district boundaries (issue 14) ---------------------------------------------------------


@pytest.fixture(autouse=True)
def _outlines_beside_copied_city_files(tmp_path: Path) -> None:
    """Testville's file names its outlines beside it: a copy in tmp_path (by `_write`) finds them."""
    shutil.copy(CITIES / "testville-districts.geojson", tmp_path)


def _city_with_boundaries(tmp_path: Path, geojson: str | bytes) -> Path:
    """Testville's file in tmp_path with its boundaries file replaced by `geojson`."""
    geo_path = tmp_path / "testville-districts.geojson"
    if isinstance(geojson, bytes):
        geo_path.write_bytes(geojson)
    else:
        geo_path.write_text(geojson)
    return _write(tmp_path, (CITIES / "testville.yaml").read_text())


def test_testville_ships_one_outline_per_district_around_its_sites() -> None:
    from pisman import geo

    city = citydata.read_city_file(CITIES / "testville.yaml")
    assert city.boundaries is not None and "synthetic test geometry" in city.boundaries.source
    shapes = {s.district_id: s for s in city._shapes}
    assert sorted(shapes) == ["north", "south"]
    for site in city.all_sites():
        inside = [d for d, s in shapes.items() if geo.contains(s.polygons, site.lon, site.lat)]
        # Every site lies in its own district only, except the landfill gate, outside the city.
        assert inside == ([] if site.type == "landfill" else [site.district]), site.id


def test_cli_refuses_bad_boundaries_with_exit_status_2_naming_file_and_district(
    tmp_path: Path,
) -> None:
    from tests.support.cli import run_pisman

    text = (CITIES / "testville-districts.geojson").read_text()
    unclosed = text.replace("[107.580, -6.875], [107.570, -6.925]", "[107.580, -6.875]")
    path = _city_with_boundaries(tmp_path, unclosed)
    result = run_pisman(
        "city", "load", str(path), env={"DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}
    )
    assert result.returncode == 2, result.stderr
    assert "testville-districts.geojson" in result.stderr
    assert "features.0 (north) ring 0: ring is not closed" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.replace('"district": "south"', '"district": "west"'),
            "unknown district 'west'",
        ),
        (lambda t: t.replace('"Polygon"', '"LineString"', 1), "not a Polygon or MultiPolygon"),
        (
            lambda t: t.replace("[107.570, -6.925], [107.640", "[-6.925, 107.570], [107.640", 1),
            "out of range",
        ),
        (lambda t: t[:-20], "not valid JSON"),
        (
            lambda t: t.replace('"district": "south"', '"district": "north"'),
            "more than one feature",
        ),
    ],
)
def test_bad_boundaries_are_refused_before_anything_is_stored(
    tmp_path: Path, change: Any, message: str
) -> None:
    text = (CITIES / "testville-districts.geojson").read_text()
    path = _city_with_boundaries(tmp_path, change(text))
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(path)
    assert err.value.path.name == "testville-districts.geojson"
    assert message in str(err.value)


def test_missing_or_huge_boundaries_file_is_refused(tmp_path: Path) -> None:
    from pisman import geo

    path = _write(tmp_path, (CITIES / "testville.yaml").read_text())
    (tmp_path / "testville-districts.geojson").unlink()
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(path)
    assert "testville-districts.geojson" in str(err.value)
    path = _city_with_boundaries(tmp_path, b" " * (geo.MAX_BYTES + 10))
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(path)
    assert "simplify" in str(err.value)


def test_boundaries_file_must_be_a_plain_name_beside_the_city_file(tmp_path: Path) -> None:
    text = (
        (CITIES / "testville.yaml")
        .read_text()
        .replace("file: testville-districts.geojson", "file: ../../etc/passwd.json")
    )
    with pytest.raises(citydata.CityFileError) as err:
        citydata.read_city_file(_write(tmp_path, text))
    assert "boundaries.file" in str(err.value)


def test_boundaries_are_stored_with_the_city_and_removed_when_the_file_drops_them(
    db_url: str, tmp_path: Path
) -> None:
    city = citydata.read_city_file(CITIES / "testville.yaml")
    text = (CITIES / "testville.yaml").read_text()
    without = citydata.read_city_file(_write(tmp_path, text.split("\n# District outlines")[0]))
    assert without.boundaries is None
    with psycopg.connect(db_url) as conn:
        summary = citydata.load_city(conn, city)
        rows = conn.execute(
            "SELECT city_id, district_id, geometry->>'type', min_lon, max_lat, source"
            " FROM district_boundary ORDER BY district_id"
        ).fetchall()
        assert "boundaries of 2 districts" in summary
        assert [r[:3] for r in rows] == [
            ("testville", "north", "MultiPolygon"),
            ("testville", "south", "MultiPolygon"),
        ]
        assert rows[0][3] == 107.57 and rows[0][4] == -6.865
        assert "synthetic test geometry" in rows[0][5]
        citydata.load_city(conn, city)  # idempotent
        assert conn.execute("SELECT count(*) FROM district_boundary").fetchone() == (2,)
        assert "no district boundaries" in citydata.load_city(conn, without)
        assert conn.execute("SELECT count(*) FROM district_boundary").fetchone() == (0,)


def test_bandung_ships_real_kecamatan_outlines_with_their_licence() -> None:
    from pisman import geo

    city = citydata.read_city_file(CITIES / "bandung.yaml")
    assert city.boundaries is not None and "MIT" in city.boundaries.source
    assert city.boundaries.without == ["tpa-sarimukti"]
    shapes = {s.district_id: s for s in city._shapes}
    kecamatan = [d for d in city.districts if d.id != "tpa-sarimukti"]
    assert sorted(shapes) == sorted(d.id for d in kecamatan)
    assert "Permission is hereby granted" in (CITIES / "bandung-districts.geojson").read_text()
    # The file's own approximate centroids mostly fall inside the outlines (an independent check
    # that names and shapes belong together); the landfill, 45 km away, is outside the frame.
    inside = [d.id for d in kecamatan if geo.contains(shapes[d.id].polygons, d.lon, d.lat)]
    assert len(inside) >= 27, sorted(set(shapes) - set(inside))
    min_lon, min_lat, max_lon, max_lat = geo.bbox(city._shapes) or (0, 0, 0, 0)
    assert 107.5 < min_lon < max_lon < 107.8 and -7.0 < min_lat < max_lat < -6.8
