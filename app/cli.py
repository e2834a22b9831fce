"""``spangate``: start the gateway (``--config``), or send it one test request (``--test``)."""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import logging.config
import os
import socket
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from app import __version__
from app.config.settings import ConfigError, GatewayConfig, default_config, load_config
from app.server.accesslog import log_config

log = logging.getLogger("spangate")
WEAK_KEYS = frozenset({"sk-1234", "sk-12345", "sk-master", "master", "changeme", "password", "admin"})
MIN_KEY_LENGTH = 16
STARTUP_FAILED = 3  # as uvicorn's own start-up failure; 2 stays "fix the config"


README_CONFIG = "README.md, section 'Configuration (LiteLLM's config.yaml)'"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="spangate", epilog=f"Models, destinations, keys and every setting live in the config file: see "
                                f"{README_CONFIG}.",
        description="OpenAI-compatible LLM gateway; every call is one OpenTelemetry GenAI span, routed to each team's "
                    "own destinations.")
    parser.add_argument("--config", "-c", help="LiteLLM-style config.yaml (default: two built-in mock models, spans "
                        "to spangate-data/spans.jsonl and the console)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s); any other "
                        "than loopback needs general_settings.master_key")
    parser.add_argument("--port", type=int, default=4000, help="port to listen on (default: %(default)s)")
    parser.add_argument("--num_workers", "--num-workers", type=int, default=1, dest="num_workers",
                        help="worker processes sharing the port (default: %(default)s)")
    parser.add_argument("--debug", action="store_true", help="log at INFO, with an access log (default: WARNING)")
    parser.add_argument("--detailed_debug", "--detailed-debug", action="store_true", dest="detailed_debug",
                        help="log at DEBUG (default: off)")
    parser.add_argument("--test", action="store_true", help="send one chat request to a running gateway and exit")
    parser.add_argument("--base-url", "--base_url", dest="base_url", default=None,
                        help="gateway for --test (default: http://127.0.0.1:<--port>)")
    parser.add_argument("--api-key", "--api_key", dest="api_key", default=None,
                        help="key for --test (default: none, for a gateway without a master key)")
    parser.add_argument("--model", default=None, help="model for --test (default: the first listed)")
    parser.add_argument("--version", action="version", version=f"spangate {__version__}")
    return parser.parse_args(argv)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def weak_master_key(key: str) -> bool:
    return key in WEAK_KEYS or len(key) < MIN_KEY_LENGTH


def check_exposure(config: GatewayConfig, host: str) -> None:
    """Off loopback, a missing or guessable master key would hand out every model (and admin) to anyone."""
    key = config.master_key
    if key is None:
        if is_loopback(host):
            return
        if not config.allow_unauthenticated:
            raise ConfigError(f"general_settings.master_key: not set, so anyone who reaches {host} could call every "
                              "model at your cost; set a master key, listen on 127.0.0.1, or set "
                              "spangate_settings.allow_unauthenticated: true")
        log.warning("no master key: serving %s without authentication (spangate_settings.allow_unauthenticated)",
                    host)
        return
    if not weak_master_key(key):
        return
    if not is_loopback(host):
        raise ConfigError(f"general_settings.master_key: too weak to serve on {host} (fewer than {MIN_KEY_LENGTH} "
                          "characters or a well-known example); use a long random key, or listen on 127.0.0.1")
    log.warning("general_settings.master_key is weak; accepted only because the gateway listens on loopback")


def log_level(args: argparse.Namespace) -> int:
    return logging.DEBUG if args.detailed_debug else logging.INFO if args.debug else logging.WARNING


def setup_logging(args: argparse.Namespace) -> None:
    logging.config.dictConfig(log_config(log_level(args)))


def data_dir_failure(config: GatewayConfig) -> tuple[int, str] | None:
    """Exit code and the one line to print when the data directory (the SQLite store's home) or the
    spool in it cannot be written, else None. Checked before the store: with PostgreSQL the spool was
    the first thing to touch the disk, in the lifespan, and start-up ended in a 59-line traceback."""
    where = config.data_dir / "spool" if config.durable_delivery else config.data_dir
    try:
        where.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=where):  # root passes os.access; a real create tells
            pass
    except OSError as exc:
        what = "the spool directory" if config.durable_delivery else "the data directory"
        return STARTUP_FAILED, (f"spangate: cannot write {what} {where} (spangate_settings.data_dir): "
                                f"{type(exc).__name__}: {exc.strerror or exc}")
    return None


