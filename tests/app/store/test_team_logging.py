"""A team's ``metadata.logging`` in the store (SQLite and PostgreSQL): written as the team's callbacks
in the team's own transaction, replaced whole by an update that brings them, kept by one that does
not, and listed per team for /team/list."""

from __future__ import annotations

import pytest

from app.store import AlreadyExists, CallbackType, CallbackWrite, NotFound, Store


def entry(name: str = "langfuse", kind: str = "success", host: str = "h") -> CallbackWrite:
    return CallbackWrite(name, kind, f"v1.{name}.{kind}", ("langfuse_secret_key",), {"langfuse_host": host})


def shape(records: tuple | list) -> list[tuple[str, str, str | None, dict]]:
    return [(r.callback_name, r.callback_type, r.vars_ciphertext, r.plain_vars) for r in records]


async def test_team_and_its_callbacks_are_one_write(store: Store):
    await store.create_team("team-a", None, [], {"env": "ci"}, (entry(), entry("langsmith", "failure")))
    await store.create_team("team-b", None, [], {})
    assert await store.version() == 2  # one write per team, callbacks included
    assert shape(await store.list_callbacks("team-a")) == [
        ("langfuse", CallbackType.SUCCESS, "v1.langfuse.success", {"langfuse_host": "h"}),
        ("langsmith", CallbackType.FAILURE, "v1.langsmith.failure", {"langfuse_host": "h"})]
    assert (await store.snapshot()).callbacks.keys() == {"team-a"}
    listed = await store.list_team_callbacks(["team-a", "team-b", "missing"])
    assert list(listed) == ["team-a"] and shape(listed["team-a"]) == shape(await store.list_callbacks("team-a"))
    assert await store.list_team_callbacks([]) == {}


async def test_a_refused_team_writes_no_callbacks(store: Store):
    await store.create_team("team-a", None, [], {}, (entry(),))
    with pytest.raises(ValueError, match="callback_type"):
        await store.create_team("team-b", None, [], {}, (entry(kind="sometimes"),))
    assert await store.get_team("team-b") is None and await store.list_callbacks("team-b") == []
    with pytest.raises(AlreadyExists):
        await store.create_team("team-a", None, [], {}, (entry(host="other"),))
    assert shape(await store.list_callbacks("team-a"))[0][3] == {"langfuse_host": "h"}


async def test_update_replaces_the_callbacks_only_when_given(store: Store):
    await store.create_team("team-a", None, [], {}, (entry(),))
    await store.set_callback("team-a", "langsmith", "success", None, (), {"langsmith_project": "p"})
    renamed = await store.update_team("team-a", team_alias="ci", metadata={"env": "ci"})
    assert (renamed.team_alias, renamed.metadata) == ("ci", {"env": "ci"})
    assert len(await store.list_callbacks("team-a")) == 2
    await store.update_team("team-a", callbacks=[entry(host="h2")])  # the /team/{id}/callback one goes too
    assert shape(await store.list_callbacks("team-a")) == [
        ("langfuse", CallbackType.SUCCESS, "v1.langfuse.success", {"langfuse_host": "h2"})]
    await store.update_team("team-a", callbacks=[])
    assert await store.list_callbacks("team-a") == []
    with pytest.raises(NotFound):
        await store.update_team("missing", callbacks=[entry()])
    assert await store.list_callbacks("missing") == []
