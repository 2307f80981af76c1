"""What every response of the centre tells the browser, and which Host it answers to.

The pages load their scripts and stylesheets from /static/ only: no inline
<script>, no <style> element, no style="" attribute, no on...= handler (the
scripts set styles through classes, data-* attributes and `hidden`).  So the
content policy allows the centre's own origin and nothing else; a script an
attacker slips into a page cannot run, and no other site may frame a page.
The <script type="application/json"> data blocks are never executed and need
no exception.  /docs is the one page built by a library (Swagger UI from its
CDN, one inline bootstrap script): it gets its own policy, naming that CDN
and the script's hash (docs_policy).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dashboard.settings import Settings, host_header_form

PAGE_POLICY = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "form-action 'self'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
))

HEADERS = (
    ("Content-Security-Policy", PAGE_POLICY),
    ("X-Frame-Options", "DENY"),  # frame-ancestors for browsers without CSP 2
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)
# two years, the deployment's nginx example too; no includeSubDomains: the
# centre's name may share a domain with sites it knows nothing about
HSTS = ("Strict-Transport-Security", "max-age=63072000")

# names only a browser on the centre's own machine sends: always answered
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
ANY_ADDRESS = ("0.0.0.0", "[::]")

SWAGGER_CDN = "https://cdn.jsdelivr.net"
SWAGGER_ICON = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


class SecurityHeaders:
    """ASGI middleware: HEADERS on every HTTP response (pages, API, stream,
    static files, errors) unless the route set its own; HSTS when the request
    came over HTTPS (uvicorn takes X-Forwarded-Proto from a trusted proxy) or
    `hsts` says a TLS proxy is always in front."""

    def __init__(self, app: ASGIApp, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = self.hsts or scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS:
                    headers.setdefault(name, value)
                if tls:
                    headers.setdefault(*HSTS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def trusted_hosts(settings: Settings) -> list[str]:
    """Host header values the centre answers to (TrustedHostMiddleware's list):
    the loopback names, the address it listens on unless that is every
    address, and settings.allowed_hosts."""
    hosts = [*LOOPBACK_HOSTS]
    listen = host_header_form(settings.host)
    if listen not in ANY_ADDRESS:
        hosts.append(listen)
    hosts.extend(settings.allowed_hosts)
    return list(dict.fromkeys(hosts))


def script_hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


def docs_policy(html: str) -> str:
    """The policy for Swagger UI's page: its CDN, its icon, and exactly the
    inline scripts in `html` (by hash); inline styles, which its bundle
    applies, and data: images from its stylesheet."""
    scripts = " ".join(script_hash(s) for s in _INLINE_SCRIPT.findall(html))
    return "; ".join((
        "default-src 'none'",
        f"script-src 'self' {SWAGGER_CDN} {scripts}",
        f"style-src 'self' {SWAGGER_CDN} 'unsafe-inline'",
        f"img-src 'self' data: {SWAGGER_ICON}",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ))
