"""Exports of a stored brief beyond Markdown, HTML and JSON: its sources as BibTeX."""

from __future__ import annotations

import re

from fastapi import APIRouter, Response

from nomosx.api.auth import CurrentUser, owner_of
from nomosx.api.deps import AppDep
from nomosx.api.schemas import Problem
from nomosx.export.bibtex import brief_bibtex

router = APIRouter(prefix="/api/briefs", tags=["briefs"])

BIBTEX_MEDIA_TYPE = "application/x-bibtex"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9-]")


@router.get(
    "/{brief_id}/sources.bib",
    response_class=Response,
    responses={
        200: {
            "content": {BIBTEX_MEDIA_TYPE: {"schema": {"type": "string"}}},
            "description": "the brief's sources as BibTeX, in [SRC-n] order (UTF-8)",
        },
        404: {"model": Problem, "description": "no stored brief of the caller has this id"},
    },
    summary="A brief's sources as BibTeX",
)
async def sources_bib(brief_id: str, app: AppDep, user: CurrentUser) -> Response:
    # another user's brief is missing, exactly like an id that names nothing (404)
    brief = await app.briefs.get(brief_id, owner=owner_of(user))
    name = f"nomosx-{_FILENAME_UNSAFE.sub('', brief.id)[:36]}-sources.bib"
    return Response(
        brief_bibtex(brief),
        media_type=f"{BIBTEX_MEDIA_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
