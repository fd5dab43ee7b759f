"""Number formats and translations the dashboard shows (no browser)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dashboard import format as fmt
from dashboard.format import label
from dashboard.i18n import TEXT, as_lang, t
from pisman.contract import Label
from pisman.domain import Category


def test_indonesian_numbers_use_dot_for_thousands_and_comma_for_decimals() -> None:
    assert fmt.tonnes(1234.5, "id") == "1.234,5 t"
    assert fmt.tonnes(1234.5, "en") == "1,234.5 t"
    assert fmt.tonnes(13738, "id", 0) == "13.738 t"
    assert fmt.percent(0.2135, "id") == "21,4%"
    assert fmt.percent(0.2135, "en") == "21.4%"
    assert fmt.tonnes(None, "id") == "– t"


def test_negative_zero_is_shown_as_zero() -> None:
    assert fmt.number(-0.01, "id", 1) == "0,0"


@given(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False), st.integers(min_value=0, max_value=3)
)
def test_indonesian_and_english_formats_are_the_same_number(value: float, decimals: int) -> None:
    indonesian, english = fmt.number(value, "id", decimals), fmt.number(value, "en", decimals)
    assert indonesian.replace(".", "").replace(",", ".") == english.replace(",", "")


def test_every_text_has_both_languages_and_unknown_language_falls_back_to_indonesian() -> None:
    assert all(pair[0] and pair[1] for pair in TEXT.values())
    assert as_lang("fr") == "id" and as_lang(None) == "id" and as_lang("en") == "en"
    assert t("nav_overview", "id") == "Ringkasan" and t("nav_overview", "en") == "Overview"
    assert t("trend_title", "en", days=90) == "Trend, last 90 days"


def test_labels_come_from_the_apis_meta_lists() -> None:
    categories = [Label[Category](code=Category.REDUCE, label_id="Kurangi", label_en="Reduce")]
    assert label(categories, "reduce", "id") == "Kurangi"
    assert label(categories, "reduce", "en") == "Reduce"
    assert label(categories, "unknown", "en") == "unknown"


def test_a_table_without_row_ids_renders() -> None:
    """Dash refuses `id=None`: rows without ids must be built without the prop."""
    from dashboard.tables import table

    t = table(["a", "b"], [["1", "2"], ["3", "4"]], table_id="t", numeric_columns=(1,))
    rows = t.children[1].children
    assert len(rows) == 2 and all(getattr(r, "id", None) is None for r in rows)
    with_ids = table(["a"], [["1"]], table_id="u", row_ids=["r1"])
    assert with_ids.children[1].children[0].id == "r1"
