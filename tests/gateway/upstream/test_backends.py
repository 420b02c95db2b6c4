"""Each backend on its own, against the fake upstream over real HTTP: what it sends, what it
returns, and how it names each failure (the service decides fallback from that name alone)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from multidict import CIMultiDict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, StreamingResponse
from starlette.routing import Route

from gateway.config import Deployment
from gateway.upstream.base import Backend, Target, UpstreamCall, UpstreamError
from gateway.upstream.litellm import LiteLLMBackend
from gateway.upstream.openai import OpenAICompatibleBackend, _retry_after, served_model
from tests.support.upstream import Cut, Fail, FakeUpstream, Malformed, Stall, serve_in_thread

BACKENDS = ("litellm", "openai-compatible")
CHAT = UpstreamCall("chat", {"messages": [{"role": "user", "content": "hi"}]})
STREAM = UpstreamCall(
    "chat",
    {"messages": [{"role": "user", "content": "hi"}], "stream_options": {"include_usage": True}},
)


@pytest.fixture
def backend() -> str:
    """Overrides the suite-wide fixture: tests here choose backends with `parametrize`."""
    return "openai-compatible"


@pytest.fixture
async def live(backend: str) -> AsyncIterator[Backend]:
    made: Backend = LiteLLMBackend() if backend == "litellm" else OpenAICompatibleBackend()
    yield made
    await made.aclose()


def target(url: str, *, timeout_s: float = 30.0, key: str | None = None) -> Target:
    deployment = Deployment(
        model="openai/small-model", api_base=url, timeout_s=timeout_s, api_key_env="KEY"
    )
    return Target("small-a", deployment, key)


async def fail_with(live: Backend, t: Target, *, stream: bool = False) -> UpstreamError:
    with pytest.raises(UpstreamError) as info:
        if stream:
            async for _ in live.stream(t, STREAM):
                pass
        else:
            await live.complete(t, CHAT)
    return info.value


both = pytest.mark.parametrize("backend", BACKENDS)


@both
async def test_answer_and_what_reached_the_upstream(live: Backend, small: FakeUpstream) -> None:
    call = UpstreamCall(
        "chat",
        {"messages": [{"role": "user", "content": "hi"}], "seed": 7},
        extra={"top_k": 5, "chat_template_kwargs": {"enable_thinking": False}},
    )
    body = await live.complete(target(small.url, key="sk-1"), call)
    assert body["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert body["usage"]["completion_tokens"] == 7
    seen = small.history[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.body["model"] == "small-model"  # the provider prefix is not the served name
    assert seen.body["seed"] == 7 and seen.body["top_k"] == 5
    assert seen.body["chat_template_kwargs"] == {"enable_thinking": False}
    assert seen.headers["authorization"] == "Bearer sk-1"


@both
async def test_text_completions_endpoint(live: Backend, small: FakeUpstream) -> None:
    body = await live.complete(target(small.url), UpstreamCall("completions", {"prompt": "Hi"}))
    assert body["choices"][0]["text"] == "Hello from the fake upstream."
    assert small.history[0].path == "/v1/completions"


@both
async def test_stream_chunks_and_usage(live: Backend, small: FakeUpstream) -> None:
    chunks = [c async for c in live.stream(target(small.url), STREAM)]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello from the fake upstream."
    assert chunks[-1]["usage"]["prompt_tokens"] == 11
    assert small.history[0].body["stream"] is True


@both
async def test_refused_connection_is_connect(live: Backend) -> None:
    error = await fail_with(live, target("http://127.0.0.1:9/v1"))
    assert error.kind == "connect" and error.falls_back
    error = await fail_with(live, target("http://127.0.0.1:9/v1"), stream=True)
    assert error.kind == "connect"


@both
async def test_server_error_is_server_error(live: Backend, small: FakeUpstream) -> None:
    small.enqueue(Fail(500, message="boom"), Fail(503))
    error = await fail_with(live, target(small.url))
    assert (error.kind, error.status) == ("server_error", 500)
    assert "boom" in error.message
    error = await fail_with(live, target(small.url), stream=True)
    assert (error.kind, error.status) == ("server_error", 503)


@both
async def test_rate_limit_carries_retry_after(live: Backend, small: FakeUpstream) -> None:
    small.enqueue(Fail(429, retry_after=7))
    error = await fail_with(live, target(small.url))
    assert (error.kind, error.status, error.retry_after) == ("rate_limited", 429, 7.0)


@both
async def test_rejected_request_is_client_error_with_the_reason(
    live: Backend, small: FakeUpstream
) -> None:
    small.enqueue(Fail(400, message="top_k must be positive"))
    error = await fail_with(live, target(small.url))
    assert (error.kind, error.status) == ("client_error", 400)
    assert "top_k must be positive" in error.message and not error.falls_back


@both
async def test_malformed_json_is_protocol(live: Backend, small: FakeUpstream) -> None:
    small.enqueue(Malformed())
    assert (await fail_with(live, target(small.url))).kind == "protocol"


@both
async def test_stall_is_timeout(live: Backend, small: FakeUpstream) -> None:
    small.enqueue(Stall(3))
    started = time.monotonic()
    error = await fail_with(live, target(small.url, timeout_s=0.3))
    assert error.kind == "timeout"
    assert time.monotonic() - started < 2.5


@both
async def test_cut_stream_fails_after_the_chunks_it_sent(
    live: Backend, small: FakeUpstream
) -> None:
    small.enqueue(Cut(after=2))
    received = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in live.stream(target(small.url), STREAM):
            received.append(chunk)
    assert len(received) == 2
    assert info.value.falls_back


# --- the direct backend only ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "sent"),
    [
        ("openai/gpt-4o-mini", "gpt-4o-mini"),
        ("hosted_vllm/smollm2-135m", "smollm2-135m"),
        ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("hosted_vllm/org/model", "org/model"),
    ],
)
def test_served_model_strips_only_provider_prefixes(model: str, sent: str) -> None:
    assert served_model(model) == sent


async def test_no_key_sends_no_authorization(live: Backend, small: FakeUpstream) -> None:
    await live.complete(target(small.url), CHAT)
    assert "authorization" not in small.history[0].headers


def test_retry_after_as_an_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (_retry_after(CIMultiDict({"retry-after": when})) or 0) <= 30
    assert _retry_after(CIMultiDict({"Retry-After": "soon"})) is None
    assert _retry_after(CIMultiDict()) is None


async def test_closing_a_stream_early_leaves_the_backend_usable(
    live: Backend, small: FakeUpstream
) -> None:
    chunks = live.stream(target(small.url), STREAM)
    first = await anext(chunks)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    await chunks.aclose()  # type: ignore[attr-defined]
    assert (await live.complete(target(small.url), CHAT))["choices"]


async def _error_event_stream(request: Request) -> StreamingResponse:
    async def events() -> AsyncIterator[bytes]:
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}\n\n'
        yield b'data: {"error": {"message": "engine died", "code": 500}}\n\n'

    return StreamingResponse(events(), media_type="text/event-stream")


async def _redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/elsewhere", status_code=307)


@pytest.fixture
def odd_upstream() -> Iterator[str]:
    """An upstream that sends an error event mid-stream, and redirects text completions."""
    app = Starlette(
        routes=[
            Route("/v1/chat/completions", _error_event_stream, methods=["POST"]),
            Route("/v1/completions", _redirect, methods=["POST"]),
        ]
    )
    server, thread, sock = serve_in_thread(app)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    server.should_exit = True
    thread.join(timeout=10)


async def test_an_error_event_mid_stream_raises(live: Backend, odd_upstream: str) -> None:
    received = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in live.stream(target(odd_upstream), STREAM):
            received.append(chunk)
    assert len(received) == 1
    assert info.value.kind == "server_error" and "engine died" in info.value.message


async def test_a_redirect_is_not_followed(live: Backend, odd_upstream: str) -> None:
    with pytest.raises(UpstreamError) as info:
        await live.complete(target(odd_upstream), UpstreamCall("completions", {"prompt": "Hi"}))
    assert (info.value.kind, info.value.status) == ("protocol", 307)
