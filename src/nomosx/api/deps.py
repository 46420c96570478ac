"""Dependencies: the application objects a route needs, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from nomosx.app import NomosX
from nomosx.jobs.base import JobQueue
from nomosx.quota.service import Quota


def get_app(request: Request) -> NomosX:
    app: NomosX = request.app.state.nomosx
    return app


def get_jobs(request: Request) -> JobQueue:
    jobs: JobQueue = request.app.state.jobs
    return jobs


def get_quota(request: Request) -> Quota:
    quota: Quota = request.app.state.quota
    return quota


AppDep = Annotated[NomosX, Depends(get_app)]
QuotaDep = Annotated[Quota, Depends(get_quota)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
