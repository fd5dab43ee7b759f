"""Plain HTML tables (light, no extra JS): a header row and body rows with stable ids."""

from __future__ import annotations

from collections.abc import Sequence

from dash import html


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    table_id: str,
    row_ids: Sequence[str] | None = None,
    numeric_columns: Sequence[int] = (),
    footer: Sequence[str] | None = None,
) -> html.Table:
    """A table; numeric columns align right; row ids let tests and people find a row."""

    def cells(values: Sequence[str], tag: type[html.Td] | type[html.Th]) -> list[html.Td | html.Th]:
        return [
            tag(v, className="num" if i in numeric_columns else None) for i, v in enumerate(values)
        ]

    # Dash refuses id=None, so a row without an id gets no id prop at all.
    body = [
        html.Tr(cells(values, html.Td), id=row_ids[i])
        if row_ids
        else html.Tr(cells(values, html.Td))
        for i, values in enumerate(rows)
    ]
    parts: list[html.Thead | html.Tbody | html.Tfoot] = [
        html.Thead(html.Tr(cells(headers, html.Th))),
        html.Tbody(body),
    ]
    if footer is not None:
        parts.append(html.Tfoot(html.Tr(cells(footer, html.Th), id=f"{table_id}-total")))
    return html.Table(parts, id=table_id, className="data-table")
