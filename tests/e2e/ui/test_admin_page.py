"""The admin page (``GET /ui``) in a real Chromium against the real gateway: sign in with the master key,
make a team, a key and a callback, watch its deliveries move, dead-letter a span and replay it from the
page; a key's spend moving against its budget up to a refusal; a team admin sees its own team only; the
page's headers and HTML hold no secret.

The team's callback is the generic webhook aimed at a loopback sink whose answer each test scripts;
calls go through the official openai client to a mock model. One browser and one gateway per module.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.support.browser import chromium, screenshot
from tests.support.gateway import RunningGateway, running_gateway
from tests.support.sinks import HttpSink, Received, Reply
from tests.support.teams import (
    MASTER_KEY,
    MODEL,
    SALT_KEY,
    admin_client,
    database,
    error_of,
    gateway_settings,
    new_key,
    new_team,
    ok,
    openai_client,
    poll,
)

WAIT_MS = 10_000  # a delivery shows on the page within a poll (2 s) of reaching the sink
PRICES = {"input_cost_per_token": 0.0000013, "output_cost_per_token": 0.0000029}
SPEND = re.compile(r"^\$([\d.,]+) of \$([\d.,]+) \((\d+)%\)")  # a budget cell: "$spend of $budget (share%)"


class ScriptedSink(HttpSink):
    """A webhook that answers ``status`` until told otherwise: 400 dead-letters at once (no retries)."""

    def __init__(self) -> None:
        self.status = 200
        super().__init__(lambda _req: Reply(status=self.status))

    def hooks(self) -> list[Received]:
        return [r for r in self.requests if r.path == "/hook"]


@pytest.fixture(scope="module")
def sink() -> Iterator[ScriptedSink]:
    with ScriptedSink() as made:
        yield made


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, sink: ScriptedSink) -> Iterator[RunningGateway]:
    env = {"SPANGATE_SALT_KEY": SALT_KEY, "GENERIC_LOGGER_ENDPOINT": sink.url + "/global"}
    with database("sqlite", tmp_path_factory.mktemp("store")) as db:
        config = gateway_settings(db, success_callback=["generic"])
        for model in config["model_list"]:  # priced in model_info, as an operator prices one: calls cost
            model["model_info"] = PRICES
        with running_gateway(config, data_dir=tmp_path_factory.mktemp("gw"), env=env) as running:
            yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as made:
        yield made


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    made = context.new_page()
    made.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    made.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    made.on("pageerror", lambda e: problems.append(str(e)))
    yield made
    context.close()
    # A CSP violation or a script error is a console error: the page must run clean under its policy.
    assert [p for p in problems if "Failed to load resource" not in p] == []


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


def sign_in(page: Page, gw: RunningGateway, key: str) -> None:
    page.goto(gw.base_url + "/ui")
    page.get_by_label("Master key or a team admin's key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def card(page: Page, name: str, field: str) -> Locator:
    return page.locator(f'article[data-destination="{name}"] [data-field="{field}"]')


def letters(page: Page, name: str) -> Locator:
    return page.get_by_role("region", name=f"Dead letters of {name}")


def chat(gw: RunningGateway, key: str, times: int = 1) -> None:
    with openai_client(gw.base_url, key) as client:
        for _ in range(times):
            reply = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
            assert reply.choices[0].message.content


def shown_spend(cell: Locator, share: int) -> tuple[float, float]:
    """(spend, budget) as a budget cell shows them, once it shows ``share`` per cent (the page polls)."""
    expect(cell).to_contain_text(f"({share}%)", timeout=WAIT_MS)
    found = SPEND.match(cell.inner_text())
    assert found, cell.inner_text()
    return float(found[1].replace(",", "")), float(found[2].replace(",", ""))


def cost_of_one_call(gw: RunningGateway) -> float:
    """What one call to MODEL costs, as the gateway counts it: a probe key's spend once recorded."""
    with admin_client(gw.base_url) as admin:
        probe = new_key(admin)
        chat(gw, probe)
        poll(lambda: ok(admin.post("/key/info", json={"key": probe}))["info"]["spend"] > 0, timeout=5)
        return ok(admin.post("/key/info", json={"key": probe}))["info"]["spend"]


