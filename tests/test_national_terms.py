"""Property tests of the national terms over months: exact sums, shares over the covered A,
months without data counting nowhere (pure functions, no database)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.queries.monthly_report import (
    EXACT_TERMS,
    MonthReport,
    future_month,
    month_status,
    national_terms,
    summarize,
)

GRAMS = st.integers(min_value=0, max_value=10**10)


def _month(days: int, covered: int, b_g: int, c_g: int, d_g: int) -> MonthReport:
    """A month with `covered` days of data at 1,500 t/day and the given fates (grams)."""
    if covered == 0:
        report = future_month(date(2026, 1, 1))
        report.coverage.update(status="no_data", days_in_month=days)
        return report
    kg = {k: Decimal(0) for k in EXACT_TERMS}
    kg.update(
        A=Decimal(1_500_000 * covered),
        A_month=Decimal(1_500_000 * days),
        B=Decimal(b_g) / 1000,
        C=Decimal(c_g) / 1000,
        D=Decimal(d_g) / 1000,
    )
    status = "complete" if covered == days else "partial"
    coverage = {"status": status, "days_in_month": days, "days_with_data": covered}
    national = national_terms(dict(kg), days=days, days_with_data=covered)
    return MonthReport("2026-01", national, coverage=coverage, exact_kg=dict(kg))


MONTHS = st.lists(
    st.integers(min_value=28, max_value=31).flatmap(
        lambda days: st.tuples(
            st.just(days), st.integers(min_value=0, max_value=days), GRAMS, GRAMS, GRAMS
        )
    ),
    min_size=1,
    max_size=12,
)


@given(MONTHS)
def test_period_terms_are_exact_sums_with_shares_over_the_covered_days(months) -> None:
    reports = [_month(*m) for m in months]
    out = summarize(reports, "period")
    covered = sum(m[1] for m in months)
    a_kg = Decimal(1_500_000 * covered)
    b_kg = sum((Decimal(m[2]) / 1000 for m in months if m[1]), Decimal(0))
    c_kg = sum((Decimal(m[3]) / 1000 for m in months if m[1]), Decimal(0))
    assert out["days_with_data"] == covered
    assert out["partial"] == (covered < sum(m[0] for m in months))
    if covered == 0:
        # Nothing measured: no A, no shares, nothing unmanaged (never 100 % unmanaged).
        assert out["A_t"] is None and out["B_share"] is None and out["unmanaged_t"] is None
        return
    assert out["A_t"] == float((a_kg / 1000).quantize(Decimal("0.001")))
    assert out["B_t"] == float((b_kg / 1000).quantize(Decimal("0.001")))
    assert out["B_share"] == round(float(b_kg / a_kg), 4)
    assert out["C_share"] == round(float(c_kg / a_kg), 4)
    assert out["unmanaged_t"] == float(((a_kg - b_kg - c_kg) / 1000).quantize(Decimal("0.001")))


@given(st.integers(min_value=28, max_value=31), st.integers(min_value=0, max_value=31))
def test_month_status_follows_the_days_with_data(days: int, covered: int) -> None:
    covered = min(covered, days)
    first = date(2026, 2, 1)
    assert month_status(first, date(2026, 1, 31), days, covered) == "future"
    assert month_status(first, date(2026, 2, 10), days, covered) == "in_progress"
    past = month_status(first, date(2026, 5, 1), days, covered)
    assert past == ("no_data" if covered == 0 else "complete" if covered == days else "partial")
