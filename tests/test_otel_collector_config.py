"""Structural checks of the reference ``otel-collector.yaml``.

No collector binary can be installed here, so this is the collector's own start-up validation
re-done for the parts that matter: every component a pipeline names is defined, connectors are
wired on both ends, routes point at real pipelines and match on a resource attribute the gateway
really sets (names read from contracts/semconv.py), the agents' load balancing keys on one too and
reaches the gateway role's receiver, every team pipeline queues on disk, persistent queues use an
enabled storage extension, and no secret is written in clear.
Each checker returns a list of problems, so the negative tests can feed it a broken copy.
"""

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contracts.semconv import SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION, TEAM_RESOURCE

CONFIG_PATH = Path(__file__).resolve().parent.parent / "otel-collector.yaml"
ENV_REF = re.compile(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*\}")
SECRET_KEY_WORDS = ("authorization", "api-key", "api_key", "apikey", "token", "secret", "password")
# Shapes of real credentials that must never appear, whatever key holds them.
SECRET_SHAPES = re.compile(r"(sk-[A-Za-z0-9]{8,}|pk-lf-|sk-lf-|AKIA[0-9A-Z]{12,}|(Basic|Bearer) (?!\$\{env:))")

Config = dict[str, Any]
# What the gateway puts on every resource it exports (app/server/telemetry.py build_resource), and
# the team attributes OTLP encoding adds per team (exporters/encode/otlp_proto.py).
GATEWAY_RESOURCE = frozenset({SERVICE_NAME, SERVICE_VERSION, SERVICE_INSTANCE_ID, *TEAM_RESOURCE})
ATTRIBUTE_REF = re.compile(r'attributes\["([^"]+)"\]')


def load() -> Config:
    return yaml.safe_load(CONFIG_PATH.read_text())


def _pipelines(config: Config) -> dict[str, Config]:
    return config.get("service", {}).get("pipelines", {}) or {}


def _defined(config: Config, section: str) -> set[str]:
    return set(config.get(section) or {})


def check_pipeline_components(config: Config) -> list[str]:
    """Every receiver, processor and exporter a pipeline lists is defined (connectors included)."""
    connectors = _defined(config, "connectors")
    problems = []
    for name, pipeline in _pipelines(config).items():
        for role in ("receivers", "processors", "exporters"):
            allowed = _defined(config, role) | (connectors if role != "processors" else set())
            missing = [c for c in pipeline.get(role, []) if c not in allowed]
            problems += [f"{name}.{role}: {c!r} is not defined" for c in missing]
        if not pipeline.get("receivers") or not pipeline.get("exporters"):
            problems.append(f"{name}: a pipeline needs receivers and exporters")
    return problems


def check_connectors_wired(config: Config) -> list[str]:
    """A connector is an exporter in some pipeline and a receiver in another, or it never runs."""
    pipelines = _pipelines(config).values()
    problems = []
    for connector in _defined(config, "connectors"):
        if not any(connector in p.get("exporters", []) for p in pipelines):
            problems.append(f"connector {connector!r} is no pipeline's exporter")
        if not any(connector in p.get("receivers", []) for p in pipelines):
            problems.append(f"connector {connector!r} is no pipeline's receiver")
    return problems


def _routing_connectors(config: Config) -> dict[str, Config]:
    return {n: c for n, c in (config.get("connectors") or {}).items() if n.split("/")[0] == "routing"}


def check_routes(config: Config) -> list[str]:
    """Routes name existing pipelines that receive from that very connector."""
    pipelines = _pipelines(config)
    problems = []
    for name, connector in _routing_connectors(config).items():
        targets = [p for route in connector.get("table", []) for p in route.get("pipelines", [])]
        for target in targets + list(connector.get("default_pipelines", [])):
            if target not in pipelines:
                problems.append(f"{name}: route to undefined pipeline {target!r}")
            elif name not in pipelines[target].get("receivers", []):
                problems.append(f"{name}: pipeline {target!r} does not receive from {name}")
        if not connector.get("table"):
            problems.append(f"{name}: empty routing table")
    return problems


