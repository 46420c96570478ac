"""Dead letters: brief jobs that failed every try, kept for an operator to look at.

The job queue keeps a failed job's state only for a while (Redis, ``retain_events``); the
dead letter stays in the database with what was asked, by whom, and the last error in
full (the API shows callers a short code and message only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from nomosx.store.db import Database
from nomosx.store.tables import DeadLetterRow

MAX_ERROR_CHARS = 10_000  # a traceback-sized message is enough to diagnose


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    brief_id: str
    question: str
    owner_id: str | None
    attempts: int
    error_code: str
    error: str
    created_at: datetime


class DeadLetterRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self,
        *,
        brief_id: str,
        question: str,
        owner_id: str | None,
        attempts: int,
        error_code: str,
        error: str,
    ) -> None:
        async with self.db.session() as session:
            session.add(
                DeadLetterRow(
                    brief_id=brief_id,
                    question=question,
                    owner_id=owner_id,
                    attempts=attempts,
                    error_code=error_code[:64],
                    error=error[:MAX_ERROR_CHARS],
                )
            )

    async def recent(self, limit: int = 20) -> list[DeadLetter]:
        """The newest dead letters first."""
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(DeadLetterRow)
                    .order_by(DeadLetterRow.created_at.desc(), DeadLetterRow.id.desc())
                    .limit(limit)
                )
            ).all()
        return [
            DeadLetter(
                id=r.id,
                brief_id=r.brief_id,
                question=r.question,
                owner_id=r.owner_id,
                attempts=r.attempts,
                error_code=r.error_code,
                error=r.error,
                created_at=r.created_at,
            )
            for r in rows
        ]
