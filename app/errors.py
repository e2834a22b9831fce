"""Gateway errors and their one mapping to OpenAI's error JSON.

    GatewayError                    any error a client sees; carries status, type, param, code
     ├── InvalidRequest       400   malformed JSON, missing or wrong-typed fields; content moderation
     │                              blocked the input or output (app.hooks.moderation)
     ├── AuthenticationFailed 401   missing, unknown, deleted or expired key
     ├── PermissionDenied     403   model outside the key's or team's models; admin route for a virtual key
     ├── NotFound             404   unknown model, team or route
     ├── PayloadTooLarge      413   body over general_settings.max_request_body_bytes; an input too long
     │                              for content moderation to check (moderation_input_too_long)
     ├── BudgetExceeded       429   the key's or team's spend reached its max_budget (LiteLLM's
     │                              ``budget_exceeded`` type); Retry-After when the budget resets
     ├── RateLimited          429   over the key's or team's rpm_limit, tpm_limit or
     │                              max_parallel_requests; sent with Retry-After
     ├── ServiceUnavailable   503   a dependency is down (the team and key store, content moderation);
     │                              sent with Retry-After
     └── UpstreamError        *     the provider answered with an error (status kept)
          ├── UpstreamUnavailable  502  connect error
          ├── UpstreamTimeout      504  no answer in time
          ├── UpstreamBusy         503  no connection to the upstream free in time (it was not
          │                              contacted); sent with Retry-After
          └── UpstreamInvalidResponse  502  an answer the gateway cannot pass on (not JSON, wrong shape,
               │                              a head over 64 KiB, a stream event moderation cannot read)
               └── UpstreamResponseTooLarge  502  over spangate_settings.max_upstream_response_bytes
                                                  or one SSE event over max_sse_event_bytes

Upstream ``httpx`` exceptions are mapped in one place (``app.providers.map_transport_error``),
the store's ``StoreUnavailable`` in one exception handler (``app.server.factory``);
everything that reaches an HTTP boundary, the raw ASGI front door and Litestar's exception handlers
alike, is rendered by ``render_error`` (its body by ``error_body``, which stream error events use too).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec


class GatewayError(Exception):
    status = 500
    type = "internal_error"
    code: str | None = None
    retry_after: int | None = None  # seconds; sent as the Retry-After header when set
    # More fields of the error object, beside OpenAI's four (moderation: source, category, severity).
    fields: Mapping[str, Any] | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, type: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type

    @property
    def error_type(self) -> str:
        """Low-cardinality value for the span's ``error.type``."""
        return self.code or type(self).__name__

    @property
    def metric_label(self) -> str:
        """``error_type`` as a ``/metrics`` label: the gateway's own codes are a small fixed set."""
        return self.error_type


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(GatewayError):
    status = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(GatewayError):
    status = 403
    type = "permission_error"
    code = "permission_denied"


class NotFound(GatewayError):
    status = 404
    type = "not_found_error"


class PayloadTooLarge(GatewayError):
    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class BudgetExceeded(GatewayError):
    """LiteLLM answers a spent budget with 429 and type ``budget_exceeded`` (its scripts test the type)."""

    status = 429
    type = "budget_exceeded"
    code = "budget_exceeded"

    def __init__(self, message: str, *, param: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, param=param)
        self.retry_after = retry_after


class RateLimited(GatewayError):
    status = 429
    type = "throttling_error"  # LiteLLM's type for its rate limiter's 429s
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message, code=code, param=param)
        self.retry_after = retry_after


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable_error"
    code = "service_unavailable"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class UpstreamError(GatewayError):
    type = "upstream_error"
    # Set where the upstream chose ``code`` (app.providers.upstream_errors.metric_label): its words are not
    # the gateway's to turn into series.
    label: str | None = None
    # The status and body of an upstream that speaks the client's own dialect, scrubbed: what that client
    # gets instead of the gateway's rendering (app.dialects.messages_native).
    dialect_answer: tuple[int, bytes] | None = None

    @property
    def metric_label(self) -> str:
        return self.label or self.error_type


class UpstreamUnavailable(UpstreamError):
    status = 502
    code = "upstream_unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class UpstreamBusy(UpstreamError):
    status = 503
    code = "upstream_connections_busy"
    retry_after = 1  # a slot frees as soon as one of the calls holding them ends


class UpstreamInvalidResponse(UpstreamError):
    status = 502
    code = "upstream_invalid_response"


class UpstreamResponseTooLarge(UpstreamInvalidResponse):
    code = "upstream_response_too_large"


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error as it goes on the wire: status, ASGI headers (lower-case names) and the JSON body."""

    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes


_JSON = (b"content-type", b"application/json")


def render_error(exc: GatewayError, shaped: tuple[int, bytes] | None = None) -> ErrorAnswer:
    """The one rendering of an error for a client, whichever boundary sends it; ``shaped`` is the
    status and body a client dialect gives it (``app.dialects``), sent with the same headers."""
    status, body = shaped if shaped is not None else (exc.status, msgspec.json.encode(error_body(exc)))
    headers = (_JSON, (b"content-length", str(len(body)).encode()))
    if exc.retry_after is not None:  # ServiceUnavailable and UpstreamBusy say when to come back
        headers += ((b"retry-after", str(exc.retry_after).encode()),)
    return ErrorAnswer(status, headers, body)


def error_body(exc: GatewayError) -> dict[str, Any]:
    error = {"message": exc.message, "type": exc.type, "param": exc.param, "code": exc.code}
    if exc.fields:
        error.update(exc.fields)
    return {"error": error}
