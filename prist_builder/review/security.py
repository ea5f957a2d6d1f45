"""Who may talk to the review app, and what a page may load.

- Binding: loopback by default; another address needs an access token, or the app refuses
  to start (:func:`check_bind`).
- Token: with a token, every request but the login page and the static files must carry the
  session cookie set by ``POST /login`` (or ``Authorization: Bearer <token>``); the browser
  is shown a page that asks for the token.
- Forms carry a per-process CSRF value, so another web site cannot post decisions to a
  reviewer's local server; on loopback, the ``Host`` header must be a loopback name (DNS
  rebinding).
- Every response gets a strict Content-Security-Policy: scripts, styles and images only
  from the app itself (images also as ``data:``), no framing.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable

from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
"""Host names always accepted on a loopback server."""
COOKIE = "prist_review_session"
"""Name of the session cookie set after the token was given."""
TOKEN_ENV = "PRIST_REVIEW_TOKEN"
"""Environment variable holding the access token (preferred over ``--token``: not in ``ps``)."""
MIN_TOKEN_CHARS = 16
"""Shortest access token accepted."""
OPEN_PATHS = ("/login", "/static/")
"""Paths served without the token."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Content-Security-Policy of every page."""


class BindRefused(ValueError):
    """The requested address may not be bound without a (good enough) token."""


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and loopback IP addresses (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse a non-loopback ``host`` without a token of at least :data:`MIN_TOKEN_CHARS`.

    Raises:
        BindRefused: with the one-line reason.
    """
    if is_loopback(host):
        return
    if not token:
        raise BindRefused(
            f"binding {host} exposes the run beyond this machine: set {TOKEN_ENV} (or --token) "
            "to an access token the page will ask for"
        )
    if len(token) < MIN_TOKEN_CHARS:
        raise BindRefused(f"the access token has {len(token)} characters; use at least {MIN_TOKEN_CHARS}")


def session_value(token: str) -> str:
    """The cookie value for ``token``: a keyed hash, so the cookie never holds the token itself."""
    return hmac.new(token.encode("utf-8"), b"prist-review-session", "sha256").hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


class Guard(BaseHTTPMiddleware):
    """Host check, token gate and security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, token: str | None, loopback: bool, login_page: Callable[..., Response]) -> None:
        super().__init__(app)
        self.token = token
        self.loopback = loopback
        self.login_page = login_page

    def _authorised(self, request: Request) -> bool:
        if self.token is None:
            return True
        cookie = request.cookies.get(COOKIE, "")
        if cookie and same(cookie, session_value(self.token)):
            return True
        header = request.headers.get("authorization", "")
        return header.startswith("Bearer ") and same(header[len("Bearer ") :], self.token)

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        """Refuse, ask for the token, or serve, then add the security headers."""
        host = (request.url.hostname or "").strip("[]")
        if self.loopback and host not in LOOPBACK_NAMES and not is_loopback(host):
            response: Response = PlainTextResponse("unknown host", status_code=400)
        elif self._authorised(request) or request.url.path.startswith(OPEN_PATHS):
            response = await call_next(request)
        elif request.method == "GET":
            response = self.login_page(request, status_code=401)
        else:
            response = PlainTextResponse("access token required", status_code=401)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        return response


def new_csrf() -> str:
    """A fresh per-process CSRF value."""
    return secrets.token_urlsafe(24)


def login_response(token: str | None, given: str, target: str) -> Response | None:
    """After ``POST /login``: a redirect carrying the session cookie, or ``None`` for a wrong token."""
    if token is None or not same(given, token):
        return None
    target = target if target.startswith("/") and not target.startswith(("//", "/\\")) else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="strict")
    return response
