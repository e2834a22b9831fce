"""Access-log lines without keys: ``GET /key/info?key=sk-...`` is LiteLLM's form and must keep
working, but a query string is the one part of a request that servers log verbatim.

``QueryRedactingFilter`` rewrites the path argument of uvicorn's access-log record (its args are
``client, method, path?query, http_version, status``) before any handler formats it. It is
installed through uvicorn's ``log_config`` (``log_config``), which every worker process
applies itself, so ``--num_workers`` is covered as well.
"""

from __future__ import annotations

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


_CREDENTIAL_LOGGERS = ("botocore.auth", "botocore.parsers", "botocore.endpoint")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_config(level: int) -> dict[str, Any]:
    """The gateway's one logging config, for ``dictConfig`` in the CLI and as uvicorn's ``log_config``.

    uvicorn applies its ``log_config`` in every worker it spawns; ``basicConfig`` in the CLI reaches only
    the supervisor. So this one dict sets every logger (uvicorn's, the gateway's, the delivery layer's) to
    one format on one handler: before, uvicorn wrote ``INFO:     ...`` while the rest wrote timestamps,
    and a worker's delivery lines had no handler at all (Python's last-resort handler, bare messages).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact_query": {"()": f"{__name__}.QueryRedactingFilter"}},
        "formatters": {"gateway": {"format": LOG_FORMAT}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "gateway",
                                "stream": "ext://sys.stderr"}},
        "root": {"handlers": ["stderr"], "level": logging.getLevelName(level)},
        "loggers": {
            # uvicorn's loggers keep no handlers of their own: their records reach the root's.
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.error": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": True, "filters": ["redact_query"]},
            "spangate": {"level": logging.getLevelName(min(level, logging.INFO))},
            # httpx logs every request URL at INFO; exporters' traffic is accounted for by delivery metrics.
            "httpx": {"level": logging.getLevelName(max(level, logging.WARNING))},
            # At DEBUG botocore's signer logs the canonical request (the session token in it) and its
            # parsers and endpoint log response bodies (STS's secret keys), for Bedrock and the S3 and
            # DynamoDB destinations alike: INFO at least, whatever --detailed_debug says.
            **{name: {"level": logging.getLevelName(max(level, logging.INFO))} for name in _CREDENTIAL_LOGGERS},
        },
    }
