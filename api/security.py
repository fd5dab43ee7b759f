"""Security headers on every API response (an ASGI middleware: no per-request task or copy)."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.responses import HTMLResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# JSON and files only: nothing may run, load or frame.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The interactive docs page runs Swagger UI's bundle from this server and starts it with one
# inline script, admitted by its hash.
DOCS_CSP_TEMPLATE = (
    "default-src 'none'; script-src 'self'{scripts}; style-src 'self'{styles}; "
    "img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_INLINE = {
    tag: re.compile(rf"<{tag}>(.*?)</{tag}>", flags=re.S | re.I) for tag in ("script", "style")
}

COMMON_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    # Answers carry data read with a key: no browser or proxy may keep them.
    (b"cache-control", b"no-store"),
)


class SecurityHeaders:
    """Add nosniff, DENY framing, no referrer, no-store and a Content-Security-Policy."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers the response does not set itself."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = (*COMMON_HEADERS, (b"content-security-policy", API_CSP.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _hash_sources(bodies: list[str]) -> str:
    """CSP sources admitting exactly these inline bodies, each after a space."""
    digests = (base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() for b in bodies)
    return "".join(f" 'sha256-{d}'" for d in digests)


def with_docs_csp(page: HTMLResponse) -> HTMLResponse:
    """Give a docs page a CSP admitting only this server and the page's own inline blocks."""
    html = bytes(page.body).decode()
    scripts, styles = (_hash_sources(_INLINE[tag].findall(html)) for tag in ("script", "style"))
    page.headers["content-security-policy"] = DOCS_CSP_TEMPLATE.format(
        scripts=scripts, styles=styles
    )
    return page
