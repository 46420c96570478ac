"""Repositories: the only code that writes SQL (all of it through bound parameters)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, ClassVar

from sqlalchemy import Select, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from nomosx.errors import NotFoundError, StoreError
from nomosx.models import (
    Author,
    Brief,
    LLMCall,
    PipelineRun,
    RunStatus,
    Source,
    StageRecord,
    Usage,
    utcnow,
)
from nomosx.sources.normalise import normalise_title
from nomosx.store.convert import apply_source, content_hash, row_to_source
from nomosx.store.db import Database
from nomosx.store.tables import (
    AuthorRow,
    AuthorshipRow,
    BriefRow,
    LibraryStateRow,
    LLMCallRow,
    PipelineRunRow,
    SourceRow,
)

_KEY_BATCH = 500


class Everyone(Enum):
    """Owner filter meaning "no filter" (the CLI, admins): not the same as ``None``, which
    selects what the CLI wrote (no owner)."""

    EVERYONE = "everyone"


EVERYONE = Everyone.EVERYONE
Owner = str | None | Everyone


@dataclass(frozen=True, slots=True)
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertResult) -> UpsertResult:
        return UpsertResult(
            self.inserted + other.inserted,
            self.updated + other.updated,
            self.unchanged + other.unchanged,
        )

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated)


@dataclass(frozen=True, slots=True)
class LibraryState:
    revision: int  # bumped by every change to the library
    sources: int


@dataclass(frozen=True, slots=True)
class SourceText:
    """What indexes need of a source: its text and the fields searches filter on."""

    key: str
    title: str
    abstract: str | None
    year: int | None
    provider: str
    type: str | None
    open_access: bool | None
    revision: int  # the library revision that last wrote the source

    @property
    def text(self) -> str:
        """Title and abstract, as the lexical index reads them."""
        return f"{self.title}\n{self.abstract or ''}"


class SourceRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def upsert_many(self, sources: Sequence[Source]) -> UpsertResult:
        """Insert new sources, update changed ones, leave identical ones untouched.

        Each batch that changes anything is one transaction: it bumps the library revision
        and stamps the rows it writes with the new revision, so that ``changed_since`` of a
        revision seen by a reader finds every row written up to it.
        """
        unique: dict[str, Source] = {}
        for source in sources:
            unique[source.key] = source
        result = UpsertResult()
        items = list(unique.values())
        for start in range(0, len(items), _KEY_BATCH):
            batch = items[start : start + _KEY_BATCH]
            async with self.db.session() as session:
                result = result + await self._upsert_batch(session, batch)
        return result

    async def _upsert_batch(self, session: AsyncSession, batch: Sequence[Source]) -> UpsertResult:
        keys = [s.key for s in batch]
        existing = {
            row.key: row
            for row in (
                await session.scalars(select(SourceRow).where(SourceRow.key.in_(keys)))
            ).all()
        }
        changes: list[tuple[Source, str, SourceRow | None]] = []
        for source in batch:
            digest = content_hash(source)
            row = existing.get(source.key)
            if row is None or row.content_hash != digest:
                changes.append((source, digest, row))
        unchanged = len(batch) - len(changes)
        if not changes:
            return UpsertResult(unchanged=unchanged)
        inserted = sum(1 for _, _, row in changes if row is None)
        # Bumping first takes the library_state row lock (PostgreSQL) or the write lock
        # (SQLite) until commit: revisions commit in order, each with all of its rows.
        revision = await session.scalar(
            update(LibraryStateRow)
            .where(LibraryStateRow.id == 1)
            .values(
                revision=LibraryStateRow.revision + 1,
                sources=LibraryStateRow.sources + inserted,
            )
            .returning(LibraryStateRow.revision)
        )
        if revision is None:  # pragma: no cover - the migration creates the row
            raise StoreError("the library_state row is missing: run the migrations")
        authors = _AuthorResolver(session)
        for source, digest, found in changes:
            authorships = [
                AuthorshipRow(
                    position=i,
                    author=await authors.resolve(author),
                    institutions=[inst.model_dump() for inst in author.institutions],
                )
                for i, author in enumerate(source.authors)
            ]
            row = found if found is not None else SourceRow()
            if found is not None:
                row.updated_at = utcnow()
            apply_source(row, source, normalise_title(source.title), digest)
            row.revision = revision
            row.authorships = authorships
            session.add(row)
        return UpsertResult(inserted, len(changes) - inserted, unchanged)

    async def get_many(self, keys: Sequence[str]) -> list[Source]:
        """Sources by key, in the order asked; unknown keys are skipped."""
        found: dict[str, Source] = {}
        async with self.db.session() as session:
            for start in range(0, len(keys), _KEY_BATCH):
                chunk = list(keys[start : start + _KEY_BATCH])
                rows = await session.scalars(select(SourceRow).where(SourceRow.key.in_(chunk)))
                for row in rows.all():
                    found[row.key] = row_to_source(row)
        return [found[k] for k in keys if k in found]

    async def get(self, key: str) -> Source:
        sources = await self.get_many([key])
        if not sources:
            raise NotFoundError(f"no source with key {key!r}")
        return sources[0]

    async def _state(self) -> LibraryStateRow:
        async with self.db.session() as session:
            state = await session.get(LibraryStateRow, 1)
            if state is None:  # pragma: no cover - the migration creates it
                raise StoreError("the library_state row is missing: run the migrations")
            return state

    async def count(self) -> int:
        return (await self._state()).sources

    async def revision(self) -> str:
        """Changes whenever a source is added or updated: keys the brief cache. One
        primary-key read."""
        return str((await self._state()).revision)

    async def state(self) -> LibraryState:
        """The library's revision and size, read together."""
        state = await self._state()
        return LibraryState(revision=state.revision, sources=state.sources)

    async def iter_texts(self, batch: int = 2000) -> AsyncIterator[list[tuple[str, str]]]:
        """(key, title + abstract) of every source, in id order, a batch at a time."""
        last_id = 0
        while True:
            async with self.db.session() as session:
                rows = (
                    await session.execute(
                        select(SourceRow.id, SourceRow.key, SourceRow.title, SourceRow.abstract)
                        .where(SourceRow.id > last_id)
                        .order_by(SourceRow.id)
                        .limit(batch)
                    )
                ).all()
            if not rows:
                return
            last_id = rows[-1][0]
            yield [(key, f"{title}\n{abstract or ''}") for _, key, title, abstract in rows]

    async def changed_since(
        self, revision: int, batch: int = 2000
    ) -> AsyncIterator[list[SourceText]]:
        """The sources written after library revision ``revision``, in (revision, id)
        order, a batch at a time (each batch its own short read).

        Keeps going until nothing newer is left, so sources written meanwhile come too
        (a source rewritten meanwhile may come twice: apply them in order). Every source
        written up to the revision of the last batch has been yielded: revisions commit
        in order (``upsert_many``).
        """
        columns = (
            SourceRow.id,
            SourceRow.key,
            SourceRow.title,
            SourceRow.abstract,
            SourceRow.year,
            SourceRow.provider,
            SourceRow.type,
            SourceRow.open_access,
            SourceRow.revision,
        )
        after: tuple[int, int] | None = None
        while True:
            query = select(*columns)
            if after is None:
                query = query.where(SourceRow.revision > revision)
            else:
                query = query.where(tuple_(SourceRow.revision, SourceRow.id) > tuple_(*after))
            async with self.db.session() as session:
                rows = (
                    await session.execute(
                        query.order_by(SourceRow.revision, SourceRow.id).limit(batch)
                    )
                ).all()
            if not rows:
                return
            after = (rows[-1].revision, rows[-1].id)
            yield [
                SourceText(
                    key=r.key,
                    title=r.title,
                    abstract=r.abstract,
                    year=r.year,
                    provider=r.provider,
                    type=r.type,
                    open_access=r.open_access,
                    revision=r.revision,
                )
                for r in rows
            ]


