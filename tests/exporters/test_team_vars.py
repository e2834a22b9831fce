"""Each team-configurable destination declares the vars a team sets (``team_vars``, ``required_vars``),
the list the admin page's callback form is drawn from; checked here against what ``parse`` accepts."""

from __future__ import annotations

import re

import pytest

from exporters.registry import DestinationType, builtin_registry

TEAM_TYPES = sorted({t.name: t for t in builtin_registry().types.values() if t.team_configurable}.items())


@pytest.mark.parametrize(("name", "kind"), TEAM_TYPES, ids=[name for name, _ in TEAM_TYPES])
def test_the_declared_vars_are_the_ones_parse_knows(name: str, kind: DestinationType) -> None:
    assert kind.team_vars, f"{name} declares no team_vars: the admin page could not draw its form"
    assert kind.required_vars <= set(kind.team_vars)
    for var in kind.team_vars:  # each is known: parse may refuse its value, never its name
        with pytest.raises(ValueError) as refused:
            kind.parse({var: "\x00", "spangate_not_a_var": "x"})
        assert not re.search(rf"unknown .*{var!r}", str(refused.value)), refused.value
    with pytest.raises(ValueError, match="missing") as missing:
        kind.parse({})
    assert any(repr(var) in str(missing.value) for var in kind.required_vars), missing.value
