"""Who am I, users (admin) and API keys. New keys are returned once and stored hashed."""
from datetime import datetime

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.api.deps import AdminUser, CurrentUser, DbSession, Page
from app.db.models import ApiKey, User, utcnow
from app.services.accounts import add_api_key, create_user

router = APIRouter(prefix="/api", tags=["accounts"])


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    is_admin: bool


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    is_admin: bool = False


class UserWithKey(UserOut):
    api_key: str = Field(description="shown once; only its hash is stored")


class KeyOut(BaseModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked: bool


class NewKey(BaseModel):
    name: str = Field("default", min_length=1, max_length=200)


class KeyWithSecret(KeyOut):
    api_key: str


@router.get("/me")
def me(user: CurrentUser) -> UserOut:
    return UserOut.model_validate(user)


@router.post("/users", status_code=status.HTTP_201_CREATED)
def add_user(body: NewUser, _admin: AdminUser, db: DbSession) -> UserWithKey:
    """Create a user with a first API key (admin only)."""
    try:
        user, key = create_user(db, body.name, body.is_admin)
        db.commit()
    except IntegrityError:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {body.name!r} already exists") from None
    return UserWithKey(id=user.id, name=user.name, is_admin=user.is_admin, api_key=key)


@router.get("/users")
def list_users(_admin: AdminUser, db: DbSession, page: Page) -> list[UserOut]:
    users = db.scalars(page.apply(select(User).order_by(User.created_at))).all()
    return [UserOut.model_validate(u) for u in users]


def _key_out(k: ApiKey) -> KeyOut:
    return KeyOut(id=k.id, name=k.name, prefix=k.prefix, created_at=k.created_at, revoked=k.revoked_at is not None)


@router.get("/keys")
def list_keys(user: CurrentUser, db: DbSession, page: Page) -> list[KeyOut]:
    keys = db.scalars(page.apply(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at))).all()
    return [_key_out(k) for k in keys]


@router.post("/keys", status_code=status.HTTP_201_CREATED)
def new_key(body: NewKey, user: CurrentUser, db: DbSession) -> KeyWithSecret:
    row, secret = add_api_key(db, user, body.name)
    db.commit()
    return KeyWithSecret(**_key_out(row).model_dump(), api_key=secret)


@router.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_key(key_id: str, user: CurrentUser, db: DbSession) -> None:
    key = db.get(ApiKey, key_id)
    if key is None or key.user_id != user.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"key {key_id} not found")
    key.revoked_at = utcnow()
    db.commit()