def check_route_conditions(config: Config, resource_attributes: frozenset[str]) -> list[str]:
    """Every route matches whole resources on a team attribute the gateway puts on the resource."""
    problems = []
    for name, connector in _routing_connectors(config).items():
        for i, route in enumerate(connector.get("table", [])):
            condition = route.get("condition") or route.get("statement") or ""
            names = ATTRIBUTE_REF.findall(condition)
            if not set(names) & set(TEAM_RESOURCE):
                problems.append(f"{name}.table[{i}]: condition {condition!r} names no team attribute")
            problems += [f"{name}.table[{i}]: {n!r} is not a resource attribute the gateway sets"
                         for n in names if n not in resource_attributes]
            if route.get("context") != "resource":
                problems.append(f"{name}.table[{i}]: context must be 'resource' (the team is on the resource)")
    return problems


def _load_balancers(config: Config) -> dict[str, Config]:
    return {n: e for n, e in (config.get("exporters") or {}).items()
            if n.split("/")[0] in ("loadbalancing", "load_balancing")}


def check_load_balancing(config: Config, resource_attributes: frozenset[str]) -> list[str]:
    """Agents hash on a team attribute of the resource, and send to a receiver that feeds the router."""
    problems = []
    for name, exporter in _load_balancers(config).items():
        if exporter.get("routing_key") != "attributes":  # `resource` is offered for logs and metrics only
            problems.append(f"{name}: routing_key must be 'attributes' (on the team) for traces")
        keys = exporter.get("routing_attributes") or []
        if not set(keys) & set(TEAM_RESOURCE):
            problems.append(f"{name}: routing_attributes {keys!r} names no team attribute")
        problems += [f"{name}: {k!r} is not a resource attribute the gateway sets"
                     for k in keys if k not in resource_attributes]
        port = str((exporter.get("resolver") or {}).get("dns", {}).get("port", ""))
        if port not in _router_ports(config):
            problems.append(f"{name}: port {port!r} is no receiver of a pipeline feeding a routing connector")
    if not _load_balancers(config):
        problems.append("no load-balancing exporter: agents would split a team across the tier")
    return problems


def _router_ports(config: Config) -> set[str]:
    """gRPC ports of receivers in pipelines that export to a routing connector."""
    routers = set(_routing_connectors(config))
    receivers = config.get("receivers") or {}
    ports = set()
    for pipeline in _pipelines(config).values():
        if routers & set(pipeline.get("exporters", [])):
            for receiver in pipeline.get("receivers", []):
                grpc = ((receivers.get(receiver) or {}).get("protocols") or {}).get("grpc") or {}
                ports.add(str(grpc.get("endpoint", "")).rsplit(":", 1)[-1])
    return ports


def check_team_queues(config: Config) -> list[str]:
    """Every pipeline a route leads to queues on disk in each of its network exporters."""
    exporters = config.get("exporters") or {}
    problems = []
    for connector in _routing_connectors(config).values():
        targets = {p for route in connector.get("table", []) for p in route.get("pipelines", [])}
        for target in sorted(targets):
            for name in _pipelines(config).get(target, {}).get("exporters", []):
                queue = (exporters.get(name) or {}).get("sending_queue") or {}
                if name.split("/")[0] != "file" and not queue.get("storage"):
                    problems.append(f"{target}: {name} has no persistent queue")
    return problems


def _queued_exporters(config: Config) -> dict[str, Config]:
    return {n: e for n, e in (config.get("exporters") or {}).items() if (e or {}).get("sending_queue")}


