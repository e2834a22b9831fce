"""Access-log lines without keys: ``GET /key/info?key=sk-...`` is LiteLLM's form and must keep
working, but a query string is the one part of a request that servers log verbatim.

``QueryRedactingFilter`` rewrites the path argument of uvicorn's access-log record (its args are
``client, method, path?query, http_version, status``) before any handler formats it. It is
installed through uvicorn's ``log_config`` (``uvicorn_log_config``), which every worker process
applies itself, so ``--num_workers`` is covered as well.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

REDACTED = "***"
_SECRET_NAME = re.compile(r"key|token|secret|passw|auth|signature|credential", re.IGNORECASE)
# A value that looks like a credential whatever its name: a known key prefix, or a long run of
# key characters that mixes letters and digits (ids and words rarely do both at 20+ characters).
_KEY_PREFIX = re.compile(r"^(sk|pk|rk|key)[-_]", re.IGNORECASE)
_LONG_TOKEN = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_\-+/=~.%]{20,}$")
_PATH_ARG = 2


def redact_query(path: str) -> str:
    """``path?query`` with the value of every secret-looking parameter replaced."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    return base + "?" + "&".join(_redact_pair(pair) for pair in query.split("&"))


def _redact_pair(pair: str) -> str:
    name, sep, value = pair.partition("=")
    if sep and value and (_SECRET_NAME.search(name) or _KEY_PREFIX.match(value) or _LONG_TOKEN.match(value)):
        return f"{name}={REDACTED}"
    return pair


class QueryRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > _PATH_ARG and isinstance(args[_PATH_ARG], str):
            record.args = (*args[:_PATH_ARG], redact_query(args[_PATH_ARG]), *args[_PATH_ARG + 1:])
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config, with the filter on its access logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_query"] = {"()": f"{__name__}.QueryRedactingFilter"}
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_query"]
    return config
