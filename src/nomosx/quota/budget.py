"""The daily LLM budget per user, read from the cost ledger (what was really spent)."""

from __future__ import annotations

from datetime import datetime, timedelta

from nomosx.errors import BudgetExceeded
from nomosx.models import utcnow
from nomosx.store.repositories import LLMCallRepository


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class BudgetGuard:
    """Refuses new LLM work once a user's spend since 00:00 UTC reaches their budget.

    Checked when work is admitted: a brief already running finishes (and may go a little
    over); the next one is refused until the day turns.
    """

    def __init__(self, ledger: LLMCallRepository) -> None:
        self.ledger = ledger

    async def spent_today(self, user_id: str, *, now: datetime | None = None) -> float:
        return await self.ledger.spent(user_id, day_start(now or utcnow()))

    async def check(
        self, user_id: str, budget: float | None, *, now: datetime | None = None
    ) -> None:
        if budget is None:
            return
        now = now or utcnow()
        spent = await self.spent_today(user_id, now=now)
        if spent < budget:
            return
        renew = day_start(now) + timedelta(days=1)
        wait = max(1, int((renew - now).total_seconds()))
        hours, minutes = divmod(wait // 60, 60)
        raise BudgetExceeded(
            f"your daily LLM budget of ${budget:.2f} is spent (${spent:.4f} since 00:00 "
            f"UTC); it renews at 00:00 UTC, in {hours} h {minutes:02d} min",
            retry_after=wait,
        )