def check_storage_extensions(config: Config) -> list[str]:
    """Persistent queues use a defined extension that service.extensions enables."""
    defined = _defined(config, "extensions")
    enabled = set(config.get("service", {}).get("extensions", []) or [])
    problems = [f"service.extensions: {e!r} is not defined" for e in enabled - defined]
    for name, exporter in _queued_exporters(config).items():
        storage = exporter["sending_queue"].get("storage")
        if storage is None:
            problems.append(f"{name}: sending_queue has no persistent storage")
        elif storage not in defined:
            problems.append(f"{name}: storage {storage!r} is not a defined extension")
        elif storage not in enabled:
            problems.append(f"{name}: storage {storage!r} is not listed in service.extensions")
    return problems


def check_delivery_policy(config: Config) -> list[str]:
    """Network exporters queue on disk counted in spans and retry without a deadline."""
    problems = []
    for name, exporter in (config.get("exporters") or {}).items():
        kind = name.split("/")[0]
        if kind == "file":
            continue  # local disk: nothing to queue for
        queue = exporter.get("sending_queue") or {}
        if not queue.get("enabled", False) or queue.get("sizer") != "items":
            problems.append(f"{name}: sending_queue must be enabled with sizer: items")
        if kind == "awss3":  # no retry_on_failure block; its AWS SDK retries, 0 = until success
            unbounded = exporter.get("s3uploader", {}).get("retry_max_attempts") == 0
        else:
            unbounded = (exporter.get("retry_on_failure") or {}).get("max_elapsed_time") == 0
        if not unbounded:
            problems.append(f"{name}: retries must be unbounded")
    return problems


