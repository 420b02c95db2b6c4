"""The gateway driven by the official `openai` client, in front of fake upstreams over HTTP."""

from __future__ import annotations

import json

import pytest
from openai import AsyncOpenAI, NotFoundError, OpenAI

from tests.support.gateway import RunningGateway
from tests.support.upstream import FakeUpstream, Reply

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

EASY = [{"role": "user", "content": "What is the capital of France?"}]
HARD = [{"role": "user", "content": "HARD: prove the Riemann hypothesis"}]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


def client(gw: RunningGateway) -> OpenAI:
    return gw.sdk()


def test_easy_prompt_goes_small_with_route_headers_and_cost(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model="auto", messages=EASY)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake upstream."
    assert completion.model == "small-a"
    assert raw.headers["x-tiergate-route"] == "small"
    assert raw.headers["x-tiergate-deployment"] == "small-a"
    assert raw.headers["x-tiergate-score"] == "0.1000"
    assert raw.headers["x-request-id"].startswith("req-")
    # 11 prompt tokens at $0.1/M + 7 completion tokens at $0.2/M
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(11 * 0.1e-6 + 7 * 0.2e-6)
    assert len(small.history) == 1 and not large.history
    assert small.history[0].body["model"] == "small-model"


def test_hard_prompt_goes_large(gateway: RunningGateway, large: FakeUpstream) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(model="auto", messages=HARD)
    assert raw.headers["x-tiergate-route"] == "large"
    assert raw.parse().model == "large-a"
    assert len(large.history) == 1


def test_request_id_from_client_is_kept(gateway: RunningGateway) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=EASY, extra_headers={"x-request-id": "abc-123"}
    )
    assert raw.headers["x-request-id"] == "abc-123"


def test_tier_header_overrides_the_router(gateway: RunningGateway, small: FakeUpstream) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=HARD, extra_headers={"x-tiergate-tier": "small"}
    )
    assert raw.headers["x-tiergate-route"] == "small"
    assert len(small.history) == 1