class _AuthorResolver:
    """Finds or creates authors within one session: by ORCID, else by normalised name."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._seen: dict[str, AuthorRow] = {}

    async def resolve(self, author: Author) -> AuthorRow:
        name_norm = normalise_title(author.name)[:512]
        cache_key = f"orcid:{author.orcid}" if author.orcid else f"name:{name_norm}"
        if cache_key in self._seen:
            return self._seen[cache_key]
        query = select(AuthorRow)
        if author.orcid:
            query = query.where(AuthorRow.orcid == author.orcid)
        else:
            query = query.where(AuthorRow.name_norm == name_norm, AuthorRow.orcid.is_(None))
        row = (await self.session.scalars(query.limit(1))).first()
        if row is None:
            row = AuthorRow(name=author.name[:512], orcid=author.orcid, name_norm=name_norm)
            self.session.add(row)
        self._seen[cache_key] = row
        return row


@dataclass(frozen=True, slots=True)
class BriefSummary:
    id: str
    question: str
    title: str
    mode: str
    sources: int
    created_at: datetime


class BriefRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, brief: Brief, markdown: str, *, owner_id: str | None = None) -> None:
        async with self.db.session() as session:
            session.add(
                BriefRow(
                    owner_id=owner_id,
                    id=brief.id,
                    run_id=brief.lineage.run_id,
                    question=brief.question,
                    title=brief.title,
                    mode=brief.mode,
                    content=brief.model_dump(mode="json"),
                    markdown=markdown,
                    guard_report=brief.guard.model_dump(mode="json"),
                    lineage=brief.lineage.model_dump(mode="json"),
                    created_at=brief.created_at,
                )
            )

    async def exists(self, brief_id: str) -> bool:
        async with self.db.session() as session:
            return await session.get(BriefRow, brief_id) is not None

    async def get(self, brief_id: str, *, owner: Owner = EVERYONE) -> Brief:
        """A brief by id (or a unique prefix of 4+ characters); another owner's brief is
        reported as missing, exactly like one that does not exist."""
        if "\x00" in brief_id:  # no id has one, and PostgreSQL refuses it in a query
            raise NotFoundError(f"no brief with id {brief_id!r}")
        async with self.db.session() as session:
            row = await session.get(BriefRow, brief_id)
            if row is None:
                # autoescape: "%" and "_" of the id are characters, not LIKE wildcards
                prefixed = BriefRow.id.startswith(brief_id, autoescape=True)
                matches = (
                    await session.scalars(_owned(select(BriefRow).where(prefixed), owner).limit(2))
                ).all()
                if len(brief_id) < 4 or len(matches) != 1:
                    raise NotFoundError(f"no brief with id {brief_id!r}")
                row = matches[0]
            if owner is not EVERYONE and row.owner_id != owner:
                raise NotFoundError(f"no brief with id {brief_id!r}")
            return Brief.model_validate(row.content)

    async def list(
        self, *, limit: int = 20, offset: int = 0, owner: Owner = EVERYONE
    ) -> list[BriefSummary]:
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    _owned(select(BriefRow), owner)
                    .order_by(BriefRow.created_at.desc(), BriefRow.id)
                    .limit(limit)
                    .offset(offset)
                )
            ).all()
            return [
                BriefSummary(
                    id=r.id,
                    question=r.question,
                    title=r.title,
                    mode=r.mode,
                    sources=len(r.content.get("sources", [])),
                    created_at=r.created_at,
                )
                for r in rows
            ]

    async def count(self, *, owner: Owner = EVERYONE) -> int:
        async with self.db.session() as session:
            query = _owned(select(func.count(BriefRow.id)), owner)
            return int(await session.scalar(query) or 0)


def _owned(query: Select[Any], owner: Owner) -> Select[Any]:
    if owner is EVERYONE:
        return query
    if owner is None:
        return query.where(BriefRow.owner_id.is_(None))
    return query.where(BriefRow.owner_id == owner)


class RunRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def save(self, run: PipelineRun) -> None:
        """Insert or update a run (called at start and at the end of each stage)."""
        async with self.db.session() as session:
            row = await session.get(PipelineRunRow, run.id)
            if row is None:
                row = PipelineRunRow(id=run.id, created_at=run.created_at)
                session.add(row)
            row.question = run.question
            row.status = run.status.value
            row.stages = [s.model_dump(mode="json") for s in run.stages]
            row.tokens_in = run.usage.tokens_in
            row.tokens_out = run.usage.tokens_out
            row.cost_usd = run.usage.cost_usd
            row.error = run.error
            row.brief_id = run.brief_id
            row.owner_id = run.owner_id
            row.finished_at = run.finished_at

    async def get(self, run_id: str) -> PipelineRun:
        async with self.db.session() as session:
            row = await session.get(PipelineRunRow, run_id)
            if row is None:
                raise NotFoundError(f"no pipeline run with id {run_id!r}")
            return self._model(row)

    async def for_brief(self, brief_id: str, *, owner: Owner = EVERYONE) -> PipelineRun | None:
        """The latest run that writes (or wrote) the brief ``brief_id``."""
        if "\x00" in brief_id:  # no id has one, and PostgreSQL refuses it in a query
            return None
        async with self.db.session() as session:
            row = (
                await session.scalars(
                    select(PipelineRunRow)
                    .where(PipelineRunRow.brief_id == brief_id)
                    .order_by(PipelineRunRow.created_at.desc())
                    .limit(1)
                )
            ).first()
            if row is None or (owner is not EVERYONE and row.owner_id != owner):
                return None
            return self._model(row)

    async def abandon_running(self, brief_id: str, reason: str) -> int:
        """Mark the brief's runs still "running" as failed (their process is gone: a
        worker died and the job is being run again); how many."""
        async with self.db.session() as session:
            result = await session.execute(
                update(PipelineRunRow)
                .where(
                    PipelineRunRow.brief_id == brief_id,
                    PipelineRunRow.status == RunStatus.RUNNING.value,
                )
                .values(status=RunStatus.FAILED.value, error=reason, finished_at=utcnow())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    async def recent_failures(self, limit: int = 20) -> list[PipelineRun]:
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(PipelineRunRow)
                    .where(PipelineRunRow.status == RunStatus.FAILED.value)
                    .order_by(PipelineRunRow.created_at.desc())
                    .limit(limit)
                )
            ).all()
            return [self._model(r) for r in rows]

    @staticmethod
    def _model(row: PipelineRunRow) -> PipelineRun:
        return PipelineRun(
            id=row.id,
            question=row.question,
            status=RunStatus(row.status),
            stages=[StageRecord.model_validate(s) for s in row.stages],
            usage=Usage(tokens_in=row.tokens_in, tokens_out=row.tokens_out, cost_usd=row.cost_usd),
            error=row.error,
            brief_id=row.brief_id,
            owner_id=row.owner_id,
            created_at=row.created_at,
            finished_at=row.finished_at,
        )


@dataclass(frozen=True, slots=True)
class CostTotal:
    group: str
    calls: int
    tokens_in: int
    tokens_out: int
    cost_usd: float | None  # None when any call in the group had an unknown cost


class LLMCallRepository:
    """The cost ledger."""

    _GROUPS: ClassVar[dict[str, Any]] = {
        "agent": LLMCallRow.agent,
        "provider": LLMCallRow.provider,
        "model": LLMCallRow.model,
        "run": LLMCallRow.run_id,
        "user": LLMCallRow.user_id,
        "day": func.date(LLMCallRow.created_at),
    }

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, call: LLMCall) -> None:
        async with self.db.session() as session:
            session.add(
                LLMCallRow(
                    run_id=call.run_id,
                    agent=call.agent,
                    provider=call.provider,
                    model=call.model,
                    tokens_in=call.tokens_in,
                    tokens_out=call.tokens_out,
                    tokens_cached=call.tokens_cached,
                    cost_usd=call.cost_usd,
                    saved_usd=call.saved_usd,
                    latency_ms=call.latency_ms,
                    cached=call.cached,
                    outcome=call.outcome,
                    error=call.error,
                    user_id=call.user_id,
                )
            )

    async def spent(self, user_id: str, since: datetime) -> float:
        """What the user's LLM calls cost since ``since`` (USD; unknown prices count 0)."""
        query = select(func.coalesce(func.sum(LLMCallRow.cost_usd), 0.0)).where(
            LLMCallRow.user_id == user_id, LLMCallRow.created_at >= since
        )
        async with self.db.session() as session:
            return float(await session.scalar(query) or 0.0)

    async def totals(
        self, by: str, *, run_id: str | None = None, since: datetime | None = None
    ) -> list[CostTotal]:
        if by not in self._GROUPS:
            raise ValueError(f"group by one of {sorted(self._GROUPS)}, not {by!r}")
        column = self._GROUPS[by]
        query = select(
            column,
            func.count(LLMCallRow.id),
            func.coalesce(func.sum(LLMCallRow.tokens_in), 0),
            func.coalesce(func.sum(LLMCallRow.tokens_out), 0),
            func.coalesce(func.sum(LLMCallRow.cost_usd), 0.0),
            func.count(LLMCallRow.id) - func.count(LLMCallRow.cost_usd),
        ).group_by(column)
        if run_id is not None:
            query = query.where(LLMCallRow.run_id == run_id)
        if since is not None:
            query = query.where(LLMCallRow.created_at >= since)
        async with self.db.session() as session:
            rows = (await session.execute(query.order_by(column))).all()
        return [
            CostTotal(
                group=str(group),
                calls=int(calls),
                tokens_in=int(t_in),
                tokens_out=int(t_out),
                cost_usd=None if missing else float(cost),
            )
            for group, calls, t_in, t_out, cost, missing in rows
        ]
