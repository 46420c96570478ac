"""Dependencies: the application objects a route needs, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from nomosx.app import NomosX
from nomosx.jobs.base import JobQueue


def get_app(request: Request) -> NomosX:
    app: NomosX = request.app.state.nomosx
    return app


def get_jobs(request: Request) -> JobQueue:
    jobs: JobQueue = request.app.state.jobs
    return jobs


AppDep = Annotated[NomosX, Depends(get_app)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