def _strings(node: Any, path: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in _strings(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [s for i, v in enumerate(node) for s in _strings(v, f"{path}[{i}]")]
    return [(path, node)] if isinstance(node, str) else []


def check_no_literal_secrets(config: Config) -> list[str]:
    """Credentials only as ${env:NAME}: a secret-named key must be an optional scheme + env ref."""
    problems = []
    for path, value in _strings(config):
        key = path.rsplit(".", 1)[-1].lower()
        if any(word in key for word in SECRET_KEY_WORDS):
            rest = ENV_REF.sub("", value).removeprefix("Basic ").removeprefix("Bearer ").strip()
            if rest or not ENV_REF.search(value):
                problems.append(f"{path}: secret must be an ${{env:NAME}} reference")
        if SECRET_SHAPES.search(value):
            problems.append(f"{path}: looks like a literal credential")
    return problems


def all_problems(config: Config) -> list[str]:
    return (
        check_pipeline_components(config)
        + check_connectors_wired(config)
        + check_routes(config)
        + check_route_conditions(config, GATEWAY_RESOURCE)
        + check_load_balancing(config, GATEWAY_RESOURCE)
        + check_team_queues(config)
        + check_storage_extensions(config)
        + check_delivery_policy(config)
        + check_no_literal_secrets(config)
    )


# --- the shipped file --------------------------------------------------------------------------


def test_reference_config_has_no_problems() -> None:
    assert all_problems(load()) == []


def test_reference_config_covers_the_documented_parts() -> None:
    config = load()
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    assert config["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"] == "0.0.0.0:4317"
    assert "batch" in config["processors"]
    assert _routing_connectors(config), "a routing connector"
    assert _routing_connectors(config)["routing/team"]["default_pipelines"]
    langfuse = config["exporters"]["otlp_http/langfuse_alpha"]
    assert langfuse["traces_endpoint"] == "https://cloud.langfuse.com/api/public/otel/v1/traces"
    assert langfuse["headers"]["x-langfuse-ingestion-version"] == "4"
    assert langfuse["headers"]["Authorization"].startswith("Basic ${env:")
    langsmith = config["exporters"]["otlp_http/langsmith_gamma"]
    assert langsmith["traces_endpoint"] == "https://api.smith.langchain.com/otel/v1/traces"
    assert langsmith["headers"]["x-api-key"].startswith("${env:")
    assert set(langsmith["headers"]) == {"x-api-key", "Langsmith-Project"}
    assert _pipelines(config)["traces/gamma"]["exporters"] == ["otlp_http/langsmith_gamma"]
    kinds = {name.split("/")[0] for name in config["exporters"]}
    assert {"otlp_http", "awss3", "file"} <= kinds
    assert {"region", "s3_bucket", "s3_prefix"} <= set(config["exporters"]["awss3/archive"]["s3uploader"])
    assert any(name.split("/")[0] == "file_storage" for name in config["service"]["extensions"])


def test_archive_receives_every_span_before_routing() -> None:
    routed = [p for p in _pipelines(load()).values() if "routing/team" in p["exporters"]]
    assert len(routed) == 1
    assert "awss3/archive" in routed[0]["exporters"]


def test_gateways_reach_the_tier_only_through_the_load_balancer() -> None:
    ingest = [p for p in _pipelines(load()).values() if "otlp" in p["receivers"]]
    assert [p["exporters"] for p in ingest] == [["loadbalancing/teams"]]


# --- the checkers can fail ---------------------------------------------------------------------


def _broken(mutate: Any) -> Config:
    config = copy.deepcopy(load())
    mutate(config)
    return config


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["exporters"].pop("file/unrouted"), "'file/unrouted' is not defined"),
        (lambda c: c["processors"].pop("batch"), "'batch' is not defined"),
        (lambda c: c["service"]["pipelines"].pop("traces/beta"), "undefined pipeline 'traces/beta'"),
        (lambda c: c["service"]["pipelines"]["traces/alpha"].update(receivers=["otlp"]), "does not receive"),
        (
            lambda c: c["service"]["pipelines"]["traces/in"].update(exporters=["awss3/archive"]),
            "no pipeline's exp",
        ),
        (
            lambda c: c["service"]["extensions"].remove("file_storage/queue"),
            "not listed in service.extensions",
        ),
        (lambda c: c["extensions"].pop("file_storage/queue"), "is not defined"),
        (
            lambda c: c["connectors"]["routing/team"]["table"][0].update(condition='attributes["team"] == "alpha"'),
            "names no team attribute",
        ),
        (lambda c: c["connectors"]["routing/team"]["table"][1].update(context="span"), "context must be"),
        (
            lambda c: c["connectors"]["routing/team"]["table"][2].update(
                condition='attributes["spangate.team.id"] == "g" and attributes["spangate.key.alias"] == "ci"'),
            "'spangate.key.alias' is not a resource attribute",
        ),
        (
            lambda c: c["exporters"]["loadbalancing/teams"].update(routing_attributes=["team"]),
            "names no team attribute",
        ),
        (lambda c: c["exporters"]["loadbalancing/teams"].update(routing_key="traceID"), "routing_key must be"),
        (lambda c: c["exporters"]["loadbalancing/teams"]["resolver"]["dns"].update(port="4317"), "port '4317'"),
        (lambda c: c["exporters"].pop("loadbalancing/teams"), "'loadbalancing/teams' is not defined"),
        (
            lambda c: c["exporters"]["otlp_http/langsmith_gamma"]["sending_queue"].pop("storage"),
            "traces/gamma: otlp_http/langsmith_gamma has no persistent queue",
        ),
        (
            lambda c: c["exporters"]["otlp_http/operator"]["retry_on_failure"].update(max_elapsed_time="300s"),
            "retries must be unbounded",
        ),
        (lambda c: c["exporters"]["awss3/archive"]["sending_queue"].pop("sizer"), "sizer: items"),
        (
            lambda c: c["exporters"]["otlp_http/langfuse_alpha"]["headers"].update(Authorization="Basic cGs6c2s="),
            "secret must be",
        ),
        (
            lambda c: c["exporters"]["otlp_http/datadog_llmobs_beta"]["headers"].update({"dd-api-key": "abc123"}),
            "secret must be",
        ),
        (
            lambda c: c["exporters"]["file/unrouted"].update(path="/tmp/sk-abcdefgh12345678"),
            "literal credential",
        ),
    ],
)
def test_checkers_catch_a_broken_copy(mutate: Any, expected: str) -> None:
    problems = all_problems(_broken(mutate))
    assert any(expected in p for p in problems), problems