def test_named_policy_and_deployment_bypass(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    c = client(gateway)
    raw = c.chat.completions.with_raw_response.create(model="auto:balanced", messages=HARD)
    assert raw.headers["x-tiergate-policy"] == "balanced"
    raw = c.chat.completions.with_raw_response.create(model="large-a", messages=EASY)
    assert raw.headers["x-tiergate-deployment"] == "large-a"
    assert "x-tiergate-score" not in raw.headers
    assert len(large.history) == 2 and not small.history


def test_models_lists_every_name_a_client_may_send(gateway: RunningGateway) -> None:
    ids = [m.id for m in client(gateway).models.list()]
    assert ids[:2] == ["auto", "auto:balanced"]
    assert {"auto:cost-saver", "auto:quality-first", "small-a", "large-a"} <= set(ids)


def test_models_retrieve_finds_each_name_and_404s_the_rest(gateway: RunningGateway) -> None:
    c = client(gateway)
    for name in ("auto", "auto:balanced", "small-a"):
        card = c.models.retrieve(name)
        assert card.id == name and card.object == "model"
    assert c.models.retrieve("large-a").model_extra["tiergate"]["tier"] == "large"  # type: ignore[index]
    with pytest.raises(NotFoundError) as missing:
        c.models.retrieve("gpt-17")
    assert missing.value.code == "model_not_found"


def test_pass_through_fields_reach_the_upstream(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    client(gateway).chat.completions.create(
        model="small-a",
        messages=EASY,
        seed=7,
        logprobs=True,
        top_logprobs=2,
        response_format={"type": "json_object"},
        extra_body={
            "top_k": 5,
            "guided_json": {"type": "object"},
            "chat_template_kwargs": {"enable_thinking": False},
        },
    )
    body = small.history[0].body
    assert body["seed"] == 7 and body["logprobs"] is True and body["top_logprobs"] == 2
    assert body["response_format"] == {"type": "json_object"}
    assert body["top_k"] == 5
    assert body["guided_json"] == {"type": "object"}
    assert body["chat_template_kwargs"] == {"enable_thinking": False}


def test_tool_call_round_trip_is_intact(gateway: RunningGateway, large: FakeUpstream) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
    }
    large.enqueue(Reply(tool_calls=[call]))
    c = client(gateway)
    first = c.chat.completions.create(model="auto", messages=EASY, tools=TOOLS, tool_choice="auto")
    # The small tier cannot call tools, so the tools rule sends this to the large tier.
    assert large.history[0].body["tools"] == TOOLS
    assert large.history[0].body["tool_choice"] == "auto"
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    assert message.tool_calls[0].model_dump() == call
    follow_up = [
        *EASY,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"},
    ]
    c.chat.completions.create(model="auto", messages=follow_up, tools=TOOLS)  # type: ignore[arg-type]
    sent = large.history[1].body["messages"]
    assert sent[1]["tool_calls"] == [call]
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C and sunny"}


def test_streaming_with_usage(gateway: RunningGateway, small: FakeUpstream) -> None:
    stream = client(gateway).chat.completions.create(
        model="auto", messages=EASY, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert {c.model for c in chunks} == {"small-a"}
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 7)
    assert chunks[-1].choices == []  # the usage chunk, shaped as OpenAI sends it
    assert small.history[0].body["stream_options"] == {"include_usage": True}


def test_streaming_without_usage_hides_the_usage_the_gateway_asked_for(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    chunks = list(client(gateway).chat.completions.create(model="auto", messages=EASY, stream=True))
    assert all(c.usage is None for c in chunks)
    # The gateway still asked the upstream for usage, to count the stream's cost.
    assert small.history[0].body["stream_options"] == {"include_usage": True}


def test_streamed_tool_calls_arrive(gateway: RunningGateway, large: FakeUpstream) -> None:
    call = {
        "id": "call_9",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
    }
    large.enqueue(Reply(text="", tool_calls=[call]))
    chunks = list(
        client(gateway).chat.completions.create(
            model="auto", messages=EASY, tools=TOOLS, stream=True
        )
    )
    calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_9"
    assert calls[0].function is not None and calls[0].function.arguments == '{"city": "Oslo"}'


async def test_async_client_and_legacy_completions(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    async with AsyncOpenAI(base_url=gateway.url, api_key="unused", max_retries=0) as c:
        chat = await c.chat.completions.create(model="auto", messages=EASY)
        assert chat.choices[0].message.content
        text = await c.completions.create(model="auto", prompt="Say hi", max_tokens=5)
        assert text.choices[0].text == "Hello from the fake upstream."
        assert text.model == "small-a"
    assert small.history[1].path == "/v1/completions"
    assert small.history[1].body["prompt"] == "Say hi"


def test_streamed_completions_always_carry_text(gateway: RunningGateway) -> None:
    """The `llm` CLI concatenates every chunk's text: a chunk without one crashed it."""
    chunks = list(
        client(gateway).completions.create(
            model="auto", prompt="Say hi", stream=True, stream_options={"include_usage": True}
        )
    )
    texts = [choice.text for chunk in chunks for choice in chunk.choices]
    assert all(isinstance(t, str) for t in texts), texts
    assert "".join(texts) == "Hello from the fake upstream."
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7


def test_the_developer_role_reaches_an_openai_protocol_upstream(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    messages = [{"role": "developer", "content": "Be brief."}, *EASY]
    client(gateway).chat.completions.create(model="small-a", messages=messages)  # type: ignore[arg-type]
    assert small.history[0].body["messages"] == messages


def test_concurrent_requests_share_router_batches(gateway: RunningGateway) -> None:
    import concurrent.futures

    c = client(gateway)
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda _: c.chat.completions.create(model="auto", messages=EASY), range(32)))
    assert sum(gateway.scorer.batches) == 32


def test_an_upstream_without_usage_still_costs_something(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    small.enqueue(Reply(text="four score and seven", report_usage=False))
    raw = client(gateway).chat.completions.with_raw_response.create(model="auto", messages=EASY)
    # Estimated at four characters a token, rounded up: 30 prompt chars, 20 completion chars.
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(8 * 0.1e-6 + 5 * 0.2e-6)
