"""Who is looking at a page, and the key cookie that says so.

Pages authenticate exactly like the API (``nomosx.api.auth.current_user``: the cookie
holds the API key, requests are counted against the user's limit), but answer the way a
browser needs: no key, or a bad one, is a redirect to ``/login`` (which comes back to the
page after), not a JSON 401.

The cookie is HttpOnly (no script can read the key) and SameSite=Strict (no other site's
page or form sends it), Secure when ``NOMOSX_AUTH__COOKIE_SECURE`` is set.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from nomosx.api.auth import KEY_COOKIE, current_user
from nomosx.auth.models import User
from nomosx.config import Settings
from nomosx.errors import Forbidden, QuotaExceeded, Unauthenticated

COOKIE_MAX_AGE = 30 * 24 * 3600  # a month; logging out, or revoking the key, ends it sooner


class PageRefused(Exception):
    """The page cannot be shown to this caller; ``status`` and ``message`` say why."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


async def page_user(request: Request) -> User | RedirectResponse:
    """The signed-in user, or a redirect to the login page (dropping a cookie whose key
    no longer works). Raises ``PageRefused`` for a caller who is known but refused."""
    try:
        return await current_user(request)
    except Unauthenticated:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        redirect = RedirectResponse(f"/login?next={quote(target, safe='/')}", status_code=303)
        if KEY_COOKIE in request.cookies:
            forget_key(redirect, request.app.state.nomosx.settings)
        return redirect
    except Forbidden as exc:  # single-user mode, asked from another machine
        raise PageRefused(403, str(exc)) from exc
    except QuotaExceeded as exc:
        raise PageRefused(429, str(exc), retry_after=exc.retry_after) from exc


def safe_next(value: str | None) -> str:
    """Where to go after logging in: a path of this site only (never ``//other.host`` or
    ``https://…``, which would make the login page an open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in value):
        return "/"
    return value


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this site's own pages: the ``Origin`` header, when
    the browser sends one, must name this host (defence in depth with SameSite)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def remember_key(response: Response, key: str, settings: Settings) -> None:
    response.set_cookie(
        KEY_COOKIE,
        key,
        max_age=COOKIE_MAX_AGE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.auth.cookie_secure,
    )


def forget_key(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        KEY_COOKIE,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.auth.cookie_secure,
    )
