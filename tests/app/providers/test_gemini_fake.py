"""The Gemini fake (``tests.support.fake_gemini``) proven with Google's own SDK, google-genai: what
the SDK sends the fake takes, what the fake answers the SDK reads, plain, streamed and embedded, on
the Gemini API with a key and on Vertex AI with a service account's OAuth token (google-auth's
JWT flow against the fake's token endpoint, its signature verified there)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types
from google.oauth2 import service_account

from tests.support.fake_gemini import SIGNATURE, FakeGemini

KEY = "gem-key-secret-123456"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGemini]:
    with FakeGemini(KEY) as running:
        yield running


_clients: list[genai.Client] = []  # held: a client closes its HTTP client when it is collected


def _client(fake: FakeGemini, key: str = KEY) -> genai.Client:
    _clients.append(genai.Client(api_key=key, http_options={"base_url": fake.url}))
    return _clients[-1]


def test_the_sdk_reads_a_plain_answer_with_its_usage(fake: FakeGemini) -> None:
    answer = _client(fake).models.generate_content(
        model="gemini-2.5-flash", contents="hello there",
        config=types.GenerateContentConfig(system_instruction="be brief", temperature=0.1, max_output_tokens=50))
    assert answer.text == "fake gemini says: hello there"
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP
    usage = answer.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.thoughts_token_count,
            usage.cached_content_token_count, usage.total_token_count) == (11, 7, 3, 2, 21)
    sent = fake.requests[-1]
    assert sent.path.endswith("/models/gemini-2.5-flash:generateContent") and sent.headers["x-goog-api-key"] == KEY
    assert sent.body["systemInstruction"]["parts"] == [{"text": "be brief"}]


def test_the_sdk_reads_a_stream_piece_by_piece(fake: FakeGemini) -> None:
    pieces = list(_client(fake).models.generate_content_stream(model="gemini-2.5-flash", contents="one two three"))
    assert "".join(p.text for p in pieces) == "fake gemini says: one two three" and len(pieces) > 3
    assert pieces[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert pieces[-1].usage_metadata.total_token_count == 21
    assert fake.requests[-1].path.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")


def test_the_sdk_reads_a_signed_function_call_and_sends_its_result_back(fake: FakeGemini) -> None:
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="lookup", description="look it up", parameters_json_schema={"type": "object", "properties": {
            "echo": {"type": "string"}}})])
    config = types.GenerateContentConfig(tools=[tool], automatic_function_calling={"disable": True})
    client = _client(fake)
    first = client.models.generate_content(model="gemini-2.5-flash", contents="find x", config=config)
    [call] = first.function_calls
    assert (call.name, call.args) == ("lookup", {"echo": "find x"})
    assert first.candidates[0].content.parts[0].thought_signature == b"fake-thought-signature"
    turns = [types.Content(role="user", parts=[types.Part(text="find x")]), first.candidates[0].content,
             types.Content(role="user", parts=[types.Part.from_function_response(name="lookup",
                                                                                 response={"content": "42"})])]
    second = client.models.generate_content(model="gemini-2.5-flash", contents=turns, config=config)
    assert second.text == 'fake gemini says: tool said {"content": "42"}'
    assert fake.requests[-1].body["contents"][1]["parts"][0]["thoughtSignature"] == SIGNATURE


def test_the_sdk_reads_embeddings(fake: FakeGemini) -> None:
    answer = _client(fake).models.embed_content(model="gemini-embedding-001", contents=["abc", "hello"],
                                                config=types.EmbedContentConfig(output_dimensionality=4))
    assert [e.values for e in answer.embeddings] == [[3.0, 0.5, 0.5, 0.5], [5.0, 0.5, 0.5, 0.5]]
    assert fake.requests[-1].path.endswith("/models/gemini-embedding-001:batchEmbedContents")


def test_a_wrong_key_and_a_bad_body_are_refused_as_google_does(fake: FakeGemini) -> None:
    with pytest.raises(errors.ClientError) as caught:
        _client(fake, "wrong").models.generate_content(model="gemini-2.5-flash", contents="x")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    with pytest.raises(errors.ClientError) as caught:
        _client(fake).models.generate_content(model="gemini-2.5-flash", contents=[
            types.Content(role="assistant", parts=[types.Part(text="x")])])
    assert caught.value.code == 400 and "valid role" in caught.value.message


def test_vertex_ai_with_a_service_account_token_from_the_fake(fake: FakeGemini) -> None:
    info = fake.service_account("proj-v")
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    client = genai.Client(vertexai=True, project="proj-v", location="europe-west4", credentials=credentials,
                          http_options={"base_url": fake.url})
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi vertex")
    assert answer.text == "fake gemini says: hi vertex"
    streamed = "".join(p.text for p in client.models.generate_content_stream(model="gemini-2.5-flash",
                                                                               contents="hi again"))
    assert streamed == "fake gemini says: hi again"
    sent = fake.requests[-1]
    assert sent.path.startswith("/v1beta1/projects/proj-v/locations/europe-west4/publishers/google/models/"
                                "gemini-2.5-flash:streamGenerateContent")
    assert sent.headers["authorization"].startswith("Bearer ya29.fake-token-")


def test_a_token_signed_with_another_key_is_refused(fake: FakeGemini) -> None:
    with FakeGemini() as other:
        info = {**other.service_account(), "token_uri": f"{fake.url}/token"}  # signed with other's key
    credentials = service_account.Credentials.from_service_account_info(
        info, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    import google.auth.exceptions
    import google.auth.transport.requests
    with pytest.raises(google.auth.exceptions.RefreshError, match="Invalid JWT Signature"):
        credentials.refresh(google.auth.transport.requests.Request())
