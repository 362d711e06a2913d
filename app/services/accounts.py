"""Users and API keys: bootstrap the first admin, create users and keys, authenticate."""
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.security import display_prefix, generate_api_key, hash_api_key
from app.db.models import ApiKey, User

log = logging.getLogger("app.accounts")


def create_user(db: Session, name: str, is_admin: bool = False) -> tuple[User, str]:
    """Create a user with one fresh API key; return the user and the key (shown once)."""
    user = User(name=name, is_admin=is_admin)
    db.add(user)
    db.flush()
    _, key = add_api_key(db, user, "default")
    return user, key


def add_api_key(db: Session, user: User, name: str, key: str | None = None) -> tuple[ApiKey, str]:
    """Attach a key (fresh unless given) to `user`; only its hash is stored. Returns the row and the key."""
    key = key or generate_api_key()
    row = ApiKey(user_id=user.id, name=name, prefix=display_prefix(key), key_hash=hash_api_key(key))
    db.add(row)
    db.flush()
    return row, key


def authenticate(db: Session, key: str) -> tuple[User, ApiKey] | None:
    """The user and key record for a presented key, or None if unknown or revoked."""
    row = db.execute(
        select(ApiKey, User)
        .join(User, ApiKey.user_id == User.id)
        .where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None))
    ).first()
    return None if row is None else (row.User, row.ApiKey)


def bootstrap_admin(db: Session, admin_key: str | None) -> str | None:
    """Make sure an admin exists. Returns a newly generated key to show once, else None.

    With `admin_key` (APP_ADMIN_KEY) that key is registered for the first admin if it is not
    known yet, so automation can rely on it across restarts.
    """
    admin = db.scalars(select(User).where(User.is_admin.is_(True)).order_by(User.created_at)).first()
    if admin_key is not None:
        if admin is None:
            admin = User(name="admin", is_admin=True)
            db.add(admin)
            db.flush()
        if authenticate(db, admin_key) is None:
            add_api_key(db, admin, "APP_ADMIN_KEY", key=admin_key)
        db.commit()
        return None
    if admin is not None:
        return None
    _, key = create_user(db, "admin", is_admin=True)
    db.commit()
    return key
