import base64
import hashlib

import pytest

from app.teams.secrets import (
    MISSING_KEY_MESSAGE,
    SecretBox,
    SecretBoxError,
    SecretsUnavailable,
    hash_key,
    key_display_prefix,
    new_virtual_key,
    require_box,
)

VARS = {"langfuse_public_key": "pk-lf-1", "langfuse_secret_key": "sk-lf-very-secret", "n": [1, 2]}


def _flip_byte(token: str, index: int) -> str:
    version, body = token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[index] ^= 0x01
    return version + "." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_round_trip_and_the_ciphertext_does_not_show_the_secret():
    box = SecretBox.from_keys("salt", None)
    token = box.encrypt(VARS)
    assert token.startswith("v1.")
    assert "sk-lf-very-secret" not in token
    assert box.decrypt(token) == VARS


def test_each_encryption_uses_a_fresh_nonce():
    box = SecretBox.from_keys("salt", None)
    assert box.encrypt(VARS) != box.encrypt(VARS)


def test_same_key_material_gives_a_box_that_decrypts_across_instances():
    token = SecretBox.from_keys(None, "sk-master").encrypt(VARS)
    assert SecretBox.from_keys(None, "sk-master").decrypt(token) == VARS


@pytest.mark.parametrize("index", [0, 12, -1])  # nonce, ciphertext, tag
def test_tampered_ciphertext_is_refused(index):
    box = SecretBox.from_keys("salt", None)
    with pytest.raises(SecretBoxError, match="altered"):
        box.decrypt(_flip_byte(box.encrypt(VARS), index))


def test_wrong_key_is_refused_without_naming_any_secret():
    token = SecretBox.from_keys("salt-a", None).encrypt(VARS)
    with pytest.raises(SecretBoxError) as info:
        SecretBox.from_keys("salt-b", None).decrypt(token)
    message = str(info.value)
    assert "SPANGATE_SALT_KEY" in message
    for secret in ("salt-a", "salt-b", "sk-lf-very-secret", token):
        assert secret not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_salt_key_wins_over_master_key():
    token = SecretBox.from_keys("salt", "sk-master").encrypt(VARS)
    assert SecretBox.from_keys("salt", None).decrypt(token) == VARS
    with pytest.raises(SecretBoxError):
        SecretBox.from_keys(None, "sk-master").decrypt(token)


def test_salt_key_and_master_key_of_the_same_text_derive_different_keys():
    token = SecretBox.from_keys("same", None).encrypt(VARS)
    with pytest.raises(SecretBoxError):
        SecretBox.from_keys(None, "same").decrypt(token)


def test_context_binds_a_ciphertext_to_its_row():
    box = SecretBox.from_keys("salt", None)
    token = box.encrypt(VARS, context="team-a/langfuse")
    assert box.decrypt(token, context="team-a/langfuse") == VARS
    with pytest.raises(SecretBoxError):
        box.decrypt(token, context="team-b/langfuse")


@pytest.mark.parametrize("token", ["", "v2.AAAA", "v1.", "v1.!!!!", "v1.AAAA", "nonsense"])
def test_malformed_tokens_raise_secret_box_error(token):
    with pytest.raises(SecretBoxError):
        SecretBox.from_keys("salt", None).decrypt(token)


@pytest.mark.parametrize(("salt", "master"), [(None, None), ("", ""), ("", None)])
def test_no_key_material_means_no_box(salt, master):
    assert SecretBox.from_keys(salt, master) is None
    with pytest.raises(SecretsUnavailable) as info:
        require_box(SecretBox.from_keys(salt, master))
    assert str(info.value) == MISSING_KEY_MESSAGE
    assert "SPANGATE_SALT_KEY" in MISSING_KEY_MESSAGE and "general_settings.master_key" in MISSING_KEY_MESSAGE


def test_repr_hides_the_key():
    assert repr(SecretBox(b"k" * 32)) == "SecretBox(<key hidden>)"


def test_key_length_is_checked():
    with pytest.raises(ValueError, match="32-byte"):
        SecretBox(b"short")


def test_hash_key_is_sha256_hex():
    assert hash_key("sk-abc") == hashlib.sha256(b"sk-abc").hexdigest()
    assert hash_key("sk-abc") != hash_key("sk-abd")


def test_new_virtual_keys_are_prefixed_random_and_long():
    keys = {new_virtual_key() for _ in range(100)}
    assert len(keys) == 100
    for key in keys:
        assert key.startswith("sk-")
        assert len(key) == 3 + 43  # 32 bytes, urlsafe base64 without padding


def test_display_prefix_shows_seven_characters():
    assert key_display_prefix("sk-KbUuE0WNptC0jXapyMmLBA") == "sk-KbUu…"
