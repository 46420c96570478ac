from __future__ import annotations

import pytest

from nomosx.errors import NotFoundError
from nomosx.models import Author
from nomosx.store.db import Database
from nomosx.store.repositories import SourceRepository
from tests.factories import make_source


async def test_upsert_round_trip_keeps_every_field(db: Database) -> None:
    repo = SourceRepository(db)
    source = make_source()
    result = await repo.upsert_many([source])
    assert (result.inserted, result.updated, result.unchanged) == (1, 0, 0)
    loaded = await repo.get(source.key)
    assert loaded == source


async def test_reimport_changes_nothing(db: Database) -> None:
    repo = SourceRepository(db)
    sources = [make_source(f"doi:10.1000/{i}", title=f"Paper {i}") for i in range(5)]
    await repo.upsert_many(sources)
    revision = await repo.revision()
    again = await repo.upsert_many(sources)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 5)
    assert not again.changed
    assert await repo.revision() == revision
    assert await repo.count() == 5


async def test_changed_record_is_updated_and_revision_moves(db: Database) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many([make_source()])
    revision = await repo.revision()
    result = await repo.upsert_many([make_source(citation_count=500, authors=[])])
    assert (result.inserted, result.updated) == (0, 1)
    loaded = await repo.get("doi:10.1000/abc")
    assert loaded.citation_count == 500
    assert loaded.authors == []
    assert await repo.revision() != revision


async def test_authors_are_shared_by_orcid(db: Database) -> None:
    repo = SourceRepository(db)
    shared = Author(name="A. Lovelace", orcid="0000-0002-1825-0097")
    await repo.upsert_many(
        [
            make_source("doi:10.1/a", authors=[shared]),
            make_source("doi:10.1/b", authors=[shared, Author(name="Someone Else")]),
        ]
    )
    await repo.upsert_many([make_source("doi:10.1/c", authors=[shared])])
    from sqlalchemy import func, select

    from nomosx.store.tables import AuthorRow

    async with db.session() as session:
        authors = await session.scalar(select(func.count(AuthorRow.id)))
    assert authors == 2


async def test_batch_with_duplicate_keys_keeps_the_last(db: Database) -> None:
    repo = SourceRepository(db)
    result = await repo.upsert_many(
        [make_source(title="First"), make_source(title="Second version")]
    )
    assert result.inserted == 1
    assert (await repo.get("doi:10.1000/abc")).title == "Second version"


async def test_get_many_keeps_order_and_skips_unknown(db: Database) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many([make_source(f"doi:10.1/{i}") for i in range(3)])
    got = await repo.get_many(["doi:10.1/2", "missing", "doi:10.1/0"])
    assert [s.key for s in got] == ["doi:10.1/2", "doi:10.1/0"]
    with pytest.raises(NotFoundError):
        await repo.get("missing")


async def test_iter_texts_pages_through_everything(db: Database) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many([make_source(f"doi:10.1/{i}", title=f"T{i}") for i in range(7)])
    batches = [batch async for batch in repo.iter_texts(batch=3)]
    assert [len(b) for b in batches] == [3, 3, 1]
    keys = [k for b in batches for k, _ in b]
    assert sorted(keys) == sorted(f"doi:10.1/{i}" for i in range(7))
    assert batches[0][0][1].startswith("T0\n")


async def test_large_batches_are_split(db: Database) -> None:
    repo = SourceRepository(db)
    sources = [make_source(f"doi:10.2/{i}", title=f"Title {i}", authors=[]) for i in range(1203)]
    result = await repo.upsert_many(sources)
    assert result.inserted == 1203
    assert await repo.count() == 1203
    assert len(await repo.get_many([s.key for s in sources])) == 1203


async def test_authors_can_be_replaced_on_update(db: Database) -> None:
    repo = SourceRepository(db)
    await repo.upsert_many([make_source()])
    renamed = [Author(name="Grace Hopper"), Author(name="Alan Turing"), Author(name="Third")]
    result = await repo.upsert_many([make_source(authors=renamed)])
    assert result.updated == 1
    loaded = await repo.get("doi:10.1000/abc")
    assert [a.name for a in loaded.authors] == ["Grace Hopper", "Alan Turing", "Third"]


async def _changed(repo: SourceRepository, since: int, batch: int = 2000) -> list:  # type: ignore[type-arg]
    return [s for b in [b async for b in repo.changed_since(since, batch=batch)] for s in b]


async def test_writes_stamp_their_rows_with_the_new_revision(db: Database) -> None:
    repo = SourceRepository(db)
    assert (await repo.state()).revision == 0
    await repo.upsert_many([make_source(f"doi:10.1/{i}", title=f"T{i}") for i in range(3)])
    first = await repo.state()
    assert (first.revision, first.sources) == (1, 3)
    await repo.upsert_many(
        [make_source("doi:10.1/1", title="T1 revised"), make_source("doi:10.1/9", title="T9")]
    )
    second = await repo.state()
    assert (second.revision, second.sources) == (2, 4)
    assert await repo.revision() == "2"

    changed = await _changed(repo, 0)
    assert [(s.key, s.revision) for s in changed] == [
        ("doi:10.1/0", 1),
        ("doi:10.1/2", 1),
        ("doi:10.1/1", 2),
        ("doi:10.1/9", 2),
    ]  # in revision order, each source once, at its last write
    assert [s.key for s in await _changed(repo, 1)] == ["doi:10.1/1", "doi:10.1/9"]
    assert await _changed(repo, 2) == []

    await repo.upsert_many([make_source("doi:10.1/1", title="T1 revised")])  # unchanged
    assert (await repo.state()).revision == 2
    assert await _changed(repo, 2) == []


async def test_changed_since_pages_in_order_and_gives_what_indexes_need(db: Database) -> None:
    repo = SourceRepository(db)
    for start in (0, 4):
        await repo.upsert_many(
            [
                make_source(f"doi:10.1/{i}", title=f"T{i}", authors=[])
                for i in range(start, start + 4)
            ]
        )
    batches = [b async for b in repo.changed_since(0, batch=3)]
    assert [len(b) for b in batches] == [3, 3, 2]
    keys = [s.key for b in batches for s in b]
    assert keys == [f"doi:10.1/{i}" for i in range(8)]
    record = batches[0][0]
    assert (record.title, record.year, record.provider, record.type, record.open_access) == (
        "T0",
        2019,
        "openalex",
        "article",
        True,
    )
    assert record.abstract is not None
    assert record.text == f"T0\n{record.abstract}"
    with pytest.raises(AttributeError):
        record.title = "x"  # type: ignore[misc]
