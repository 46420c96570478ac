"""The web app's pages: ask, follow and read briefs, log in, and the admin dashboard.

Pages are server-rendered (Jinja2, autoescaped) with a little plain JavaScript from
``/static`` that talks to the JSON API with the same key cookie: the ask form posts to
``/api/briefs`` and follows ``/api/briefs/{id}/events``; the dashboard reads
``/api/admin/*``. Nothing is fetched from another site, so the app works offline, and the
Content-Security-Policy allows nothing but this origin.
"""

from __future__ import annotations

import hashlib
import math
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.staticfiles import StaticFiles

from nomosx import __version__
from nomosx.api.auth import owner_of
from nomosx.api.deps import AppDep, JobsDep
from nomosx.auth.models import User
from nomosx.errors import NotFoundError
from nomosx.jobs.base import JobStatus
from nomosx.models import RunStatus
from nomosx.pipeline.events import STAGES
from nomosx.web.session import (
    PageRefused,
    forget_key,
    page_user,
    remember_key,
    safe_next,
    same_origin,
)
from nomosx.web.views import brief_view

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(str(resources.files("nomosx.web") / "static"))
RECENT_BRIEFS = 8
PAGE_SIZE = 20
MAX_FORM_BYTES = 16 * 1024

# every page: scripts, styles and connections of this origin only; no framing
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",  # pages show a user's briefs: never kept by a proxy
}

STAGE_HELP = {
    "scout": "searching the library and the configured providers",
    "index": "merging duplicates",
    "rank": "ranking by relevance, then quality",
    "read": "reading each source's abstract",
    "analyse": "writing the brief's sections",
    "guard": "checking every citation against its source",
    "edit": "rendering the brief",
}


def static_files() -> StaticFiles:
    """The app's CSS and JavaScript, from the installed package (served at ``/static``)."""
    return StaticFiles(directory=STATIC_DIR)


