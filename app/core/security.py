"""API keys: generation and hashing. Keys are 256-bit random tokens, so a plain SHA-256
is enough to store them safely (no salt or slow hash needed for non-guessable secrets)."""
import hashlib
import secrets

KEY_PREFIX = "dsk-"


def generate_api_key() -> str:
    """A new random API key, shown to its owner once."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    """The hex SHA-256 stored in `api_keys.key_hash`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def display_prefix(key: str) -> str:
    """The first characters of a key, enough to recognise it in a listing."""
    return key[:10]