def store_failure(config: GatewayConfig, env: Mapping[str, str]) -> tuple[int, str] | None:
    """Exit code and the one line to print when the store cannot be opened, else None. Checked in the CLI's
    process before uvicorn starts: otherwise each worker's lifespan fails with a 150-line traceback."""
    from app.server.factory import check_store, database_url
    from app.store import StoreUnavailable
    from app.store.engine import display_url

    try:
        asyncio.run(check_store(config, env))
    except ValueError as exc:  # a URL the store cannot use (scheme, in-memory SQLite, schema name)
        return 2, f"spangate: config error: general_settings.database_url: {exc}"
    except StoreUnavailable as exc:
        return STARTUP_FAILED, f"spangate: store unavailable: {display_url(database_url(config))}: {_root_cause(exc)}"
    return None


def _root_cause(exc: BaseException) -> str:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = " ".join(str(exc).split())[:200]  # one line, whatever the driver put in its message
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging(args)
    if args.test:
        from app.smoke import run_test

        return run_test(args.base_url or f"http://127.0.0.1:{args.port}", args.api_key, args.model)
    try:
        config = load_config(args.config) if args.config else default_config()
    except ConfigError as exc:
        print(f"spangate: config error: {exc}", file=sys.stderr)
        return 2
    try:
        check_exposure(config, args.host)
    except ConfigError as exc:
        return fail_startup(config, {**os.environ, **config.environment_variables}, 2, f"spangate: config error: {exc}")
    for warning in config.warnings:
        log.warning("config: %s", warning)
    # As LiteLLM does: environment_variables are exported for the process (and SDKs that read env).
    os.environ.update(config.environment_variables)
    return serve(config, args)


def serve(config: GatewayConfig, args: argparse.Namespace) -> int:
    level = "debug" if args.detailed_debug else "info" if args.debug else "warning"
    common = {"host": args.host, "port": args.port, "loop": "uvloop", "log_level": level,
              "access_log": args.debug or args.detailed_debug, "timeout_graceful_shutdown": 30,
              "log_config": log_config(log_level(args))}
    from app.server.factory import check_destinations
    from app.server.serving import listen

    env = {**os.environ, **config.environment_variables}
    try:
        check_destinations(config, env)
    except ConfigError as exc:
        return fail_startup(config, env, 2, f"spangate: config error: {exc}")
    failure = data_dir_failure(config) or store_failure(config, env)
    if failure is not None:
        return fail_startup(config, env, *failure)
    try:
        sock = listen(args.host, args.port)
    except OSError as exc:
        return fail_startup(config, env, STARTUP_FAILED,
                            f"spangate: cannot listen on http://{args.host}:{args.port}: {exc.strerror or exc}")
    with sock:
        log.info("spangate %s on http://%s:%d with %d model(s); %s", __version__, args.host, args.port,
                 len(config.deployments), describe_destinations(config))
        return _run(config, args, env, sock, common)


def _run(config: GatewayConfig, args: argparse.Namespace, env: Mapping[str, str], sock: socket.socket,
         common: dict[str, Any]) -> int:
    from app.server.factory import create_app
    from app.server.serving import run_server, server_config

    if args.num_workers > 1:
        if args.config:
            os.environ["SPANGATE_CONFIG"] = str(Path(args.config).resolve())
        run_server(server_config("app.server.factory:app_from_env", config, factory=True, workers=args.num_workers,
                                 **common), sock)
        return 0
    try:
        app = create_app(config, own_process=True)
    except ConfigError as exc:
        return fail_startup(config, env, 2, f"spangate: config error: {exc}")
    if run_server(server_config(app, config, **common), sock):
        return 0
    return fail_startup(config, env, STARTUP_FAILED, f"spangate: the server did not start on {args.host}:{args.port}")


def describe_destinations(config: GatewayConfig) -> str:
    """Where spans go and where teams are kept, for the start-up line (never a password)."""
    from app.server.factory import database_url
    from app.store.engine import display_url

    success, failure = config.success_callback, config.failure_callback
    spans = ", ".join(success) if success == failure else \
        f"{', '.join(success) or 'none'} (success), {', '.join(failure) or 'none'} (failure)"
    teams = sum(1 for t in config.default_team_settings if t.success_callback or t.failure_callback)
    return (f"spans -> {spans or 'no global destination'}; {teams} team(s) with destinations in the config, more "
            f"may be set through the admin API; store: {display_url(database_url(config))}")


def fail_startup(config: GatewayConfig, env: Mapping[str, str], code: int, line: str) -> int:
    """Print why start-up failed, tell the failure destinations that take alerts (Sentry), and return the exit
    code. The line names keys, never secret values (database URLs are shown with the password masked)."""
    from app.server.startup_alerts import send_startup_alerts

    print(line, file=sys.stderr)
    send_startup_alerts(config, env, "ConfigError" if code == 2 else "StartupFailure", line)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
