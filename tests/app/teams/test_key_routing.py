"""Key routes in the routing table: a key's entries replace its team's of the same type, the team's
replace the global ones, and a key without a team has its entries replace the global ones."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx

from app.store import CallbackType
from app.teams.routing import DestinationSpec, KeyDestinations, RoutingBuilder, key_spec, team_spec
from exporters.registry import BuildContext, builtin_registry

SUCCESS, BOTH = CallbackType.SUCCESS, CallbackType.SUCCESS_AND_FAILURE


class NamedSinks:
    """Each sink is its key, so a route reads as the list of destinations it names."""

    def __init__(self) -> None:
        self.opened: set[str] = set()

    def open(self, key: str, *, team: str | None, name: str, factory: Any, durable: bool | None = None) -> Any:
        self.opened.add(key)
        return key

    def close(self, key: str) -> None:
        self.opened.discard(key)


def langfuse(host: str) -> Any:
    return builtin_registry().get("langfuse").parse({"langfuse_public_key": "pk", "langfuse_secret_key": "sk",
                                                     "langfuse_host": host})


def build(tmp_path: Path, keys: dict[str, KeyDestinations]) -> tuple[Any, NamedSinks]:
    registry = builtin_registry()
    athina = registry.get("athina").parse({"athina_api_key": "a-key"})
    globals_ = [DestinationSpec("global/langfuse", "langfuse", registry.get("langfuse"), langfuse("http://op"), BOTH),
                DestinationSpec("global/athina", "athina", registry.get("athina"), athina, BOTH)]
    teams = {"t": [team_spec("t", "langfuse", SUCCESS, registry.get("langfuse"), langfuse("http://team"))]}
    sinks = NamedSinks()
    with httpx.Client() as client:
        ctx = BuildContext(http_client=client, span_log_path=tmp_path / "s.jsonl", console=io.StringIO(),
                           api_http_client=client)
        table = RoutingBuilder(sinks, ctx).build(globals_, teams, frozenset(), 1, keys)
    return table, sinks


def own_langfuse(key_hash: str, team: str | None, usable: bool = True) -> KeyDestinations:
    kind = builtin_registry().get("langfuse")
    return KeyDestinations(team, (key_spec(key_hash, team, "langfuse", SUCCESS, kind,
                                           langfuse(f"http://{key_hash}") if usable else None, usable=usable),))


def test_key_entries_replace_their_teams_and_keyless_keys_the_global_ones(tmp_path: Path) -> None:
    table, sinks = build(tmp_path, {"k1": own_langfuse("k1", "t"), "k9": own_langfuse("k9", None)})
    assert table.route("t", "k1").success == ("key/k1/langfuse/success", "global/athina")
    assert table.route("t", "k2").success == ("team/t/langfuse/success", "global/athina")
    assert table.route(None, "k9").success == ("key/k9/langfuse/success", "global/athina")
    assert table.route(None, "k3").success == ("global/langfuse", "global/athina")
    assert {"key/k1/langfuse/success", "key/k9/langfuse/success"} <= sinks.opened
    assert set(table.keys) == {"k1", "k9"}  # only keys with logging of their own have an entry


def test_a_key_entry_that_cannot_be_used_sends_its_spans_neither_to_the_team_nor_the_operator(tmp_path: Path) -> None:
    table, sinks = build(tmp_path, {"k1": own_langfuse("k1", "t", usable=False)})
    assert table.route("t", "k1").success == ("global/athina",)
    assert "key/k1/langfuse/success" not in sinks.opened
