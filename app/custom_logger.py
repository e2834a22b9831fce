"""What LiteLLM users' callback files import, so they run on Spangate with only the imports changed.

    from litellm.integrations.custom_logger import CustomLogger   ->  from app.custom_logger import CustomLogger
    import litellm                                                  ->  from app import custom_logger as litellm

``CustomLogger`` declares the methods Spangate calls (``SUPPORTED_METHODS``); a handler overrides
the ones it needs and only those are wired (``app.litellm.hook``). ``completion_cost`` reads the
cost the gateway already priced for the call from the response it handed over, as LiteLLM keeps it
in ``_hidden_params["response_cost"]``; for any other response it prices model and usage from the
gateway's table (``app.calls.pricing``). Nothing here keeps state between calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.calls.pricing import PriceBook

# The logging methods: arguments as in LiteLLM's docs (log_pre_api_call takes model, messages, kwargs).
LOGGING_METHODS = ("log_pre_api_call", "log_post_api_call", "log_stream_event", "async_log_stream_event",
                   "log_success_event", "log_failure_event", "async_log_success_event", "async_log_failure_event")
# The proxy hooks (signatures in contracts.md): they act on the request, or run after a failure.
PROXY_HOOKS = ("async_pre_call_hook", "async_moderation_hook", "async_post_call_success_hook",
               "async_post_call_failure_hook")
SUPPORTED_METHODS = frozenset(LOGGING_METHODS + PROXY_HOOKS)


class CustomLogger:
    """Base class for callback handlers; every method does nothing until a subclass overrides it."""

    def __init__(self, **kwargs: Any) -> None:  # LiteLLM's takes keyword options; none matter here
        self.options = kwargs

    def log_pre_api_call(self, model: Any, messages: Any, kwargs: dict[str, Any]) -> None:
        pass

    def log_post_api_call(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    def log_stream_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    async def async_log_stream_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                     end_time: Any) -> None:
        pass

    def log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    def log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any, end_time: Any) -> None:
        pass

    async def async_log_success_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        pass

    async def async_log_failure_event(self, kwargs: dict[str, Any], response_obj: Any, start_time: Any,
                                      end_time: Any) -> None:
        pass

    async def async_pre_call_hook(self, user_api_key_dict: UserAPIKeyAuth, cache: DualCache, data: dict[str, Any],
                                  call_type: str) -> dict[str, Any] | None:
        return None

    async def async_moderation_hook(self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth,
                                    call_type: str) -> None:
        pass

    async def async_post_call_success_hook(self, data: dict[str, Any], user_api_key_dict: UserAPIKeyAuth,
                                           response: Any) -> Any:
        return None

    async def async_post_call_failure_hook(self, request_data: dict[str, Any], original_exception: BaseException,
                                           user_api_key_dict: UserAPIKeyAuth) -> None:
        pass


def overridden(handler: object) -> frozenset[str]:
    """The supported methods ``handler`` defines itself (a handler that does not subclass
    ``CustomLogger`` defines all it has)."""
    cls = type(handler)
    return frozenset(name for name in SUPPORTED_METHODS
                     if callable(getattr(cls, name, None)) and getattr(cls, name) is not getattr(CustomLogger, name))


class ResponseObject(dict[str, Any]):
    """A response as handlers read it in LiteLLM: ``response_obj["usage"]`` and ``response_obj.usage``
    both work, at every level. ``_hidden_params`` holds what the gateway knows beside the body."""

    _hidden_params: dict[str, Any]

    def __init__(self, data: Mapping[str, Any] = (), hidden: Mapping[str, Any] | None = None) -> None:
        super().__init__((k, _wrap(v)) for k, v in dict(data).items())
        object.__setattr__(self, "_hidden_params", dict(hidden or {}))

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_hidden_params":
            object.__setattr__(self, name, value)
        else:
            self[name] = _wrap(value)

    def model_dump(self) -> dict[str, Any]:
        """Plain dicts and lists (pydantic's name, which handlers written for ModelResponse call)."""
        return plain(self)

    def json(self) -> dict[str, Any]:
        return plain(self)


def _wrap(value: Any) -> Any:
    if isinstance(value, Mapping) and not isinstance(value, ResponseObject):
        return ResponseObject(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


def plain(value: Any) -> Any:
    """Dicts and lists again, for what a hook hands back to the gateway."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    dump = getattr(value, "model_dump", None)  # a pydantic object a hook built itself
    return plain(dump()) if callable(dump) else value


@dataclass(slots=True)
class UserAPIKeyAuth:
    """The caller, as LiteLLM's proxy hooks receive it. ``api_key`` is the key's hash, never the key."""

    api_key: str | None = None
    key_alias: str | None = None
    team_id: str | None = None
    team_alias: str | None = None
    models: list[str] = field(default_factory=list)
    user_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str | None:
        return self.api_key


_CACHE_LIMIT = 10_000


class DualCache:
    """The ``cache`` argument of ``async_pre_call_hook``: an in-memory dict per handler and worker
    (LiteLLM's is backed by Redis when it has one; this gateway shares none between workers).
    Bounded: past ``_CACHE_LIMIT`` entries the oldest goes."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    def get_cache(self, key: str, **_: Any) -> Any:
        return self._data.get(key)

    def set_cache(self, key: str, value: Any, **_: Any) -> None:
        self._data.pop(key, None)
        self._data[key] = value
        if len(self._data) > _CACHE_LIMIT:
            del self._data[next(iter(self._data))]

    def delete_cache(self, key: str) -> None:
        self._data.pop(key, None)

    async def async_get_cache(self, key: str, **kwargs: Any) -> Any:
        return self.get_cache(key, **kwargs)

    async def async_set_cache(self, key: str, value: Any, **kwargs: Any) -> None:
        self.set_cache(key, value, **kwargs)


def completion_cost(completion_response: Any = None, model: str | None = None, **_: Any) -> float:
    """USD cost of a response: the gateway's own figure when the response came from it, else model
    and usage priced from the gateway's table (0.0 when the model or usage is unknown)."""
    if completion_response is None:
        return 0.0
    hidden = getattr(completion_response, "_hidden_params", None)
    if isinstance(hidden, Mapping) and hidden.get("response_cost") is not None:
        return float(hidden["response_cost"])
    body = plain(completion_response) if not isinstance(completion_response, Mapping) else completion_response
    if not isinstance(body, Mapping):
        return 0.0
    return _priced(model or body.get("model"), body.get("usage"))


def _priced(model: Any, usage: Any) -> float:
    if not isinstance(model, str) or not isinstance(usage, Mapping):
        return 0.0
    provider, _, name = model.partition("/") if "/" in model else ("openai", "", model)
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, Mapping) else 0
    cost = PriceBook().cost(provider, name, {}, _int(usage.get("prompt_tokens")),
                            _int(usage.get("completion_tokens")), _int(cached))
    return cost or 0.0


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def hook_like(names: Iterable[str]) -> list[str]:
    """Names that look like a callback method (``log_*``, ``async_*``, ``*_hook``, ``*_event``)."""
    return [n for n in names if not n.startswith("_")
            and (n.startswith(("log_", "async_")) or n.endswith(("_hook", "_event", "_events")))]
