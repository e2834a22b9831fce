"""Two gateway instances on one store agree within 2 s: keys, deletions and team callbacks.

Changes are made through instance 1 only; instance 2 learns them from its store watcher
(``team_poll_seconds: 0.2``). Each propagation time is measured from the moment instance 1
answered to the first request on instance 2 that shows the change, and recorded as a test
property (``-rP`` or ``--junitxml`` show it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.gateway import RunningGateway, running_gateway
from tests.support.teams import (
    LangfuseProject,
    admin_client,
    chat,
    database,
    gateway_settings,
    langfuse_projects,
    operator_env,
    poll,
)

AGREE_WITHIN = 2.0
LANGFUSE_TAG = "langfuse.trace.metadata.test"


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres), "sqlite"])
def instances(request: pytest.FixtureRequest, tmp_path: Path,
              ) -> Iterator[tuple[RunningGateway, RunningGateway, dict[str, LangfuseProject]]]:
    with (database(request.param, tmp_path) as db, langfuse_projects("operator", "team") as projects,
          ExitStack() as stack):
        config = gateway_settings(db, success_callback=["langfuse"])
        env = {**operator_env(projects["operator"]), **db.env}
        first, second = (stack.enter_context(running_gateway(config, env=env, data_dir=tmp_path / name))
                         for name in ("one", "two"))
        yield first, second, projects


def measured(record_property: Callable[[str, object], None], name: str, seconds: float) -> None:
    record_property(name, round(seconds, 3))
    print(f"{name}: {seconds * 1000:.0f} ms")
    assert seconds < AGREE_WITHIN, f"{name} took {seconds:.2f}s"


def test_changes_through_one_instance_reach_the_other(
        instances: tuple[RunningGateway, RunningGateway, dict[str, LangfuseProject]],
        record_property: Callable[[str, object], None]) -> None:
    one, two, projects = instances
    with admin_client(one.base_url) as admin:
        team_id = admin.post("/team/new", json={}).json()["team_id"]
        key = admin.post("/key/generate", json={"team_id": team_id}).json()["key"]
        measured(record_property, "key_generated", poll(lambda: chat(two.base_url, key).status_code == 200,
                                                        timeout=5))

        assert admin.post(f"/team/{team_id}/callback", json=projects["team"].callback_body()).status_code == 200
        probes = itertools.count()

        def team_project_has_a_probe() -> bool:
            assert chat(two.base_url, key, test=f"probe-{next(probes)}").status_code == 200
            return any(s["attributes"].get(LANGFUSE_TAG, "").startswith("probe-") for s in projects["team"].spans())

        measured(record_property, "callback_set", poll(team_project_has_a_probe, timeout=5, interval=0.05))
        projects["team"].assert_wire_format()

        assert admin.post("/key/delete", json={"keys": [key]}).status_code == 200
        measured(record_property, "key_deleted", poll(lambda: chat(two.base_url, key).status_code == 401,
                                                      timeout=5))
    # Before the callback reached instance 2 its probes went to the operator's project; none after.
    assert {s["attributes"]["spangate.team.id"] for s in projects["team"].spans()} == {team_id}
