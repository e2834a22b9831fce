"""Secrets at rest: AES-GCM for team callback variables, and hashing of virtual keys.

Exceptions::

    SecretBoxError          a stored secret cannot be decrypted (wrong key or altered value)
    └── SecretsUnavailable  no key is configured, so secrets cannot be stored at all

No message here ever contains a secret, a key or a ciphertext: they end up in API errors and logs.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MASK = "********"  # what GET shows in place of a stored callback secret
MISSING_KEY_MESSAGE = (
    "cannot store callback secrets: no encryption key is configured; "
    "set SPANGATE_SALT_KEY or general_settings.master_key"
)

_VERSION = "v1"
_NONCE_BYTES = 12  # the size AES-GCM is specified for; random nonces are safe far beyond our volume
_HKDF_SALT = b"spangate/secretbox/v1"
_INFO_FROM_SALT_KEY = b"spangate callback secrets from SPANGATE_SALT_KEY"
_INFO_FROM_MASTER_KEY = b"spangate callback secrets from master_key"


class SecretBoxError(Exception):
    """A stored secret could not be decrypted."""


class SecretsUnavailable(SecretBoxError):
    """No encryption key is configured, so the gateway must refuse to store secrets."""

    def __init__(self) -> None:
        super().__init__(MISSING_KEY_MESSAGE)


def _derive(material: str, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=info).derive(material.encode("utf-8"))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SecretBox:
    """Encrypts a JSON-able dict to a compact string ``v1.<base64url(nonce | ciphertext)>``.

    ``context`` is authenticated but not stored: pass something that names where the value
    belongs (for example ``"team-a/langfuse"``) and a ciphertext copied to another row will
    fail to decrypt instead of silently sending one team's spans with another team's secrets.
    """

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("SecretBox needs a 32-byte key")
        self._aead = AESGCM(key)

    @classmethod
    def from_keys(cls, salt_key: str | None, master_key: str | None) -> SecretBox | None:
        """The salt key wins so that rotating the master key does not orphan stored secrets."""
        if salt_key:
            return cls(_derive(salt_key, _INFO_FROM_SALT_KEY))
        if master_key:
            return cls(_derive(master_key, _INFO_FROM_MASTER_KEY))
        return None

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"

    def encrypt(self, values: Mapping[str, Any], *, context: str = "") -> str:
        plaintext = json.dumps(dict(values), separators=(",", ":"), sort_keys=True).encode("utf-8")
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext, context.encode("utf-8"))
        return f"{_VERSION}.{_b64encode(nonce + sealed)}"

    def decrypt(self, token: str, *, context: str = "") -> dict[str, Any]:
        version, _, body = token.partition(".")
        if version != _VERSION or not body:
            raise SecretBoxError("stored secret has an unknown format (expected a v1 SecretBox value)")
        try:
            raw = _b64decode(body)
        except (binascii.Error, ValueError):
            raise SecretBoxError("stored secret is not valid base64") from None
        nonce, sealed = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        try:
            plaintext = self._aead.decrypt(nonce, sealed, context.encode("utf-8"))
        except (InvalidTag, ValueError):
            # `from None`: the cause carries nothing useful and we never want key material nearby.
            raise SecretBoxError(
                "cannot decrypt stored secret: SPANGATE_SALT_KEY or master_key differs from the one "
                "it was stored with, or the stored value was altered"
            ) from None
        values = json.loads(plaintext)
        if not isinstance(values, dict):
            raise SecretBoxError("stored secret does not hold an object")
        return values


def require_box(box: SecretBox | None) -> SecretBox:
    """The one place that turns 'no key configured' into the error callers show."""
    if box is None:
        raise SecretsUnavailable()
    return box


def is_mask(value: object) -> bool:
    """A value that is the mask, give or take whitespace and the number of asterisks: a client that
    posts back what GET showed must be refused, not have the mask stored as its secret."""
    return isinstance(value, str) and bool(value.strip()) and not value.strip().strip(MASK[0])


def hash_key(plaintext: str) -> str:
    """SHA-256 hex of a virtual key.

    A fast hash is right here, unlike for passwords: our keys carry 256 bits from a CSPRNG, so
    no amount of guessing speed makes a preimage search feasible, and a slow KDF (bcrypt,
    argon2) would only add its cost to every request that presents a key.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def new_virtual_key() -> str:
    return "sk-" + secrets.token_urlsafe(32)


def key_display_prefix(plaintext: str) -> str:
    """What listings show of a key: enough to recognise it, far too little to use it."""
    return plaintext[:7] + "…"