def test_an_operator_runs_a_team_from_the_page(page: Page, gw: RunningGateway, sink: ScriptedSink,
                                               shots: Path) -> None:
    alias = f"search-{uuid.uuid4().hex[:6]}"
    sign_in(page, gw, MASTER_KEY)
    expect(page.get_by_role("heading", name="Teams")).to_be_visible()
    page.get_by_label("Team alias").fill(alias)
    page.get_by_label("Max budget ($)").fill("100")
    page.get_by_label("Budget period (e.g. 30d)").fill("30d")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name=f"Team {alias}")).to_be_visible()
    expect(page.locator('[data-field="team-spend"]')).to_contain_text("$0.00 of $100.00 (0%)")

    page.get_by_label("Key alias").fill("ui-key")
    page.get_by_label("Max budget ($)").fill("5")
    page.get_by_label("Requests per minute").fill("600")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("The new key, shown once").input_value()
    assert key.startswith("sk-")
    page.get_by_role("button", name="I have copied it").click()
    expect(page.get_by_role("cell", name="ui-key", exact=True)).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="ui-key").locator('[data-field="limits"]')).to_have_text(
        "600 requests/min")
    assert key not in page.content()  # shown once; gone from the DOM once dismissed

    page.get_by_label("Destination").select_option("generic")
    page.get_by_label("generic_logger_endpoint (required)").fill(sink.url + "/hook")
    page.get_by_label("generic_logger_headers").fill("X-Hook-Token=hook-secret-7a1c")
    page.get_by_role("button", name="Add callback").click()
    expect(page.get_by_role("cell", name="generic_logger_headers: ********")).to_be_visible()
    assert "hook-secret-7a1c" not in page.content()

    chat(gw, key, times=3)
    expect(card(page, "generic", "delivered")).to_have_text("3", timeout=WAIT_MS)
    expect(card(page, "generic", "state")).to_have_text("ok")
    drawn = re.compile(r"^Delivered per minute over the last hour: this minute 3, peak 3$")  # the last 60 s
    expect(page.get_by_role("img", name=drawn)).to_be_visible()

    sink.status = 400  # the webhook refuses: the next span is dead-lettered
    chat(gw, key)
    expect(card(page, "generic", "dead_lettered")).to_have_text("1", timeout=WAIT_MS)
    expect(card(page, "generic", "state")).to_have_text("failing")
    expect(card(page, "generic", "last_error")).to_contain_text("HTTP 400")
    failed = re.compile(r"^Failed per minute over the last hour: this minute 1, peak 1$")
    expect(page.get_by_role("img", name=failed)).to_be_visible(timeout=WAIT_MS)
    screenshot(page, shots, "team")

    sink.status = 200
    page.get_by_role("button", name="Dead letters of generic").click()
    expect(page.get_by_role("heading", name="Dead letters of generic")).to_be_focused()
    expect(letters(page, "generic").get_by_role("cell", name=MODEL, exact=True)).to_have_count(1)
    page.get_by_role("button", name="Replay all 1").click()
    expect(card(page, "generic", "delivered")).to_have_text("4", timeout=WAIT_MS)
    expect(card(page, "generic", "dead_lettered")).to_have_text("0")
    assert len(sink.hooks()) == 5  # 3 delivered, 1 refused, the same span again on replay
    assert {r.headers["x-hook-token"] for r in sink.hooks()} == {"hook-secret-7a1c"}

    page.get_by_role("button", name="Revoke key ui-key").click()
    expect(page.get_by_role("cell", name="ui-key", exact=True)).to_have_count(0)
    with admin_client(gw.base_url) as admin:
        error_of(admin.post("/key/info", json={"key": key}), 404)


