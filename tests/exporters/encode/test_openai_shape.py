"""openai_shape: GenAI message attributes read back into the OpenAI shapes clients sent and got."""

from __future__ import annotations

import json

from contracts import semconv as sc
from exporters.encode import openai_shape as shape
from tests.support.readable_spans import span

TOOL_TURN = [
    {"role": "user", "parts": [{"type": "text", "content": "weather?"},
                               {"type": "image_url", "content": '{"type":"image_url","image_url":{"url":"u"}}'}]},
    {"role": "assistant", "parts": [{"type": "tool_call", "id": "c1", "name": "get", "arguments": "{}"}]},
    {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "sunny"}]},
]


def test_chat_messages_with_parts_tools_and_system_instructions():
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.INPUT_MESSAGES: json.dumps(TOOL_TURN),
             sc.SYSTEM_INSTRUCTIONS: '[{"type":"text","content":"be brief"}]'}
    assert shape.prompt(attrs) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "weather?"},
                                     {"type": "image_url", "image_url": {"url": "u"}}]},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    ]
    assert shape.last_user_text(shape.prompt(attrs)) is None  # the user's message was not text alone


def test_text_completion_prompt_and_choices():
    attrs = {sc.OPERATION_NAME: sc.OP_TEXT_COMPLETION, sc.REQUEST_MODEL: "davinci",
             sc.INPUT_MESSAGES: '[{"role":"user","parts":[{"type":"text","content":"Say"}]}]',
             sc.OUTPUT_MESSAGES: '[{"role":"assistant","parts":[{"type":"text","content":"hi"}],'
                                 '"finish_reason":"stop"}]'}
    assert shape.prompt(attrs) == "Say"
    response = shape.openai_response(span(attrs), attrs)
    assert response is not None
    assert (response["object"], response["choices"]) == ("text_completion",
                                                         [{"index": 0, "text": "hi", "finish_reason": "stop"}])


def test_content_that_is_not_json_is_absent_rather_than_a_crash():
    attrs = {sc.OPERATION_NAME: sc.OP_CHAT, sc.INPUT_MESSAGES: "not json", sc.OUTPUT_MESSAGES: "{}"}
    assert shape.prompt(attrs) is None
    response = shape.openai_response(span(attrs), attrs)
    assert response is not None and "choices" not in response
