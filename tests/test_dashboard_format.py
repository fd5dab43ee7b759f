"""Number formats and translations the dashboard shows (no browser)."""

from __future__ import annotations

from datetime import date

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
    assert fmt.percent(-0.00001, "en") == "0.0%"


def test_numbers_round_half_up_in_both_locales() -> None:
    assert fmt.number(2.25, "id", 1) == "2,3" and fmt.number(2.25, "en", 1) == "2.3"
    assert fmt.number(0.5, "en", 0) == "1" and fmt.count(1_234_567, "id") == "1.234.567"
    assert fmt.percent(0.00125, "id", 2) == "0,13%" and fmt.percent(1.5, "en", 0) == "150%"
    assert fmt.tonnes(-1234.56, "en", 1) == "-1,234.6 t"


def test_numbers_that_are_not_figures_are_shown_as_unknown() -> None:
    assert fmt.number(float("inf"), "id") == "–" and fmt.percent(float("nan"), "en") == "–"
    assert fmt.percent(None, "en") == "–" and fmt.count(None, "id") == "–"


def test_one_date_style_per_language() -> None:
    """CLDR's medium date everywhere: days, timestamps, the date pickers and chart axes."""
    assert fmt.day("2026-11-26", "id") == "26 Nov 2026"
    assert fmt.day("2026-11-26", "en") == "Nov 26, 2026"
    assert fmt.day(date(2026, 5, 3), "id") == "3 Mei 2026"
    assert fmt.timestamp("2026-11-26T14:05:00+07:00", "id") == "26 Nov 2026 14.05"
    assert fmt.timestamp("2026-11-26T14:05:00+07:00", "en") == "Nov 26, 2026, 2:05 PM"
    assert (
        fmt.month("2026-08", "id") == "Agustus 2026" and fmt.month("2026-08", "en") == "August 2026"
    )
    # The day inside a timestamp is written exactly as a day alone.
    for lang in ("id", "en"):
        assert fmt.timestamp("2026-01-02T00:00:00+07:00", lang).startswith(
            fmt.day("2026-01-02", lang)
        )
    assert fmt.timestamp(None, "id") == "–" and fmt.day(None, "en") == "–"
    assert fmt.timestamp("not a time", "en") == "not a time"
    # The pickers' and Plotly's patterns render the same text as Babel (checked by hand-rolling).
    moment = date(2026, 11, 26)
    assert moment.strftime(fmt.PLOTLY_DATE_FORMAT["en"]) == fmt.day(moment, "en")
    assert moment.strftime(fmt.PLOTLY_DATE_FORMAT["id"]) == fmt.day(moment, "id")


def test_durations_in_both_languages() -> None:
    assert fmt.duration(3 * 3600, "id") == "3,0 jam" and fmt.duration(3 * 3600, "en") == "3.0 h"
    assert fmt.duration(2 * 86400, "id") == "2,0 hari" and fmt.duration(300, "en") == "5 min"
    assert fmt.duration(10, "id") == "< 1 menit" and fmt.duration(None, "en") == "–"


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
