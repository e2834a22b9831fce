"""One call's record: what came in, what went upstream, what came back, and how it ended.

The proxy fills one ``CallRecord`` per call and everything else reads it: the span's attributes
are derived from it (``app.calls.span``), hooks change or reject the request through it
(``app.hooks.chain``), and logging callbacks get ``logged()``, the view with what this call may not log
taken out. Fields are plain data; nothing here does I/O.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.calls.caller import Caller
from app.calls.operations import Operation
from app.calls.redact import masked_url, scrub
from app.errors import GatewayError

REDACTED = "redacted-by-spangate"
# Masked wherever headers are logged; spangate_settings.redact_headers adds names.
ALWAYS_MASKED_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "cookie", "set-cookie",
                                   "proxy-authorization", "x-litellm-api-key", "ocp-apim-subscription-key",
                                   "x-goog-api-key", "x-amz-security-token"})
MASK = "***"
# Request-metadata keys the gateway writes itself (LiteLLM's ``litellm_params.metadata`` names, and the
# raw request): a client's value under one of them would be shown at destinations as the gateway's
# word (``user_api_key_team_id`` naming another team, a ``raw_request`` with log_raw_request off).
GATEWAY_METADATA_KEYS = frozenset({"headers", "model_group", "deployment", "raw_request", "requester_ip_address",
                                   "proxy_server_request", "api_base", "model_info", "hidden_params"})
_GATEWAY_METADATA_PREFIX = "user_api_key"  # user_api_key, _alias, _team_id, _user_id, _hash, ...


@dataclass(slots=True, eq=False)
class SentRequest:
    """What went to the deployment that answered: enough to print it as a curl command."""

    method: str
    url: str
    headers: Mapping[str, str]  # as sent; secrets included: mask before logging (``masked_headers``)
    body: dict[str, Any]


@dataclass(slots=True, eq=False)
class CallRecord:
    operation: Operation  # compares equal to its contracts.semconv OP_* name: chat, text_completion, embeddings
    caller: Caller
    headers: Mapping[str, str]  # as received, lower-case names; use ``logged_headers()`` to log them
    client_ip: str | None
    path: str = ""
    masked_header_names: frozenset[str] = ALWAYS_MASKED_HEADERS
    # Who may see the content: False means messages and responses reach no destination and no log.
    capture_content: bool = True
    log_raw_request: bool = False  # metadata.log_raw_request, honoured only while capture_content
    request: dict[str, Any] | None = None  # the parsed body as received, ``metadata`` taken out
    metadata: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # the model group the client asked for
    group: str | None = None  # ``model`` once found configured: the only model name a metric label takes
    stream: bool = False
    deployment: Any = None  # app.providers.Deployment that answered (or was tried last)
    sent: SentRequest | None = None
    status: int | None = None  # HTTP status the client got (or is getting, for a stream)
    response: dict[str, Any] | None = None  # the complete answer, or the assembled stream
    usage: dict[str, Any] | None = None
    cost: float | None = None
    error: GatewayError | None = None
    exception: BaseException | None = None  # what caused ``error``, when it was not a GatewayError
    start_time: float = field(default_factory=time.time)  # unix seconds
    end_time: float | None = None
    started: float = field(default_factory=time.perf_counter)
    time_to_first_chunk: float | None = None  # seconds, streams only
    stream_outcome: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # what hooks record for the span (moderation verdicts)
    ticket: Any = None  # app.limits Ticket: the call was admitted against its key's and team's limits

    @property
    def team_id(self) -> str | None:
        return self.caller.team_id

    def logged_headers(self) -> dict[str, str]:
        """The client's headers as they may be logged: credentials and configured names masked."""
        return masked_headers(self.headers, self.masked_header_names)

    def logged(self) -> CallRecord:
        """The record logging callbacks and destinations may see. With content capture off, the
        messages, input, response content and raw request are gone (metadata stays); the request
        dicts are copies either way, so a callback cannot change what the client gets."""
        request = copy.deepcopy(self.request) if self.request is not None else None
        response = copy.deepcopy(self.response) if self.response is not None else None
        sent = replace(self.sent, headers=masked_headers(self.sent.headers, self.masked_header_names),
                       body=copy.deepcopy(self.sent.body)) if self.sent is not None else None
        if not self.capture_content:
            request = redact_request(request)
            response = redact_response(response)
            sent = replace(sent, body=redact_request(sent.body)) if sent is not None else None
        return replace(self, request=request, response=response, sent=sent, headers=self.logged_headers(),
                       log_raw_request=self.log_raw_request and self.capture_content)


def client_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` without the keys the gateway owns. Dropped rather than refused: LiteLLM overwrites
    them too, and a client that forwards metadata it was handed must keep working."""
    return {key: value for key, value in metadata.items()
            if key not in GATEWAY_METADATA_KEYS and not str(key).startswith(_GATEWAY_METADATA_PREFIX)}


def masked_headers(headers: Mapping[str, str], names: frozenset[str]) -> dict[str, str]:
    return {name: (MASK if name.lower() in names else value) for name, value in headers.items()}


_CONTENT_FIELDS = ("messages", "input", "prompt", "tools", "functions")


def redact_request(body: dict[str, Any] | None) -> dict[str, Any] | None:
    if body is None:
        return None
    out = dict(body)
    for name in _CONTENT_FIELDS:
        if name in out:
            out[name] = REDACTED
    return out


def redact_response(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The answer without its content: ids, model, usage and finish reasons stay."""
    if body is None:
        return None
    out = {name: value for name, value in body.items() if name not in ("choices", "data")}
    choices = body.get("choices")
    if isinstance(choices, list):
        out["choices"] = [_redacted_choice(choice) for choice in choices]
    data = body.get("data")
    if isinstance(data, list):
        out["data"] = [{"object": item.get("object", "embedding"), "index": item.get("index", i)}
                       if isinstance(item, Mapping) else REDACTED for i, item in enumerate(data)]
    return out


def _redacted_choice(choice: Any) -> Any:
    if not isinstance(choice, Mapping):
        return REDACTED
    out = {name: value for name, value in choice.items() if name in ("index", "finish_reason")}
    if "message" in choice:
        out["message"] = {"role": (choice.get("message") or {}).get("role", "assistant"), "content": REDACTED}
    if "text" in choice:
        out["text"] = REDACTED
    return out



def curl_command(sent: SentRequest, secrets: Iterable[str], masked_names: frozenset[str]) -> str:
    """The request as a curl command one can paste (LiteLLM's ``raw_request``): credential headers
    masked by name, the URL's ``user:password@`` masked, and the deployment's secrets scrubbed from
    everything else."""
    lines = [f"curl -X {sent.method} {_quote(masked_url(sent.url))}"]
    for name, value in masked_headers(sent.headers, masked_names).items():
        lines.append(f"-H {_quote(f'{name}: {value}')}")
    lines.append(f"-d {_quote(json.dumps(sent.body, ensure_ascii=False, default=str))}")
    return scrub(" \\\n".join(lines), secrets)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"
