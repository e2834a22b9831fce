"""Where budgets and rate limits are counted: Redis as LiteLLM configures it, and the choices Spangate adds.

Redis, in LiteLLM's places, first found wins: ``router_settings.redis_url``, then
``router_settings.redis_host`` / ``redis_port`` / ``redis_password``, then the environment's
``REDIS_URL``, then ``REDIS_HOST`` / ``REDIS_PORT`` / ``REDIS_PASSWORD``.

``spangate_settings``:

* ``limits_backend``: ``auto`` (Redis when configured, else PostgreSQL when the store is PostgreSQL,
  else in process), or ``memory``, ``redis``, ``postgres`` to insist.
* ``limits_on_backend_failure``: ``open`` (the default: calls pass uncounted while the counters cannot be
  reached; the spend log still records them) or ``closed`` (calls of limited keys get a 503).
* ``redis_key_prefix``: prepended to every Redis key (``spangate:``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from app.config.keys import ConfigError
from app.config.values import as_int, as_mapping, as_str, kind_of

BACKENDS = ("auto", "memory", "redis", "postgres")
KNOWN_ROUTER = frozenset({"redis_url", "redis_host", "redis_port", "redis_password"})


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    backend: str = "auto"
    redis_url: str | None = field(default=None, repr=False)  # may hold the password
    fail_open: bool = True
    redis_key_prefix: str = "spangate:"

    def backend_for(self, store_is_postgres: bool) -> str:
        """The backend ``auto`` stands for with this store."""
        if self.backend != "auto":
            return self.backend
        if self.redis_url is not None:
            return "redis"
        return "postgres" if store_is_postgres else "memory"


def parse_limits(router: Any, spangate: Mapping[str, Any], env: Mapping[str, str]) -> LimitsConfig:
    router = as_mapping(router or {}, "router_settings")
    backend = spangate.get("limits_backend", "auto")
    if backend not in BACKENDS:
        raise ConfigError(f"spangate_settings.limits_backend: one of {', '.join(BACKENDS)}, not {str(backend)[:40]!r}")
    failure = spangate.get("limits_on_backend_failure", "open")
    if failure not in ("open", "closed"):
        raise ConfigError("spangate_settings.limits_on_backend_failure: 'open' or 'closed', "
                          f"not {str(failure)[:40]!r}")
    prefix = spangate.get("redis_key_prefix", "spangate:")
    if not isinstance(prefix, str) or len(prefix) > 200:
        raise ConfigError(f"spangate_settings.redis_key_prefix: a string of at most 200 characters, "
                          f"not {kind_of(prefix)}")
    url = _redis_url(router, env)
    if backend == "redis" and url is None:
        raise ConfigError("spangate_settings.limits_backend is 'redis' but no Redis is configured: set "
                          "router_settings.redis_host (and redis_port, redis_password) or redis_url, or REDIS_HOST")
    return LimitsConfig(backend=backend, redis_url=url, fail_open=failure == "open", redis_key_prefix=prefix)


def _redis_url(router: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    if router.get("redis_url"):
        return _checked_url(as_str(router["redis_url"], "router_settings.redis_url"), "router_settings.redis_url")
    if router.get("redis_host"):
        return _url_of(router.get("redis_host"), router.get("redis_port"), router.get("redis_password"),
                       "router_settings.")
    if env.get("REDIS_URL"):
        return _checked_url(env["REDIS_URL"], "REDIS_URL")
    if env.get("REDIS_HOST"):
        return _url_of(env["REDIS_HOST"], env.get("REDIS_PORT"), env.get("REDIS_PASSWORD"), "")
    return None


def _url_of(host: Any, port: Any, password: Any, where: str) -> str:
    name = f"{where}redis_host" if where else "REDIS_HOST"
    host = as_str(host, name)
    if any(c in host for c in "/@ ?#"):
        raise ConfigError(f"{name}: a host name or address, not a URL")
    port_name = f"{where}redis_port" if where else "REDIS_PORT"
    number = 6379 if port in (None, "") else _port(port, port_name)
    secret = "" if password in (None, "") else f":{quote(str(password), safe='')}@"
    return f"redis://{secret}{host}:{number}/0"


def _port(value: Any, where: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    number = as_int(value, where, minimum=1)
    if number > 65535:
        raise ConfigError(f"{where}: a port from 1 to 65535")
    return number


def _checked_url(url: str, where: str) -> str:
    if url.startswith(("rediss://", "unix://")):
        raise ConfigError(f"{where}: TLS (rediss://) and unix sockets are not supported for the limit counters; "
                          "use redis://host:port/db on a private network")
    if not url.startswith("redis://"):
        # Not echoed: a URL may carry the password.
        raise ConfigError(f"{where}: a redis://[[user]:password@]host[:port][/db] URL")
    return url
