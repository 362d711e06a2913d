"""FastAPI dependencies every router uses.

- `DbSession`: a SQLAlchemy `Session` for this request (committed by the route, closed after).
- `CurrentUser`: the authenticated `User` (Bearer API key); 401 otherwise, 429 over the rate limit.
- `AdminUser`: like CurrentUser, but 403 unless the user is an admin.
- `AppSettings`: the app's `Settings`.
- `get_owned(db, Model, id, user)`: a row owned by `user`, or 404 (also for other users' rows).
- `Page`: `limit` (default 100, at most 1000) and `offset` query parameters for list endpoints.
"""
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, HTTPException, Query, Request, status
from sqlalchemy import Select
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.db.models import User
from app.services.accounts import authenticate

T = TypeVar("T")


def get_settings(request: Request) -> Settings:
    """The settings the app was created with."""
    return request.app.state.settings


def get_db(request: Request) -> Iterator[Session]:
    """One session per request."""
    with request.app.state.sessionmaker() as session:
        yield session


AppSettings = Annotated[Settings, Depends(get_settings)]
DbSession = Annotated[Session, Depends(get_db)]


def current_user(request: Request, db: DbSession) -> User:
    """Authenticate `Authorization: Bearer KEY` and apply the per-key rate limit."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = authenticate(db, key.strip())
    if found is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    user, api_key = found
    db.commit()  # end the read transaction: long handlers (streams) must not sit idle in one
    retry_after = request.app.state.rate_limiter.hit(api_key.id)
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"rate limit exceeded: {request.app.state.rate_limiter.per_minute} requests per minute per key",
            headers={"Retry-After": str(max(1, round(retry_after)))},
        )
    request.state.user_id = user.id
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def admin_user(user: CurrentUser) -> User:
    """The current user, who must be an admin."""
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "admin only")
    return user


AdminUser = Annotated[User, Depends(admin_user)]


def get_owned(db: Session, model: type[T], row_id: str, user: User) -> T:
    """The `model` row with `row_id` owned by `user`; 404 if missing or someone else's."""
    row = db.get(model, row_id)
    if row is None or row.owner_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{model.__name__.lower()} {row_id} not found")
    return row


@dataclass(frozen=True)
class Pagination:
    limit: int
    offset: int

    def apply(self, query: Select) -> Select:
        return query.limit(self.limit).offset(self.offset)


def pagination(limit: Annotated[int, Query(ge=1, le=1000)] = 100,
               offset: Annotated[int, Query(ge=0)] = 0) -> Pagination:
    return Pagination(limit, offset)


Page = Annotated[Pagination, Depends(pagination)]
