"""Who is calling: the master key, a virtual key (from the in-memory key index), or nobody.

The request path never touches the database: virtual keys are looked up in a dict of SHA-256
hashes that the store watcher replaces whole when keys change.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from app.calls.caller import ANONYMOUS, Caller
from app.errors import AuthenticationFailed


def key_hash(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


LITELLM_KEY_HEADER = "x-litellm-api-key"  # LiteLLM's own header, for clients whose Authorization is taken


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The caller's key, from the one place every route reads it. ``x-litellm-api-key`` wins over
    ``Authorization`` because clients send it precisely when Authorization carries another key;
    LiteLLM's docs show it both with and without the ``Bearer`` scheme."""
    return (_token(headers.get(LITELLM_KEY_HEADER), bare=True) or _token(headers.get("authorization"), bare=False)
            or _token(headers.get("api-key"), bare=True))  # api-key: Azure OpenAI clients' header


def _token(value: str | None, *, bare: bool) -> str | None:
    scheme, _, token = (value or "").strip().partition(" ")
    if scheme.lower() == "bearer":
        return token.strip() or None
    return scheme if bare and scheme and not token else None


class Authenticator:
    def __init__(self, master_key: str | None) -> None:
        self._master_hash = key_hash(master_key) if master_key else None
        self.keys: Mapping[str, Caller] = {}

    @property
    def open_access(self) -> bool:
        """No master key and no virtual keys: a local, single-user gateway."""
        return self._master_hash is None and not self.keys

    def authenticate(self, token: str | None) -> Caller:
        if token is None:
            if self.open_access:
                return ANONYMOUS
            raise AuthenticationFailed("missing API key: send 'Authorization: Bearer <key>'")
        digest = key_hash(token)
        if self._master_hash is not None and hmac.compare_digest(digest, self._master_hash):
            return Caller(is_admin=True, key_hash=digest[:16], key_alias="master_key")
        caller = self.keys.get(digest)
        if caller is None:
            if self.open_access:
                return ANONYMOUS
            raise AuthenticationFailed("invalid API key")
        if caller.expires_at is not None and caller.expires_at <= time.time():
            raise AuthenticationFailed("API key has expired", code="key_expired")
        return caller
