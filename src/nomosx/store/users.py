"""Users and their API keys: the only code that reads or writes those tables."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from nomosx.auth.keys import key_hash, key_prefix, looks_like_key, new_key
from nomosx.auth.models import ApiKey, Role, User, UserLimits
from nomosx.errors import InputError, NotFoundError, StoreError
from nomosx.models import utcnow
from nomosx.store.db import Database
from nomosx.store.tables import ApiKeyRow, UserRow

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint: not one write per request


def _user(row: UserRow) -> User:
    return User(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        limits=UserLimits.model_validate(row.limits or {}),
        disabled=row.disabled,
        created_at=row.created_at,
    )


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        id=row.id,
        user_id=row.user_id,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InputError(
            f"invalid user name {name!r}: 1 to 64 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    return name


class UserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, name: str, *, role: Role = Role.USER) -> tuple[User, str]:
        """A new user and their first API key, returned in clear this once."""
        row = UserRow(
            id=str(uuid.uuid4()),
            name=check_name(name),
            role=role.value,
            limits={},
            disabled=False,
            created_at=utcnow(),
        )
        key = new_key()
        try:
            async with self.db.session() as session:
                session.add(row)
                await session.flush()
                session.add(self._key_row(row.id, key))
        except StoreError as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise InputError(f"a user named {name!r} already exists") from None
            raise
        return await self.get(row.id), key

    @staticmethod
    def _key_row(user_id: str, key: str) -> ApiKeyRow:
        return ApiKeyRow(
            user_id=user_id, key_hash=key_hash(key), prefix=key_prefix(key), created_at=utcnow()
        )

    async def get(self, user_id: str) -> User:
        async with self.db.session() as session:
            row = await session.get(UserRow, user_id)
            if row is None:
                raise NotFoundError(f"no user with id {user_id!r}")
            return _user(row)

    async def by_name(self, name: str) -> User:
        async with self.db.session() as session:
            row = (await session.scalars(select(UserRow).where(UserRow.name == name))).first()
            if row is None:
                raise NotFoundError(f"no user named {name!r}")
            return _user(row)

    async def all(self) -> list[User]:
        async with self.db.session() as session:
            rows = (await session.scalars(select(UserRow).order_by(UserRow.name))).all()
            return [_user(r) for r in rows]

    async def count(self) -> int:
        async with self.db.session() as session:
            return int(await session.scalar(select(func.count(UserRow.id))) or 0)

    async def authenticate(self, key: str) -> User | None:
        """The active user owning ``key``; ``None`` for an unknown or revoked key, or a
        disabled user."""
        if not looks_like_key(key):
            return None
        async with self.db.session() as session:
            found = (
                await session.execute(
                    select(ApiKeyRow, UserRow)
                    .join(UserRow, UserRow.id == ApiKeyRow.user_id)
                    .where(ApiKeyRow.key_hash == key_hash(key))
                )
            ).first()
            if found is None:
                return None
            key_row, user_row = found
            if key_row.revoked_at is not None or user_row.disabled:
                return None
            now = utcnow()
            if key_row.last_used_at is None or now - key_row.last_used_at > TOUCH_EVERY:
                key_row.last_used_at = now
            return _user(user_row)

    async def add_key(self, name: str) -> str:
        """Another API key for the user (keys can be rotated without downtime)."""
        user = await self.by_name(name)
        key = new_key()
        async with self.db.session() as session:
            session.add(self._key_row(user.id, key))
        return key

    async def keys(self, name: str) -> list[ApiKey]:
        user = await self.by_name(name)
        async with self.db.session() as session:
            rows = (
                await session.scalars(
                    select(ApiKeyRow).where(ApiKeyRow.user_id == user.id).order_by(ApiKeyRow.id)
                )
            ).all()
            return [_key(r) for r in rows]

    async def revoke(self, name: str, prefix: str | None = None) -> int:
        """Revoke the user's keys (those starting with ``prefix``, or all); how many."""
        user = await self.by_name(name)
        query = update(ApiKeyRow).where(
            ApiKeyRow.user_id == user.id, ApiKeyRow.revoked_at.is_(None)
        )
        if prefix:
            wanted = prefix[: len(key_prefix(prefix))]
            # autoescape: "%" and "_" of the prefix are characters, not LIKE wildcards
            query = query.where(ApiKeyRow.prefix.startswith(wanted, autoescape=True))
        async with self.db.session() as session:
            result = await session.execute(query.values(revoked_at=utcnow()))
            return int(getattr(result, "rowcount", 0) or 0)

    async def set_limits(self, name: str, limits: UserLimits) -> User:
        return await self._change(name, limits=limits.model_dump(exclude_none=True))

    async def set_role(self, name: str, role: Role) -> User:
        return await self._change(name, role=role.value)

    async def set_disabled(self, name: str, disabled: bool) -> User:
        return await self._change(name, disabled=disabled)

    async def _change(self, name: str, **values: object) -> User:
        user = await self.by_name(name)
        async with self.db.session() as session:
            await session.execute(update(UserRow).where(UserRow.id == user.id).values(**values))
        return await self.get(user.id)