def test_the_gateway_view_shows_models_and_replays_a_gateway_wide_dead_letter(page: Page, gw: RunningGateway,
                                                                             sink: ScriptedSink, shots: Path) -> None:
    sign_in(page, gw, MASTER_KEY)
    page.get_by_role("link", name="Gateway").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text=MODEL).first).to_contain_text("healthy")
    delivered = int(card(page, "generic", "delivered").inner_text())
    sink.status = 400  # the master key's calls go to the gateway-wide generic webhook, which refuses one
    chat(gw, MASTER_KEY)
    expect(card(page, "generic", "dead_lettered")).not_to_have_text("0", timeout=WAIT_MS)
    sink.status = 200
    chat(gw, MASTER_KEY)
    expect(card(page, "generic", "delivered")).to_have_text(str(delivered + 1), timeout=WAIT_MS)
    page.get_by_role("button", name="Dead letters of generic").click()
    expect(letters(page, "generic").get_by_role("cell", name=MODEL, exact=True)).to_have_count(1)
    page.get_by_role("button", name="Replay all 1").click()
    expect(card(page, "generic", "delivered")).to_have_text(str(delivered + 2), timeout=WAIT_MS)
    drawn = re.compile(r"^Delivered per minute over the last hour: this minute 2, peak 2$")  # the call and the replay
    expect(page.get_by_role("img", name=drawn)).to_be_visible()
    assert len([r for r in sink.requests if r.path == "/global"]) == delivered + 3
    screenshot(page, shots, "gateway")


def test_a_team_admin_runs_its_team_and_cannot_see_another(page: Page, gw: RunningGateway, sink: ScriptedSink,
                                                           shots: Path) -> None:
    with admin_client(gw.base_url) as admin:
        own, other = new_team(admin, team_alias="own-team"), new_team(admin, team_alias="hidden-team-3f9e")
        user = f"boss-{uuid.uuid4().hex[:6]}"
        ok(admin.post("/team/member_add", json={"team_id": own, "member": {"role": "admin", "user_id": user}}))
        key = new_key(admin, team_id=own, user_id=user)
    sign_in(page, gw, key)
    expect(page.get_by_role("heading", name="Team own-team")).to_be_visible()
    expect(page.get_by_text(f"Signed in as an admin of team {own}")).to_be_visible()
    page.get_by_label("Destination").select_option("generic")
    page.get_by_label("generic_logger_endpoint (required)").fill(sink.url + "/own")
    page.get_by_role("button", name="Add callback").click()
    page.get_by_role("button", name="Test callbacks").click()
    expect(page.get_by_text("generic: success")).to_be_visible()
    assert [r.path for r in sink.requests].count("/own") == 1  # the test span reached the team's webhook
    screenshot(page, shots, "team-admin")
    page.get_by_role("button", name="Delete callback generic").click()
    expect(page.get_by_role("button", name="Delete callback generic")).to_have_count(0)

    page.get_by_role("link", name="Teams").click()  # the list is the operator's: back to its own team
    expect(page.get_by_role("heading", name="Team own-team")).to_be_visible()
    page.goto(f"{gw.base_url}/ui#/team/{other}")
    expect(page.get_by_role("alert")).to_contain_text("another team")
    assert "hidden-team-3f9e" not in page.content()
    page.get_by_role("link", name="Gateway").click()
    expect(page.get_by_text("shown to the operator only")).to_be_visible()


def test_the_page_works_from_the_keyboard_and_keeps_the_key_in_the_tab_only(page: Page, gw: RunningGateway) -> None:
    page.goto(gw.base_url + "/ui")
    expect(page.get_by_label("Master key or a team admin's key")).to_be_focused()  # focused on load
    page.keyboard.type(MASTER_KEY)
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Sign in")).to_be_focused()
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # visible focus
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Teams")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('spangate.key')") == MASTER_KEY
    assert page.context.cookies() == []  # the key is never a cookie
    assert MASTER_KEY not in page.url
    page.keyboard.press("Shift+Tab")  # from <main>, back up to the header's Sign out
    expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('spangate.key')") is None


def test_the_shell_has_strict_headers_and_no_secret(gw: RunningGateway) -> None:
    with httpx.Client(base_url=gw.base_url, trust_env=False) as client:
        shell = client.get("/ui")
        script, style = client.get("/ui/app.js"), client.get("/ui/app.css")
    assert shell.status_code == script.status_code == style.status_code == 200
    csp = shell.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert shell.headers["x-frame-options"] == "DENY"
    assert shell.headers["cache-control"] == "no-store"
    assert shell.headers["content-type"].startswith("text/html")
    assert script.headers["content-type"].startswith("text/javascript")
    assert re.findall(r"<script[^>]*>", shell.text) == ['<script type="module" src="/ui/app.js">']
    assert MASTER_KEY not in shell.text + script.text
    assert "style=" not in shell.text


