"""pisman/domain.py and the SQL vocabulary tables name the same things."""

from __future__ import annotations

from enum import StrEnum

import psycopg
import pytest

from pisman.domain import (
    ORGANIC_MATERIALS,
    Category,
    DeviceKind,
    Material,
    ProcessKind,
    SiteType,
    Stream,
    TargetMetric,
)

PAIRS: list[tuple[str, type[StrEnum]]] = [
    ("site_type", SiteType),
    ("material", Material),
    ("stream", Stream),
    ("category", Category),
    ("device_kind", DeviceKind),
    ("process_kind", ProcessKind),
    ("target_metric", TargetMetric),
]


@pytest.mark.parametrize(("table", "enum"), PAIRS, ids=[t for t, _ in PAIRS])
def test_sql_vocabulary_matches_the_domain_module(
    db_url: str, table: str, enum: type[StrEnum]
) -> None:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(f"SELECT code, label_id, label_en FROM {table}").fetchall()
    assert {r[0] for r in rows} == {e.value for e in enum}
    # Bahasa Indonesia first, English too: every code has both labels.
    assert all(r[1] and r[2] for r in rows)


def test_organic_materials_agree(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        organic = {r[0] for r in conn.execute("SELECT code FROM material WHERE organic")}
    assert organic == {m.value for m in ORGANIC_MATERIALS}
