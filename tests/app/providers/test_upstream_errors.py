"""``app.providers.upstream_errors``: what the gateway keeps of an upstream's error object."""

from __future__ import annotations

import pytest

from app.calls.redact import scrub
from app.providers.upstream_errors import MAX_MESSAGE_CHARS, UpstreamErrorFields, read_error

KEY = "sk-proj-Echo1234abcdEFGH5678ijkl"


def read(error: object) -> UpstreamErrorFields:
    return read_error(error, lambda text: scrub(text, [KEY]))


@pytest.mark.parametrize("value", [f"invalid_key {KEY}", f"code-{KEY}", KEY[8:20], "x" * 49, "a b", "", 1000, True,
                                   ["invalid_api_key"]])
def test_a_type_or_code_that_is_not_a_short_clean_word_is_not_kept(value: object) -> None:
    fields = read({"message": "m", "type": value, "code": value})
    assert (fields.type, fields.code) == (None, None)


@pytest.mark.parametrize(("value", "kept"), [("invalid_api_key", "invalid_api_key"), ("DeploymentNotFound",
                                             "DeploymentNotFound"), ("model-not-found", "model-not-found"),
                                             (429, "429")])
def test_plain_words_and_status_numbers_are_kept(value: object, kept: str) -> None:
    assert read({"code": value}).code == kept


def test_param_is_kept_only_as_a_short_path_free_of_secrets() -> None:
    assert read({"param": "messages[0].content"}).param == "messages[0].content"
    assert read({"param": f"param-{KEY}"}).param is None
    assert read({"param": "p" * 129}).param is None


def test_the_message_is_cut_before_it_is_scrubbed() -> None:
    fields = read({"message": "y" * (2 * MAX_MESSAGE_CHARS) + KEY})
    assert fields.message == "y" * MAX_MESSAGE_CHARS
    assert read(f"bare {KEY}").message == "bare ***"


def test_retry_after_is_read_as_seconds_or_an_http_date_and_bounded() -> None:
    import email.utils
    import time

    import httpx

    from app.providers.base import MAX_RETRY_AFTER, retry_after_of

    def of(value: str | None) -> int | None:
        return retry_after_of(httpx.Headers({} if value is None else {"retry-after": value}))

    assert (of("0"), of("12"), of(" 30 "), of("99999999")) == (0, 12, 30, MAX_RETRY_AFTER)
    soon = email.utils.formatdate(time.time() + 20, usegmt=True)
    assert 18 <= of(soon) <= 21
    assert of(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0
    assert (of(None), of("soon"), of("-5"), of("1.5"), of("")) == (None, None, None, None, None)
