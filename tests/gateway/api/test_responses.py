"""`POST /v1/responses` over real HTTP with the official `openai` client, on both backends: routed
like chat completions, translated for chat-only upstreams, passed through to native ones."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import BadRequestError, OpenAI, RateLimitError

from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.records import Records
from tests.support.upstream import Cut, Fail, FakeUpstream, Reply

pytestmark = pytest.mark.usefixtures("backend")  # once per backend (tests/gateway/conftest.py)

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
}


def client(gw: RunningGateway) -> OpenAI:
    return gw.sdk()


@pytest.fixture
def recorded(
    tmp_path: Path, small: FakeUpstream, large: FakeUpstream
) -> Iterator[tuple[RunningGateway, Records]]:
    records = Records()
    config = two_tier_config(small.url, large.url)
    config["deployments"]["large-a"]["capabilities"] = {"vision": True, "reasoning": True}
    running = start_gateway(tmp_path, config, sinks=[records])
    yield running, records
    running.stop()


def test_a_response_is_routed_like_chat_with_its_headers_and_record(
    recorded: tuple[RunningGateway, Records], small: FakeUpstream
) -> None:
    gw, records = recorded
    raw = client(gw).responses.with_raw_response.create(
        model="auto", input="What is 2 + 2?", instructions="Be brief.", max_output_tokens=64
    )
    response = raw.parse()
    assert response.output_text == "Hello from the fake upstream."
    assert response.status == "completed" and response.model == "small-a"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 7)
    assert raw.headers["x-tiergate-route"] == "small"
    assert raw.headers["x-tiergate-deployment"] == "small-a"
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(11 * 0.1e-6 + 7 * 0.2e-6)
    sent = small.history[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent.body["max_tokens"] == 64
    (rec,) = records.wait(1)
    assert rec.endpoint == "responses" and rec.deployment == "small-a" and rec.status_code == 200
    assert (rec.prompt_tokens, rec.completion_tokens) == (11, 7)


def test_a_streamed_response_arrives_as_typed_events(
    recorded: tuple[RunningGateway, Records], small: FakeUpstream
) -> None:
    gw, records = recorded
    small.enqueue(Reply(text="one two three", prompt_tokens=5, completion_tokens=3))
    events = list(client(gw).responses.create(model="auto", input="Count", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "one two three"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "one two three" and final.usage.output_tokens == 3
    (rec,) = records.wait(1)
    assert rec.endpoint == "responses" and rec.stream and rec.completion_tokens == 3


def test_tools_round_trip_through_function_call_items(
    gateway: RunningGateway, large: FakeUpstream
) -> None:
    large.enqueue(Reply(tool_calls=[CALL]), Reply(text="18C and sunny in Paris."))
    c = client(gateway)
    first = c.responses.create(model="auto", input="Weather in Paris?", tools=[WEATHER])  # type: ignore[list-item]
    # The small tier cannot call tools, so the tools rule sends this to the large tier.
    (call,) = first.output
    assert call.type == "function_call" and call.call_id == "call_1"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert large.history[0].body["tools"][0]["function"]["name"] == "get_weather"
    second = c.responses.create(
        model="auto",
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            call.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"type": "function_call_output", "call_id": "call_1", "output": "18C, sunny"},
        ],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "18C and sunny in Paris."
    sent = large.history[1].body["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18C, sunny"}


def test_streamed_tool_calls_arrive_as_function_call_events(
    gateway: RunningGateway, large: FakeUpstream
) -> None:
    large.enqueue(Reply(text="", tool_calls=[CALL]))
    stream = client(gateway).responses.create(
        model="auto",
        input="Weather?",
        tools=[WEATHER],
        stream=True,  # type: ignore[list-item]
    )
    events = list(stream)
    done = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert json.loads(done[0].arguments) == {"city": "Paris"}
    final = events[-1].response  # type: ignore[union-attr]
    assert [o.type for o in final.output] == ["function_call"]


def test_structured_output_reaches_the_upstream_as_response_format(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    small.enqueue(Reply(text='{"answer": 4}'))
    schema = {"type": "object", "properties": {"answer": {"type": "integer"}}}
    response = client(gateway).responses.create(
        model="small-a",
        input="2 + 2?",
        text={"format": {"type": "json_schema", "name": "sum", "schema": schema, "strict": True}},
    )
    assert json.loads(response.output_text) == {"answer": 4}
    assert small.history[0].body["response_format"]["json_schema"]["name"] == "sum"


def test_an_image_goes_to_the_vision_tier_and_reasoning_only_where_accepted(
    recorded: tuple[RunningGateway, Records], small: FakeUpstream, large: FakeUpstream
) -> None:
    gw, records = recorded
    image = {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}
    content = [{"type": "input_text", "text": "What is this?"}, image]
    raw = client(gw).responses.with_raw_response.create(
        model="auto",
        input=[{"role": "user", "content": content}],  # type: ignore[list-item]
        reasoning={"effort": "low"},
        max_output_tokens=100,
    )
    assert raw.headers["x-tiergate-route"] == "large"
    body = large.history[0].body
    assert body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png")
    assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 100
    assert "max_tokens" not in body
    client(gw).responses.create(model="small-a", input="hi", reasoning={"effort": "low"})
    assert "reasoning_effort" not in small.history[0].body
    assert records.wait(2)[0].decision_reason == "vision"


def test_a_stream_cut_mid_way_ends_with_response_failed(
    gateway: RunningGateway, small: FakeUpstream
) -> None:
    small.enqueue(Cut(after=2))
    r = httpx.post(
        gateway.url + "/responses",
        json={"model": "auto", "input": "hi", "stream": True},
        timeout=30,
    )
    kinds = [line[7:] for line in r.text.splitlines() if line.startswith("event: ")]
    assert kinds[0] == "response.created" and kinds[-2:] == ["error", "response.failed"]
    assert "response.completed" not in kinds


def test_fallback_and_an_honest_429(
    gateway: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    small.enqueue(Fail(500))
    raw = client(gateway).responses.with_raw_response.create(model="auto", input="hi")
    assert raw.headers["x-tiergate-fallback"] == "small-a=server_error"
    assert raw.parse().model == "large-a"
    small.enqueue(Fail(429, retry_after=2))
    large.enqueue(Fail(429, retry_after=5))
    with pytest.raises(RateLimitError) as limited:
        client(gateway).responses.create(model="auto", input="hi")
    assert limited.value.response.headers["retry-after"] == "2"


def test_built_in_tools_need_a_native_deployment(gateway: RunningGateway) -> None:
    with pytest.raises(BadRequestError) as refused:
        client(gateway).responses.create(
            model="auto",
            input="news?",
            tools=[{"type": "web_search"}],  # type: ignore[list-item]
        )
    assert refused.value.code == "unsupported_input"
    assert "tool 'web_search'" in refused.value.message
    assert "capabilities.responses" in refused.value.message


def test_state_the_gateway_does_not_keep_is_refused(gateway: RunningGateway) -> None:
    c = client(gateway)
    with pytest.raises(BadRequestError) as refused:
        c.responses.create(model="auto", input="hi", background=True)
    assert refused.value.code == "unsupported_parameter"


@pytest.fixture
def native(tmp_path: Path, small: FakeUpstream, large: FakeUpstream) -> Iterator[RunningGateway]:
    """The large tier serves the Responses API natively (it must use the direct backend)."""
    config: dict[str, Any] = two_tier_config(small.url, large.url)
    config["deployments"]["large-a"].update(
        backend="openai-compatible", capabilities={"responses": True}
    )
    running = start_gateway(tmp_path, config)
    yield running
    running.stop()


def test_a_native_deployment_gets_the_request_as_it_came(
    native: RunningGateway, small: FakeUpstream, large: FakeUpstream
) -> None:
    tools: list[Any] = [{"type": "web_search"}, WEATHER]
    raw = client(native).responses.with_raw_response.create(
        model="auto", input="news?", tools=tools, include=["web_search_call.action.sources"]
    )
    response = raw.parse()
    assert raw.headers["x-tiergate-route"] == "large" and not small.history
    sent = large.history[0]
    assert sent.path == "/v1/responses"
    assert sent.body["tools"] == tools and sent.body["input"] == "news?"
    assert sent.body["store"] is False and sent.body["model"] == "large-model"
    assert response.id.startswith("resp_") and response.id != "resp_upstream"
    assert response.model == "large-a" and response.output_text == "Hello from the fake upstream."


def test_a_native_stream_passes_through_under_the_gateways_id(
    native: RunningGateway, large: FakeUpstream
) -> None:
    events = list(client(native).responses.create(model="large-a", input="hi", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[0].response.id == events[-1].response.id != "resp_upstream"  # type: ignore[union-attr]
    assert events[-1].response.model == "large-a"  # type: ignore[union-attr]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the fake upstream."
    assert large.history[0].body["stream"] is True