@cache
def asset_version() -> str:
    """A short hash of the static files, appended to their URLs so that a new release is
    never served from a browser's cache (computed once, on the first page)."""
    digest = hashlib.sha256(__version__.encode())
    for path in sorted(STATIC_DIR.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


templates = Jinja2Templates(
    env=Environment(
        loader=PackageLoader("nomosx.web", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


def _render(
    request: Request,
    name: str,
    user: User | None,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    values = {
        "user": user,
        "single_user": bool(request.app.state.single_user),
        "asset_version": asset_version(),
        "version": __version__,
        **context,
    }
    response = templates.TemplateResponse(request, name, values, status_code=status)
    response.headers.update({**SECURITY_HEADERS, **(headers or {})})
    return response


def _refused(request: Request, refusal: PageRefused, user: User | None = None) -> HTMLResponse:
    headers = {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(max(1, math.ceil(refusal.retry_after)))
    titles = {403: "Not allowed", 404: "Not found", 429: "Too many requests"}
    return _render(
        request,
        "error.html.j2",
        user,
        status=refusal.status,
        headers=headers,
        title=titles.get(refusal.status, "Error"),
        message=refusal.message,
    )


async def _signed_in(request: Request) -> User | Response:
    try:
        return await page_user(request)
    except PageRefused as refusal:
        return _refused(request, refusal)


# --------------------------------------------------------------------------- pages


@router.get("/", response_class=HTMLResponse)
async def ask_page(request: Request, app: AppDep) -> Response:
    """Ask a question (the form), and the user's most recent briefs."""
    user = await _signed_in(request)
    if isinstance(user, Response):
        return user
    recent = await app.list_briefs(limit=RECENT_BRIEFS, owner=owner_of(user))
    return _render(
        request,
        "ask.html.j2",
        user,
        recent=recent,
        stages=STAGES,
        stage_help=STAGE_HELP,
        default_sources=app.settings.pipeline.sources,
    )


@router.get("/briefs", response_class=HTMLResponse)
async def briefs_page(
    request: Request,
    app: AppDep,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """Every brief of the user, newest first, a page at a time."""
    user = await _signed_in(request)
    if isinstance(user, Response):
        return user
    owner = owner_of(user)
    items = await app.list_briefs(limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, owner=owner)
    total = await app.briefs.count(owner=owner)
    return _render(
        request,
        "briefs.html.j2",
        user,
        items=items,
        page=page,
        pages=max(1, math.ceil(total / PAGE_SIZE)),
        total=total,
    )


@router.get("/briefs/{brief_id}", response_class=HTMLResponse)
async def brief_page(request: Request, brief_id: str, app: AppDep, jobs: JobsDep) -> Response:
    """A brief: the reader when it is written, its live progress while its job runs, or
    why it failed."""
    user = await _signed_in(request)
    if isinstance(user, Response):
        return user
    owner = owner_of(user)
    try:
        brief = await app.briefs.get(brief_id, owner=owner)
    except NotFoundError:
        brief = None
    if brief is not None:
        return _render(request, "brief.html.j2", user, view=brief_view(brief))
    info = await jobs.info(brief_id)
    if info is not None and info.owner_id == owner:
        if info.status in (JobStatus.PENDING, JobStatus.RUNNING):
            return _render(
                request,
                "progress.html.j2",
                user,
                brief_id=brief_id,
                question=info.question,
                stages=STAGES,
                stage_help=STAGE_HELP,
            )
        message = info.error or f"the brief's job ended {info.status.value}"
        return _render(request, "failed.html.j2", user, question=info.question, message=message)
    run = await app.runs.for_brief(brief_id, owner=owner)
    if run is not None and run.status is not RunStatus.SUCCEEDED:
        message = run.error or "the brief was not written"
        if run.status is RunStatus.RUNNING:
            message = "the brief is being written by another process; reload in a moment"
        return _render(request, "failed.html.j2", user, question=run.question, message=message)
    return _refused(request, PageRefused(404, f"There is no brief {brief_id!r}."), user)


@router.get("/briefs/{brief_id}/view", response_class=HTMLResponse)
async def brief_fragment(request: Request, brief_id: str, app: AppDep) -> Response:
    """The brief's article alone, for the ask page to show once its job is done."""
    user = await _signed_in(request)
    if isinstance(user, Response):
        return user
    try:
        brief = await app.briefs.get(brief_id, owner=owner_of(user))
    except NotFoundError:
        return _render(request, "_missing.html.j2", user, status=404, brief_id=brief_id)
    return _render(request, "_brief.html.j2", user, view=brief_view(brief))


@router.get("/admin", response_class=HTMLResponse)
async def admin_page(request: Request) -> Response:
    """The dashboard's frame; its script fills it from ``/api/admin/*``."""
    user = await _signed_in(request)
    if isinstance(user, Response):
        return user
    if not user.is_admin:
        refusal = PageRefused(403, "The dashboard is for administrators only.")
        return _refused(request, refusal, user)
    return _render(request, "admin.html.j2", user)


# --------------------------------------------------------------------------- login


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form body (no multipart parser is needed for two fields)."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {name: values[0] for name, values in fields.items() if values}


@router.get("/login", response_class=HTMLResponse)
async def login_page(
    request: Request, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    target = safe_next(next_page)
    if request.app.state.single_user:
        return RedirectResponse(target, status_code=303)
    return _render(request, "login.html.j2", None, next=target, error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, app: AppDep) -> Response:
    form = await _form(request)
    target = safe_next(form.get("next"))
    if not same_origin(request):
        return _refused(request, PageRefused(403, "Log in from this site's own login page."))
    key = form.get("key", "").strip()
    user = await app.users.authenticate(key) if key else None
    if user is None:
        return _render(
            request,
            "login.html.j2",
            None,
            status=401,
            next=target,
            error="That API key is unknown or revoked, or its user is disabled.",
        )
    response = RedirectResponse(target, status_code=303)
    remember_key(response, key, app.settings)
    return response


@router.get("/logout", response_class=HTMLResponse)
async def logout_page(request: Request) -> Response:
    """A confirmation form: logging out changes state, so it is a POST."""
    return _render(request, "logout.html.j2", None)


@router.post("/logout")
async def logout(request: Request, app: AppDep) -> Response:
    if not same_origin(request):
        return _refused(request, PageRefused(403, "Log out from this site's own pages."))
    response = RedirectResponse("/login", status_code=303)
    forget_key(response, app.settings)
    return response
