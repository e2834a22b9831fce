"""``create_app(config)``: builds one worker's gateway — providers, telemetry, routing and routes.

Nothing is built at import time; each worker process calls the factory after fork, so each has
its own tracer provider, delivery threads and spool.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from litestar import Litestar, MediaType, Request, Response
from litestar.datastructures import State
from litestar.di import Provide
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi import OpenAPIConfig

from app import __version__
from app.api import AdminCheck, DeliveryHistory, api_dependencies, api_routes
from app.calls.metrics import GenAIMetrics
from app.calls.pricing import PriceBook
from app.config.settings import ConfigError, GatewayConfig, load_config
from app.dialects import routes as dialect_routes
from app.errors import GatewayError, InvalidRequest, NotFound, PayloadTooLarge, ServiceUnavailable, render_error
from app.gateway.front import GatewayApp
from app.gateway.proxy import Admission, ProxyService
from app.hooks.metrics import register_hook_metrics
from app.providers import ModelRouter
from app.server.hook_setup import HookResources, build_hooks, check_hooks
from app.server.limits_setup import open_limits
from app.server.telemetry import (
    build_meters,
    build_resource,
    build_tracer_provider,
    build_upstream_transport,
    gateway_tracer,
    http_semconv_mode,
    pool_timeout_counter,
    sdk_disabled,
)
from app.server.tuning import cap_malloc_arenas, tune_collector
from app.store import Store, StoreSnapshot, StoreUnavailable, StoreWatcher
from app.teams.auth import Authenticator
from app.teams.directory import TeamDirectory
from app.teams.routing import RoutingBuilder, global_specs
from app.teams.secrets import SecretBox
from app.teams.state import TeamState
from app.wire.egress import ProxyRoutes, client_mounts
from exporters.file import FileConfig, create_span_log
from exporters.registry import BuildContext, DestinationRegistry, builtin_registry
from exporters.transport.client import ExportClient
from exporters.transport.http11 import ExportTransport
from exporters.transport.urlpolicy import guarded_client
from processors.delivery import DeliveryConfig, DeliveryManager
from processors.team_router import TeamRouterSpanProcessor

log = logging.getLogger("spangate")
CONFIG_ENV = "SPANGATE_CONFIG"


@dataclass
class Gateway:
    """Everything one worker owns (no module globals); routes get only the parts they ask for (``_dependencies``)."""

    config: GatewayConfig
    env: Mapping[str, str]
    registry: DestinationRegistry
    auth: Authenticator
    teams: TeamDirectory
    proxy: ProxyService
    router_processor: TeamRouterSpanProcessor
    tracer_provider: Any
    delivery: DeliveryManager
    routing: RoutingBuilder
    build_ctx: BuildContext
    upstream: httpx.AsyncBaseTransport
    metric_reader: Any  # InMemoryMetricReader behind /metrics
    meter_provider: Any
    store_link: StoreLink | None = None  # set once the store is open and watched (the lifespan)

    def rebuild_routes(self, version: int = 0) -> None:
        """Recompute the routing table from config and teams; exporters are rebuilt only where changed."""
        globals_ = global_specs(self.config, self.registry, self.env, self.build_ctx)
        table = self.routing.build(globals_, self.teams.destination_specs(self.registry),
                                   self.teams.logging_disabled(), version, self.teams.key_destinations())
        self.router_processor.update(table)


def create_app(config: GatewayConfig, *, env: Mapping[str, str] | None = None,
               delivery_config: DeliveryConfig | None = None, own_process: bool = False) -> GatewayApp:
    """``own_process``: the app is the only one in its process (the CLI's workers), so it may tune
    process-wide state such as the garbage collector; tests run many apps in one process."""
    env = dict(os.environ if env is None else env) | dict(config.environment_variables)
    gateway = build_gateway(config, env, delivery_config)
    admin_check = AdminCheck(config.master_key, gateway.auth)
    history = DeliveryHistory(gateway.delivery)  # sampled by the lifespan's task, read by the admin page
    litestar = Litestar(
        route_handlers=api_routes(admin_check),
        dependencies=_dependencies(gateway, admin_check, history),
        exception_handlers={GatewayError: gateway_error_response, HTTPException: _http_error,
                            StoreUnavailable: _store_unavailable, Exception: _internal_error},
        request_max_body_size=config.max_request_body_bytes,
        lifespan=[_lifespan(gateway, history, tune_gc=own_process)],
        state=State({"gateway": gateway}),  # for tests and tooling; routes read their own dependencies
        openapi_config=OpenAPIConfig(title="Spangate admin API", version=__version__, path="/schema"),
        debug=False,
        # Litestar's default config takes over the root logger in each process it starts in (its own
        # "INFO - time - ..." format); the CLI's one logging config (app.server.accesslog.log_config) rules instead.
        logging_config=None,
    )
    return GatewayApp(litestar, gateway, dialect_routes())


def _dependencies(gateway: Gateway, admin_check: AdminCheck, history: DeliveryHistory) -> dict[str, Provide]:
    return api_dependencies(settings=gateway.config, auth=gateway.auth, admin_check=admin_check,
                            teams=gateway.teams, registry=gateway.registry, delivery=gateway.delivery,
                            hooks=gateway.proxy.hooks, metric_reader=gateway.metric_reader,
                            resource=gateway.tracer_provider.resource, build_ctx=gateway.build_ctx,
                            store_link=lambda: gateway.store_link, history=history,
                            call_limits=gateway.proxy.limits)


def export_client(upstream_proxy: str | None, limits: httpx.Limits, deadline: float) -> httpx.Client:
    """The config-file destinations' client: the lean export path, and httpx's own transports only for
    the routes ``upstream_proxy`` sends through a proxy. ``deadline``: the most one export exchange
    takes on the lean path (httpx's proxied transports bound each read only)."""
    mounts = client_mounts(upstream_proxy, limits)
    transport = ExportTransport(deadline=deadline)
    if not mounts:
        return ExportClient(timeout=10.0, trust_env=False, transport=transport)
    return httpx.Client(timeout=10.0, trust_env=False, transport=transport, mounts=mounts)


def build_gateway(config: GatewayConfig, env: Mapping[str, str], delivery_config: DeliveryConfig | None) -> Gateway:
    processor = TeamRouterSpanProcessor()
    resource = build_resource(env)
    tracer_provider = build_tracer_provider(processor, resource)
    meter_provider, metric_reader = build_meters(resource, env)
    meter = meter_provider.get_meter("spangate", __version__)
    registry = builtin_registry()
    pool = config.upstream_pool
    proxies = ProxyRoutes.from_settings(config.upstream_proxy)
    upstream = build_upstream_transport(tracer_provider, child_spans=processor.traces_current_call,
                                        max_connections=pool.max_connections, max_per_origin=pool.max_per_origin,
                                        proxies=proxies, on_pool_timeout=pool_timeout_counter(meter, "deployments"),
                                        http_semconv=http_semconv_mode(env))
    # Moderation's own pool: held model streams must not stop inputs being checked, nor the reverse.
    def hook_transport() -> httpx.AsyncBaseTransport:
        return build_upstream_transport(tracer_provider, child_spans=processor.traces_current_call,
                                        max_connections=pool.max_per_origin, proxies=proxies,
                                        on_pool_timeout=pool_timeout_counter(meter, "moderation"),
                                        http_semconv=http_semconv_mode(env))
    delivery_config = delivery_config or _delivery_config(config)
    delivery = DeliveryManager(delivery_config, meter=meter, logger=logging.getLogger("spangate.delivery"))
    limits = httpx.Limits(max_connections=64)
    # An export ends by the delivery layer's export_timeout however its destination trickles the
    # answer: delivery threads are shared by every team.
    deadline = delivery_config.export_timeout
    # API-set destinations connect directly, never through upstream_proxy: the address policy must
    # see the destination's own address (a proxy would resolve and connect on its behalf).
    build_ctx = BuildContext(http_client=export_client(config.upstream_proxy, limits, deadline),
                             span_log_path=config.resolved_span_log_path,
                             api_http_client=guarded_client(config.callback_policy, timeout=10.0, trust_env=False,
                                                            limits=limits, deadline=deadline))
    teams = TeamDirectory(config)
    auth = Authenticator(config.master_key)
    # Each request names the gateway span as its parent; a traced call's instrumentation replaces that
    # traceparent with its own child span's.
    models = ModelRouter.build(config.deployments, upstream, inject_traceparent=True,
                               max_response_bytes=config.max_upstream_response_bytes,
                               allow_mock_response=config.allow_mock_response, pool_wait=pool.wait_seconds,
                               upstream_proxy=config.upstream_proxy)
    tracer = gateway_tracer(tracer_provider)
    hooks = build_hooks(config, env, resources=HookResources(new_transport=hook_transport, meter=meter, tracer=tracer,
                                                             team_params=teams.hook_params))
    register_hook_metrics(meter, hooks)
    metrics = GenAIMetrics(meter, legacy=config.legacy_genai_metrics)
    proxy = ProxyService(models, tracer, PriceBook(), metrics,
                         max_sse_event_bytes=config.max_sse_event_bytes, hooks=hooks,
                         redact_headers=config.redact_headers, admission=Admission(auth, teams))
    check_destinations(config, env)
    routing = RoutingBuilder(delivery, build_ctx, export_traces=_export_traces(env))
    return Gateway(config=config, env=env, registry=registry, auth=auth, teams=teams,
                   proxy=proxy, router_processor=processor, tracer_provider=tracer_provider, delivery=delivery,
                   routing=routing, build_ctx=build_ctx, upstream=upstream,
                   metric_reader=metric_reader, meter_provider=meter_provider)


def _export_traces(env: Mapping[str, str]) -> bool:
    if not sdk_disabled(env):
        return True
    log.warning("OTEL_SDK_DISABLED=true: trace destinations (otel, traceloop, teams' otlp) get no spans; "
                "call logs (langfuse, s3, ...) are not OpenTelemetry export and keep running")
    return False


def check_destinations(config: GatewayConfig, env: Mapping[str, str]) -> None:
    """Resolve every configured destination and built-in hook's settings (and the resource they all
    export) now, so a bad callback stops start-up with one line (ConfigError) before the server binds
    or forks workers, instead of failing inside the lifespan."""
    build_resource(env)
    registry = builtin_registry()
    with httpx.Client() as client:
        specs = global_specs(config, registry, env,
                             BuildContext(http_client=client, span_log_path=config.resolved_span_log_path))
    TeamDirectory(config).destination_specs(registry)
    check_hooks(config)
    for spec in specs:
        if isinstance(spec.config, FileConfig):  # the local span log: there from the start
            try:
                create_span_log(spec.config)
            except OSError as exc:
                raise ConfigError(f"spangate_settings.span_log_path: cannot create {spec.config.path}: "
                                  f"{exc.strerror or exc}") from None


def _delivery_config(config: GatewayConfig) -> DeliveryConfig:
    return DeliveryConfig(spool_dir=config.data_dir / "spool", durable=config.durable_delivery,
                          max_spool_bytes=config.spool_max_bytes, workers=config.delivery_workers,
                          shutdown_flush_timeout=config.shutdown_flush_seconds,
                          failing_log_interval=config.delivery_failing_log_seconds,
                          batch_delay=config.delivery_linger_seconds,
                          max_batch_delay=config.delivery_linger_max_seconds,
                          dead_letter_retention=config.dead_letter_retention,
                          dead_letters_per_destination=config.dead_letters_per_destination)




def _lifespan(gateway: Gateway, history: DeliveryHistory, *, tune_gc: bool) -> Any:
    @asynccontextmanager
    async def lifespan(_app: Litestar) -> AsyncIterator[None]:
        if tune_gc:  # a worker process of its own: process-wide settings are ours to make
            cap_malloc_arenas(gateway.env)
        gateway.delivery.start()
        await _open_store(gateway)
        link = gateway.store_link
        if link is not None:
            limiter = await open_limits(gateway.config, link.store, gateway.meter_provider.get_meter("spangate.limits"))
            gateway.proxy.limits.attach(limiter, spend_logs=not gateway.config.disable_spend_logs)
        gateway.rebuild_routes(link.team_state.version if link is not None else 0)
        if tune_gc:
            tune_collector()
        sampler = asyncio.create_task(history.run(), name="spangate-delivery-history")
        try:
            yield
        finally:
            sampler.cancel()
            await gateway.proxy.hooks.aclose(gateway.config.shutdown_flush_seconds)
            if gateway.proxy.limits.limiter is not None:
                await gateway.proxy.limits.limiter.close()  # the ledger's last flush, before the store closes
            if link is not None:
                await link.watcher.stop()
                await link.store.close()
            await gateway.upstream.aclose()
            gateway.tracer_provider.shutdown()
            gateway.meter_provider.shutdown()
            gateway.delivery.shutdown(gateway.config.shutdown_flush_seconds)
            gateway.build_ctx.http_client.close()
            if gateway.build_ctx.api_http_client is not None:
                gateway.build_ctx.api_http_client.close()

    return lifespan


def database_url(config: GatewayConfig) -> str:
    if config.database_url:
        return config.database_url
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{(config.data_dir / 'spangate.db').resolve()}"


async def _open(config: GatewayConfig, env: Mapping[str, str]) -> Store:
    return await Store.open(database_url(config), schema=env.get("SPANGATE_DB_SCHEMA") or None)


async def check_store(config: GatewayConfig, env: Mapping[str, str]) -> None:
    """Open (and migrate) the store once before serving: an unreachable store then stops start-up
    with one line from the CLI, rather than a lifespan traceback from every worker."""
    store = await _open(config, env)
    await store.close()


async def _open_store(gateway: Gateway) -> None:
    """Teams, keys and callbacks: loaded once, then kept current by the watcher (no DB on requests)."""
    store = await _open(gateway.config, gateway.env)
    box = SecretBox.from_keys(gateway.env.get("SPANGATE_SALT_KEY"), gateway.config.master_key)
    state = TeamState(gateway.auth, gateway.teams, gateway.registry, box,
                      global_content=not gateway.config.turn_off_message_logging)

    def on_change(snapshot: StoreSnapshot) -> None:
        state.apply(snapshot)
        if gateway.store_link is not None:  # the first snapshot is applied before routes are built
            gateway.rebuild_routes(snapshot.version)

    watcher = StoreWatcher(store, on_change, interval=gateway.config.team_poll_seconds)
    await watcher.start()
    gateway.store_link = StoreLink(store, box, state, watcher)


@dataclass(frozen=True, slots=True)
class StoreLink:
    """The open store and what follows it: the secret box for callback secrets, the team state the
    request path reads, and the watcher that keeps that state current."""

    store: Store
    secret_box: SecretBox
    team_state: TeamState
    watcher: StoreWatcher

    def db_status(self) -> str:
        return "connected" if self.watcher.consecutive_failures == 0 else "unreachable"


def app_from_env() -> GatewayApp:
    """Factory for ``uvicorn --factory`` with several workers: each worker loads the config itself."""
    from app.server.serving import exit_with_supervisor

    exit_with_supervisor(os.environ)
    path = os.environ.get(CONFIG_ENV)
    if path:
        return create_app(load_config(Path(path)), own_process=True)
    from app.config.settings import default_config

    return create_app(default_config(), own_process=True)


# --- errors: one mapping to OpenAI's error JSON -------------------------------------------------

_STATUS_ERRORS: dict[int, type[GatewayError]] = {400: InvalidRequest, 404: NotFound, 413: PayloadTooLarge}


def gateway_error_response(_request: Request[Any, Any, Any], exc: GatewayError) -> Response[Any]:
    """Litestar's side of ``render_error``: its headers are given in full, so Litestar adds none."""
    answer = render_error(exc)
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in answer.headers}
    return Response(answer.body, status_code=answer.status, media_type=MediaType.JSON, headers=headers)


# The watcher polls every team_poll_seconds and the admin API answers again as soon as the store
# does; a few seconds keeps clients from hammering a database that is restarting.
STORE_RETRY_AFTER_SECONDS = 5


def _store_unavailable(request: Request[Any, Any, Any], exc: StoreUnavailable) -> Response[Any]:
    """Every admin read and write that reaches a store that is down: one mapping, not one per handler."""
    log.info("%s %s: %s", request.method, request.url.path, exc)  # the watcher warns once per outage
    error = ServiceUnavailable("the team and key store is unreachable; the admin API answers again when it is back "
                               "(virtual keys already known keep working)", code="store_unavailable",
                               retry_after=STORE_RETRY_AFTER_SECONDS)
    return gateway_error_response(request, error)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    status = exc.status_code
    kind = _STATUS_ERRORS.get(status)
    if status == 413:
        error: GatewayError = PayloadTooLarge("request body is larger than the configured limit "
                                              "(general_settings.max_request_body_bytes)")
    elif isinstance(exc, ValidationException):
        problems = "; ".join(f"{e.get('key', '')}: {e.get('message', '')}" for e in (exc.extra or [])
                             if isinstance(e, dict))
        error = InvalidRequest(f"invalid request body: {problems or exc.detail}", code="invalid_request_body")
    elif status == 404:
        error = NotFound(f"no route {request.method} {request.url.path}", code="route_not_found")
    elif kind is not None:
        error = kind(str(exc.detail))
    else:
        error = GatewayError(str(exc.detail), status=status, type="invalid_request_error")
    return gateway_error_response(request, error)


def _internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return gateway_error_response(request, GatewayError("internal error; see the gateway log", code="internal_error"))