def test_the_read_routes_the_page_adds_are_guarded(gw: RunningGateway) -> None:
    with admin_client(gw.base_url) as admin, admin_client(gw.base_url, None) as anonymous:
        team = new_team(admin, team_alias="fields")
        fields = ok(admin.get(f"/team/{team}/callback/fields"))
        generic = next(d for d in fields["destinations"] if d["callback_name"] == "generic")
        assert generic["vars"][0] == {"name": "generic_logger_endpoint", "required": True, "secret": False}
        assert {"name": "generic_logger_headers", "required": False, "secret": True} in generic["vars"]
        assert "file" not in [d["callback_name"] for d in fields["destinations"]]  # gateway-wide only
        assert ok(admin.get(f"/team/{team}/deliveries/history")) == {"team_id": team, "interval_seconds": 30.0,
                                                                     "destinations": []}
        [sampled] = ok(admin.get("/health/destinations/history"))["destinations"]  # sampled from start
        assert sampled["name"] == "generic" and sampled["samples"]
        assert set(sampled["samples"][0]) == {"t", "delivered", "failed", "dead_lettered", "lag_p50_ms"}
        letters = ok(admin.get("/health/destinations/generic/dead_letters"))
        assert letters == {"name": "generic", "dead_letters": []}
        error_of(admin.get("/health/destinations/nowhere/dead_letters"), 404)
        error_of(admin.get("/health/destinations/generic/dead_letters?limit=0"), 400)
        error_of(anonymous.get(f"/team/{team}/callback/fields"), 401)
        plain = new_key(admin, team_id=team)
        with admin_client(gw.base_url, plain) as member:
            error_of(member.get(f"/team/{team}/callback/fields"), 403)
            error_of(member.get("/health/destinations/generic/dead_letters"), 403)
            error_of(member.get(f"/team/{team}/deliveries/history"), 403)
            error_of(member.get("/health/destinations/history"), 403)


def test_a_keys_spend_moves_against_its_budget_on_the_page_up_to_the_refusal(page: Page, gw: RunningGateway) -> None:
    # Last in the module: these calls reach the gateway-wide webhook, whose hour the gateway view's chart reads.
    cost = cost_of_one_call(gw)
    alias = f"budgets-{uuid.uuid4().hex[:6]}"
    sign_in(page, gw, MASTER_KEY)
    page.get_by_label("Team alias").fill(alias)
    page.get_by_label("Max budget ($)").fill("1")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name=f"Team {alias}")).to_be_visible()
    page.get_by_label("Key alias").fill("two-calls")
    page.get_by_label("Max budget ($)").fill(repr(2 * cost))  # room for two calls, as the limits e2e test
    page.get_by_label("Requests per minute").fill("60")
    page.get_by_label("Budget period (e.g. 30d)").fill("1d")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("The new key, shown once").input_value()
    page.get_by_role("button", name="I have copied it").click()
    row = page.get_by_role("row").filter(has_text="two-calls")
    spend, team = row.locator('[data-field="spend"]'), page.locator('[data-field="team-spend"]')
    assert shown_spend(spend, 0) == (0, pytest.approx(2 * cost, rel=1e-3))
    expect(row.locator('[data-field="limits"]')).to_have_text("60 requests/min")
    expect(spend).to_contain_text("per 1d, resets ")

    chat(gw, key)  # the page's poll brings the spend in, without a reload
    assert shown_spend(spend, 50)[0] == pytest.approx(cost, rel=1e-3)
    chat(gw, key)
    spent, budget = shown_spend(spend, 100)
    with openai_client(gw.base_url, key) as client, pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert refused.value.body["code"] == "budget_exceeded"
    with admin_client(gw.base_url) as admin:
        info = ok(admin.post("/key/info", json={"key": key}))["info"]
    assert info["spend"] == info["max_budget"]  # two calls' cost, to the nano-dollar; the refused one cost nothing
    page.reload()  # drawn afresh after the refusal
    assert shown_spend(spend, 100) == (spent, budget) and spent == budget
    assert shown_spend(team, 0)[:2] == (pytest.approx(2 * cost, rel=1e-3), 1.0)  # the team's spend is its keys'
