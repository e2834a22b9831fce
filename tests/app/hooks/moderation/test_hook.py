"""The azure_content_safety hook run through the HookChain against the loopback text:analyze stand-in."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from app.errors import error_body
from app.hooks.moderation import ModerationBlocked, ModerationInputTooLong, ModerationUnavailable
from app.hooks.moderation.settings import CATEGORIES
from app.hooks.moderation.texts import split_text
from app.server.hook_setup import build_hooks
from app.teams.directory import TeamPolicy
from contracts import semconv as sc
from tests.app.hooks.moderation.support import chat_answer, chat_call, moderation_config, rig
from tests.support.content_safety import ContentSafetyStandIn, Fault
from tests.support.upstream import closed_port

MARK = "MARKER-7f3a"


@pytest.fixture
def cs() -> Iterator[ContentSafetyStandIn]:
    with ContentSafetyStandIn(key="cs-key-123") as stand_in:
        yield stand_in


@pytest.mark.parametrize("source", ["input", "output"])
@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize(("severity", "blocked"), [(2, False), (3, False), (4, True), (5, True)])
async def test_a_category_blocks_at_its_threshold_and_above(cs: ContentSafetyStandIn, source: str, category: str,
                                                            severity: int, blocked: bool) -> None:
    cs.score(MARK, **{category: severity})
    async with rig(cs, output_type="EightSeverityLevels") as r:  # default threshold 4
        call = chat_call(f"say {MARK}" if source == "input" else "hello")
        call.response = chat_answer(f"here is {MARK}" if source == "output" else "hi")

        async def both_points() -> None:
            await r.chain.before_upstream(call)
            await r.chain.after_upstream(call)

        if not blocked:
            await both_points()
            assert call.extra[sc.moderation_severity(source, category)] == severity
            assert sc.MODERATION_BLOCKED not in call.extra
            return
        with pytest.raises(ModerationBlocked) as caught:
            await both_points()
    error = error_body(caught.value)["error"]
    assert caught.value.status == 400 and error["code"] == "moderation_blocked"
    assert (error["source"], error["category"], error["severity"]) == (source, category, severity)
    assert MARK not in error["message"] and source in error["message"] and category in error["message"]
    assert call.extra[sc.MODERATION_BLOCKED] is True
    assert (call.extra[sc.MODERATION_SOURCE], call.extra[sc.MODERATION_CATEGORY],
            call.extra[sc.MODERATION_SEVERITY]) == (source, category, severity)


async def test_the_request_follows_the_2023_10_01_contract(cs: ContentSafetyStandIn) -> None:
    async with rig(cs) as r:
        await r.chain.before_upstream(chat_call("hello there"))
    (sent,) = cs.requests
    assert sent.headers["ocp-apim-subscription-key"] == "cs-key-123"
    assert sent.body == {"text": "hello there", "categories": list(CATEGORIES), "outputType": "FourSeverityLevels"}


async def test_four_levels_by_default_and_configured_thresholds(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Violence=5)  # the service reports 4 in FourSeverityLevels
    async with rig(cs, thresholds={"Violence": 6}) as r:
        call = chat_call(MARK)
        await r.chain.before_upstream(call)
        assert call.extra[sc.moderation_severity("input", "Violence")] == 4
    async with rig(cs) as r:
        with pytest.raises(ModerationBlocked):
            await r.chain.before_upstream(chat_call(MARK))


async def test_the_most_severe_category_is_named(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=4, Sexual=6)
    async with rig(cs) as r:
        with pytest.raises(ModerationBlocked) as caught:
            await r.chain.before_upstream(chat_call(MARK))
    assert caught.value.fields == {"source": "input", "category": "Sexual", "severity": 6}


async def test_a_long_input_is_split_and_the_parts_checked_at_once(cs: ContentSafetyStandIn) -> None:
    cs.delay = 0.2
    text = " ".join(["calm"] * 6000) + f" {MARK}"  # ~30,000 characters, the marker in the last part
    cs.score(MARK, SelfHarm=6)
    async with rig(cs) as r:
        call = chat_call(text)
        with pytest.raises(ModerationBlocked):
            await r.chain.before_upstream(call)
    assert len(cs.requests) == 4 and all(len(t) <= 10_000 for t in cs.texts)
    assert sorted(cs.texts) == sorted(split_text(text)) and "".join(split_text(text)) == text  # in any order
    assert cs.max_in_flight == 4
    assert call.extra[sc.moderation_parts("input")] == 4


async def test_embeddings_input_and_completion_prompt_are_checked(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    async with rig(cs) as r:
        for operation, body in ((sc.OP_EMBEDDINGS, {"input": ["fine", MARK]}),
                                (sc.OP_TEXT_COMPLETION, {"prompt": MARK})):
            call = chat_call("")
            call.operation, call.request = operation, {"model": "m", **body}
            with pytest.raises(ModerationBlocked):
                await r.chain.before_upstream(call)


@pytest.mark.parametrize(("fault", "reason"), [(Fault(status=500), "http_5xx"), (Fault(status=429, retry_after=7),
                                                                                  "http_429"),
                                               (Fault(delay=1.0), "timeout")])
async def test_fail_closed_by_default(cs: ContentSafetyStandIn, fault: Fault, reason: str) -> None:
    cs.script(fault)
    async with rig(cs, timeout_seconds=0.3) as r:
        call = chat_call("hello")
        with pytest.raises(ModerationUnavailable) as caught:
            await r.chain.before_upstream(call)
        assert r.counts(sc.METRIC_MODERATION_CHECKS) == {(("outcome", "unavailable"), ("source", "input")): 1}
    assert caught.value.status == 503 and caught.value.code == "moderation_unavailable"
    assert caught.value.retry_after == (7 if reason == "http_429" else 2)
    assert call.extra[sc.moderation_unavailable("input")] == reason


@pytest.mark.parametrize(("fault", "reason"), [(Fault(status=503), "http_5xx"), (Fault(status=429), "http_429"),
                                               (Fault(delay=1.0), "timeout")])
async def test_fail_open_passes_counts_and_records_the_miss(cs: ContentSafetyStandIn, fault: Fault,
                                                            reason: str) -> None:
    cs.script(fault, fault)
    async with rig(cs, timeout_seconds=0.3, fail_open=True) as r:
        call = chat_call("hello")
        await r.chain.before_upstream(call)
        call.response = chat_answer("hi")
        await r.chain.after_upstream(call)
        assert r.counts(sc.METRIC_MODERATION_FAIL_OPEN) == {
            (("reason", reason), ("source", "input")): 1, (("reason", reason), ("source", "output")): 1}
    assert call.extra[sc.moderation_unavailable("input")] == reason
    assert call.extra[sc.moderation_unavailable("output")] == reason


async def test_a_wrong_key_is_a_miss_whose_log_names_the_setting_not_the_key(
        cs: ContentSafetyStandIn, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "spangate.moderation"):
        async with rig(cs, key="wrong-key-456") as r:
            with pytest.raises(ModerationUnavailable, match="http_401"):
                await r.chain.before_upstream(chat_call("hello"))
    assert "azure_content_safety_params.key" in caplog.text and "wrong-key-456" not in caplog.text


async def test_flagged_text_is_not_logged(cs: ContentSafetyStandIn, caplog: pytest.LogCaptureFixture) -> None:
    cs.score(MARK, Hate=6)
    with caplog.at_level(logging.DEBUG):
        async with rig(cs) as r:
            with pytest.raises(ModerationBlocked):
                await r.chain.before_upstream(chat_call(MARK))
    assert MARK not in caplog.text


async def test_metrics_count_checks_blocks_by_category_and_source(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Violence=6)
    async with rig(cs) as r:
        await r.chain.before_upstream(chat_call("fine"))
        with pytest.raises(ModerationBlocked):
            await r.chain.before_upstream(chat_call(MARK))
        call = chat_call("fine")
        call.response = chat_answer(MARK)
        with pytest.raises(ModerationBlocked):
            await r.chain.after_upstream(call)
        assert r.counts(sc.METRIC_MODERATION_CHECKS) == {
            (("outcome", "passed"), ("source", "input")): 1, (("outcome", "blocked"), ("source", "input")): 1,
            (("outcome", "blocked"), ("source", "output")): 1}
        assert r.counts(sc.METRIC_MODERATION_BLOCKS) == {
            (("category", "Violence"), ("source", "input")): 1, (("category", "Violence"), ("source", "output")): 1}


async def test_team_thresholds_override_and_a_team_can_be_exempt(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=2)
    teams = [{"team_id": "strict", "azure_content_safety_params": {"thresholds": {"Hate": 2}}},
             {"team_id": "free", "azure_content_safety_params": {"exempt": True}}]
    async with rig(cs, teams, thresholds={"Hate": 6}) as r:
        await r.chain.before_upstream(chat_call(MARK))  # global: Hate 6
        await r.chain.before_upstream(chat_call(MARK, team_id="other"))
        with pytest.raises(ModerationBlocked):
            await r.chain.before_upstream(chat_call(MARK, team_id="strict"))
        cs.score(MARK, Hate=6)
        before = len(cs.requests)
        exempt = chat_call(MARK, team_id="free")
        await r.chain.before_upstream(exempt)
        assert len(cs.requests) == before and exempt.extra == {sc.MODERATION_EXEMPT: True}


async def test_team_metadata_from_the_store_wins_and_changes_take_effect(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Sexual=4)
    teams = [{"team_id": "t", "azure_content_safety_params": {"exempt": True}}]
    async with rig(cs, teams) as r:
        await r.chain.before_upstream(chat_call(MARK, team_id="t"))  # exempt by config
        r.teams.replace({}, {"t": TeamPolicy(hook_params={"azure_content_safety_params": {"thresholds": {}}})})
        with pytest.raises(ModerationBlocked):  # the store's metadata: no exemption, global thresholds
            await r.chain.before_upstream(chat_call(MARK, team_id="t"))
        r.teams.replace({}, {"t": TeamPolicy(hook_params={
            "azure_content_safety_params": {"thresholds": {"Sexual": 6}}})})
        await r.chain.before_upstream(chat_call(MARK, team_id="t"))


async def test_empty_text_is_not_sent(cs: ContentSafetyStandIn) -> None:
    async with rig(cs) as r:
        call = chat_call("")
        call.operation, call.request = sc.OP_EMBEDDINGS, {"model": "m", "input": [1, 2, 3]}
        await r.chain.before_upstream(call)
    assert cs.requests == []


async def test_a_service_that_refuses_connections_is_a_miss(cs: ContentSafetyStandIn) -> None:
    async with rig(cs, endpoint=f"http://127.0.0.1:{closed_port()}") as r:
        call = chat_call("hello")
        with pytest.raises(ModerationUnavailable, match="connect"):
            await r.chain.before_upstream(call)
    assert call.extra[sc.moderation_unavailable("input")] == "connect"


async def test_a_chain_built_without_the_gateways_resources_has_its_own_transport(cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    chain = build_hooks(moderation_config(cs), {})
    try:
        with pytest.raises(ModerationBlocked):
            await chain.before_upstream(chat_call(MARK))
    finally:
        await chain.aclose()  # closes the transport it owns


async def test_one_part_of_a_long_text_failing_is_a_miss_for_the_whole(cs: ContentSafetyStandIn) -> None:
    cs.script(Fault(status=500))
    async with rig(cs) as r:
        with pytest.raises(ModerationUnavailable, match="http_5xx"):
            await r.chain.before_upstream(chat_call("z " * 12_000))
    assert len(cs.requests) == 3  # the other parts still ran to their end


async def test_a_finished_part_over_a_threshold_blocks_though_another_part_missed_the_deadline(
        cs: ContentSafetyStandIn) -> None:
    cs.score(MARK, Hate=6)
    cs.slow("LATE-PART", 5.0)  # far past the deadline: that part never gets a verdict
    text = f"{MARK} " + "calm " * 2500 + "LATE-PART"  # two parts, the flagged one answered at once
    async with rig(cs, timeout_seconds=0.3, fail_open=True) as r:
        call = chat_call(text)
        with pytest.raises(ModerationBlocked) as caught:
            await r.chain.before_upstream(call)
        assert r.counts(sc.METRIC_MODERATION_FAIL_OPEN) == {}
    assert caught.value.fields == {"source": "input", "category": "Hate", "severity": 6}
    assert call.extra[sc.moderation_unavailable("input")] == "timeout"
    assert call.extra[sc.moderation_parts("input")] == 1 and len(split_text(text)) == 2


async def test_an_input_over_max_input_chars_is_a_413_before_anything_is_sent(cs: ContentSafetyStandIn) -> None:
    async with rig(cs, fail_open=True, max_input_chars=1000) as r:
        with pytest.raises(ModerationInputTooLong) as caught:
            await r.chain.before_upstream(chat_call("x" * 1001))
        await r.chain.before_upstream(chat_call("x" * 1000))
        assert r.counts(sc.METRIC_MODERATION_CHECKS) == {(("outcome", "too_long"), ("source", "input")): 1,
                                                         (("outcome", "passed"), ("source", "input")): 1}
    error = error_body(caught.value)["error"]
    assert caught.value.status == 413 and error["code"] == "moderation_input_too_long"
    assert "max_input_chars" in error["message"] and error["source"] == "input"
    assert cs.texts == ["x" * 1000]


@pytest.mark.parametrize("fail_open", [True, False])
async def test_an_input_with_parts_unsent_at_the_deadline_is_a_413_in_either_mode(
        cs: ContentSafetyStandIn, fail_open: bool) -> None:
    cs.delay = 0.6  # the first eight parts outlast the deadline; the ninth is never sent
    text = "calm " * 18_000  # 90,000 characters: nine parts
    async with rig(cs, timeout_seconds=0.3, fail_open=fail_open) as r:
        call = chat_call(text)
        with pytest.raises(ModerationInputTooLong, match="timeout_seconds"):
            await r.chain.before_upstream(call)
        assert r.counts(sc.METRIC_MODERATION_FAIL_OPEN) == {}
    assert len(split_text(text)) == 9 and len(cs.requests) <= 8  # the ninth never left
    assert call.extra[sc.moderation_unavailable("input")] == "timeout"
