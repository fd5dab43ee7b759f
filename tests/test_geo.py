"""District boundary files (pisman/geo.py): every bad input is refused with a reason that names
the feature and the district; a good file gives one MultiPolygon per district."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pisman import geo

DISTRICTS = ["north", "south"]
SQUARE = [[107.57, -6.925], [107.64, -6.925], [107.64, -6.87], [107.57, -6.87], [107.57, -6.925]]
LOWER = [[107.57, -6.98], [107.64, -6.98], [107.64, -6.925], [107.57, -6.925], [107.57, -6.98]]


def feature(district: Any, geometry: Any) -> dict[str, Any]:
    return {"type": "Feature", "properties": {"district": district}, "geometry": geometry}


def polygon(*rings: Any) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def collection(*features: Any) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


GOOD = collection(feature("north", polygon(SQUARE)), feature("south", polygon(LOWER)))


def refused(data: bytes, districts: list[str] = DISTRICTS, **kw: Any) -> str:
    with pytest.raises(geo.BoundaryError) as err:
        geo.parse_boundaries(data, districts, **kw)
    return str(err.value)


def test_good_file_gives_one_multipolygon_per_district_in_city_file_order() -> None:
    shapes = geo.parse_boundaries(GOOD, ["south", "north"])
    assert [s.district_id for s in shapes] == ["south", "north"]
    assert shapes[1].geometry() == {"type": "MultiPolygon", "coordinates": [[SQUARE]]}
    assert geo.bbox(shapes) == (107.57, -6.98, 107.64, -6.87)
    assert geo.bbox([]) is None


def test_multipolygon_with_a_hole_and_altitudes_is_accepted() -> None:
    hole = [[107.60, -6.90], [107.61, -6.90], [107.61, -6.89], [107.60, -6.89], [107.60, -6.90]]
    with_altitude = [[*p, 700.0] for p in LOWER]
    multi = {"type": "MultiPolygon", "coordinates": [[SQUARE, hole], [with_altitude]]}
    (shape,) = geo.parse_boundaries(collection(feature("north", multi)), ["north"])
    assert len(shape.polygons) == 2 and len(shape.polygons[0]) == 2
    assert geo.contains(shape.polygons, 107.58, -6.88)
    assert not geo.contains(shape.polygons, 107.605, -6.895)  # in the hole
    assert not geo.contains(shape.polygons, 107.50, -6.99)


def test_invalid_json_is_refused_with_line_and_column() -> None:
    assert "not valid JSON" in refused(b'{"type": "FeatureCollection",\n "features": [}')
    assert "not valid JSON" in refused(b'{"type": NaN}')
    assert "not UTF-8" in refused(b"\xff\xfe{}")
    assert "not valid JSON" in refused(b"[" * 100_000)
    assert "not valid JSON" in refused(b'{"a": 1' + b"0" * 5000 + b"}")


def test_self_evidently_huge_file_is_refused_before_parsing() -> None:
    message = refused(b" " * (geo.MAX_BYTES + 1))
    assert "more than the" in message and "simplify" in message


def test_too_many_positions_are_refused() -> None:
    n = geo.MAX_VERTICES + 10
    ring = [
        [107.6 + 0.05 * math.cos(2 * math.pi * i / n), -6.9 + 0.05 * math.sin(2 * math.pi * i / n)]
        for i in range(n)
    ]
    ring.append(ring[0])
    assert "simplify" in refused(collection(feature("north", polygon(ring))), ["north"])


def test_not_a_feature_collection_is_refused() -> None:
    assert "FeatureCollection" in refused(b"[]")
    assert "FeatureCollection" in refused(json.dumps(polygon(SQUARE)).encode())
    assert "non-empty list" in refused(b'{"type": "FeatureCollection", "features": []}')
    assert "must be a GeoJSON Feature" in refused(collection({"type": "Point"}))


def test_unknown_district_is_refused_naming_it() -> None:
    data = collection(
        feature("north", polygon(SQUARE)),
        feature("south", polygon(LOWER)),
        feature("west", polygon(LOWER)),
    )
    assert "features.2 (west): unknown district 'west'" in refused(data)


def test_feature_without_a_district_id_is_refused() -> None:
    data = collection({"type": "Feature", "properties": {"name": "North"}, "geometry": None})
    assert "features.0: properties.district must name a district" in refused(data)


def test_missing_district_is_refused_unless_listed_without() -> None:
    data = collection(feature("north", polygon(SQUARE)))
    assert "no feature for district(s) south" in refused(data)
    shapes = geo.parse_boundaries(data, DISTRICTS, without=["south"])
    assert [s.district_id for s in shapes] == ["north"]
    assert "listed under 'without'" in refused(GOOD, without=["south"])
    assert "without: unknown district(s) east" in refused(data, without=["east"])


def test_district_with_two_features_is_refused() -> None:
    data = collection(
        feature("north", polygon(SQUARE)),
        feature("south", polygon(LOWER)),
        feature("north", polygon(LOWER)),
    )
    assert "features.2 (north): district has more than one feature" in refused(data)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Point", "coordinates": [107.6, -6.9]},
        {"type": "LineString", "coordinates": SQUARE},
        {"type": "GeometryCollection", "geometries": []},
        None,
        "Polygon",
    ],
)
def test_geometry_that_is_not_a_polygon_is_refused(geometry: Any) -> None:
    data = collection(feature("north", geometry), feature("south", polygon(LOWER)))
    message = refused(data)
    assert message.startswith("features.0 (north)")
    assert "Polygon or MultiPolygon" in message


def test_unclosed_ring_is_refused_showing_both_ends() -> None:
    data = collection(feature("north", polygon(SQUARE[:-1])), feature("south", polygon(LOWER)))
    message = refused(data)
    assert "features.0 (north) ring 0: ring is not closed" in message
    assert "[107.57, -6.925]" in message and "[107.57, -6.87]" in message


def test_ring_of_three_positions_and_flat_ring_are_refused() -> None:
    short = [[107.57, -6.9], [107.6, -6.9], [107.57, -6.9]]
    assert "at least 4 positions" in refused(
        collection(feature("north", polygon(short))), ["north"]
    )
    flat = [[107.57, -6.9], [107.6, -6.9], [107.63, -6.9], [107.57, -6.9]]
    assert "no area" in refused(collection(feature("north", polygon(flat))), ["north"])


@pytest.mark.parametrize(
    "position",
    [[-6.9, 107.6], [181.0, -6.9], [107.6, -91.0], [790_000.0, 9_236_000.0], [10**400, 0]],
)
def test_coordinates_out_of_range_are_refused(position: list[float]) -> None:
    ring = [position, [107.64, -6.925], [107.64, -6.87], position]
    message = refused(collection(feature("north", polygon(ring))), ["north"])
    assert "coordinates out of range" in message or "finite" in message


@pytest.mark.parametrize("position", [[107.6], [107.6, "-6.9"], [True, -6.9], "107.6,-6.9", []])
def test_malformed_positions_are_refused(position: Any) -> None:
    ring = [position, [107.64, -6.925], [107.64, -6.87], position]
    message = refused(collection(feature("north", polygon(ring))), ["north"])
    assert "features.0 (north) ring 0 position 0" in message


@pytest.mark.parametrize("coordinates", [[], [[]], "x", None, [[[]]]])
def test_empty_or_malformed_polygons_are_refused(coordinates: Any) -> None:
    data = collection(feature("north", {"type": "MultiPolygon", "coordinates": coordinates}))
    assert refused(data, ["north"]).startswith("features.0 (north)")


@given(st.binary(max_size=300))
def test_any_bytes_give_shapes_or_a_boundary_error(data: bytes) -> None:
    try:
        geo.parse_boundaries(data, DISTRICTS)
    except geo.BoundaryError as exc:
        assert str(exc)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.integers()
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@given(json_values)
def test_any_geometry_gives_shapes_or_a_boundary_error(geometry: Any) -> None:
    data = collection(feature("north", geometry))
    try:
        geo.parse_boundaries(data, ["north"])
    except geo.BoundaryError as exc:
        assert str(exc).startswith("features.0 (north)")
