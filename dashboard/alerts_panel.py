"""The alerts panel shown on the overview and the bins page (filled by its own callbacks)."""

from __future__ import annotations

from dash import html


def panel(page: str) -> html.Div:
    """The panel's place on a page; `page` names it (ids: alerts-panel-<page>)."""
    return html.Div(id=f"alerts-panel-{page}", className="alerts-panel")
