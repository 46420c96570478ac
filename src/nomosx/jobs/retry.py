"""Which failures a brief job tries again, how long it waits, and what callers are told.

A failure that is the request's own (an invalid question, nothing in the library about
it, a brief that cannot pass its citation check, a caller over quota) would fail again:
it ends the job at once. Anything else (a provider or database that failed, a job that
ran out of time, a bug) may pass on another try, after a delay that doubles each time.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomosx.errors import AccessError, GuardError, InputError, NomosXError, NoSourcesError

MAX_BACKOFF = 3600.0  # however many tries, none waits more than an hour

PERMANENT: tuple[type[NomosXError], ...] = (InputError, NoSourcesError, GuardError, AccessError)


@dataclass(frozen=True, slots=True)
class Failure:
    code: str  # shown to callers (SSE ``error``, ``GET /api/briefs/{id}``)
    message: str  # shown to callers: never a stack trace or an internal detail
    detail: str  # for the dead letter and the logs
    permanent: bool


def describe(exc: BaseException, *, job_timeout: float) -> Failure:
    if isinstance(exc, NomosXError):
        return Failure(
            code=type(exc).__name__,
            message=str(exc),
            detail=str(exc),
            permanent=isinstance(exc, PERMANENT),
        )
    if isinstance(exc, TimeoutError):
        message = f"the brief took longer than {job_timeout:g} s"
        return Failure(code="JobTimeout", message=message, detail=message, permanent=False)
    return Failure(
        code="InternalError",
        message=type(exc).__name__,
        detail=f"{type(exc).__name__}: {exc}",
        permanent=False,
    )


def backoff(retry_delay: float, attempt: int) -> float:
    """Seconds before the try after ``attempt`` (1-based): ``retry_delay``, then doubling
    (at most ``MAX_BACKOFF``)."""
    return min(MAX_BACKOFF, retry_delay * 2.0 ** max(0, attempt - 1))
