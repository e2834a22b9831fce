"""The access table on its own: a route with no row is the master key's alone (and says so in the
log), and the routes that check their callers themselves are the only ones left out of the table."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from app.api.admin.access import ACCESS, MASTER, OWN_AUTH, PATH, admin_paths, rule_for


@dataclass
class FakeRoute:
    path_format: str
    methods: set[str]


def test_a_route_without_a_row_is_master_only_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="app.api.admin.access"):
        assert rule_for("POST", "/team/{team_id}/something_new") is MASTER
    assert "POST /team/{team_id}/something_new has no row" in caplog.text
    assert rule_for("POST", "/team/{team_id}/callback") is PATH


def test_admin_paths_leave_out_only_the_routes_with_their_own_auth() -> None:
    routes = [FakeRoute("/metrics", {"GET", "OPTIONS"}), FakeRoute("/schema/swagger", {"GET"}),
              FakeRoute("/key/info", {"GET", "POST", "OPTIONS", "HEAD"}), FakeRoute("/team/new", {"POST"})]
    assert admin_paths(routes) == [("GET", "/key/info"), ("POST", "/key/info"), ("POST", "/team/new")]


def test_no_route_is_both_in_the_table_and_left_to_its_own_auth() -> None:
    assert not {path for _method, path in ACCESS} & OWN_AUTH
