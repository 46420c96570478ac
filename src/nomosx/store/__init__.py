"""Persistence: SQLAlchemy 2 (async) tables, repositories and alembic migrations."""

from nomosx.store.db import Database

__all__ = ["Database"]
