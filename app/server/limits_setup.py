"""Budgets and rate limits at start-up: the counter backend the config asks for, the spend ledger, and
the limiter handed to the proxy once the store is open (``app.gateway.spend.CallLimits.attach``).

With no Redis configured the Redis client is never imported; the PostgreSQL backend needs the store
to be PostgreSQL, the memory backend serves one instance (SQLite, or PostgreSQL with
``limits_backend: memory``).
"""

from __future__ import annotations

import logging
from typing import Any

from app.config.keys import ConfigError
from app.config.settings import GatewayConfig
from app.store import Store

log = logging.getLogger("spangate.limits")
# How long one admission may wait on its backend before the backend counts as down. Redis answers in
# well under a millisecond; PostgreSQL admissions of one counter queue on its advisory lock, so thirty
# concurrent calls of one key wait their turn (measured: ~5 ms each) and must not read as an outage.
BACKEND_TIMEOUTS = {"redis": 0.5, "postgres": 5.0, "memory": 5.0}


def counter_backend(config: GatewayConfig, store: Store) -> Any:
    kind = config.limits.backend_for(store.is_postgres)
    if kind == "redis":
        from app.limits.redis_backend import RedisBackend

        return RedisBackend(config.limits.redis_url, store=store, key_prefix=config.limits.redis_key_prefix)
    if kind == "postgres":
        if not store.is_postgres:
            raise ConfigError("spangate_settings.limits_backend is 'postgres' but the store is SQLite: set "
                              "general_settings.database_url to PostgreSQL, or use 'memory' or 'redis'")
        from app.limits.postgres_backend import PostgresBackend

        return PostgresBackend(store)
    from app.limits.memory import MemoryBackend

    return MemoryBackend(store)


async def open_limits(config: GatewayConfig, store: Store, meter: Any) -> Any:
    """The started limiter (its ledger replaying what a killed process left, then flushing)."""
    from app.limits.ledger import SpendLedger
    from app.limits.service import Limiter

    backend = counter_backend(config, store)
    ledger = SpendLedger(store, config.data_dir / "spend")
    limiter = Limiter(backend, ledger, fail_open=config.limits.fail_open, meter=meter,
                      timeout=BACKEND_TIMEOUTS.get(backend.name, 5.0))
    await limiter.start()
    log.info("budgets and rate limits counted in %s (%s when it cannot be reached)", backend.name,
             "calls pass" if config.limits.fail_open else "limited keys' calls are refused")
    return limiter
