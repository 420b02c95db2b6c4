"""Today's clients against a running gateway: run from `.venv-clients` (their `openai>=3` clashes
with litellm's pin), by `tests/clients/test_clients.py`, which starts the gateway in front of fake
upstreams and reads the outcome of each test here as one row of the client matrix.

Each test is named `test_<client>__<case>`. The README's "Use with" snippets are run as they are
written, with the gateway's address and key put in place of the README's.

Environment: `TIERGATE_URL` (base URL with `/v1`), `TIERGATE_KEY`, `TIERGATE_README`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI, RateLimitError
from pydantic import BaseModel

URL = os.environ.get("TIERGATE_URL", "http://127.0.0.1:8080/v1")
KEY = os.environ.get("TIERGATE_KEY", "unused")
README = Path(os.environ.get("TIERGATE_README", Path(__file__).parents[3] / "README.md"))
IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC"  # noqa: E501


def client() -> OpenAI:
    return OpenAI(base_url=URL, api_key=KEY, max_retries=0)


def snippet(name: str) -> dict[str, Any]:
    """Run the README's `<!-- snippet: name -->` block against this gateway; its globals."""
    text = README.read_text("utf-8")
    found = re.search(rf"<!-- snippet: {name} -->\s*```python\n(.*?)```", text, re.S)
    assert found, f"the README has no snippet {name!r}"
    code = found.group(1).replace("http://127.0.0.1:8080/v1", URL)
    code = code.replace("YOUR_TIERGATE_KEY", KEY)
    scope: dict[str, Any] = {"__name__": f"readme_{name}"}
    exec(compile(code, f"README.md:{name}", "exec"), scope)
    return scope


class Weather(BaseModel):
    city: str
    temperature_c: int


# --- the openai SDK ------------------------------------------------------------------------------


def test_openai__responses_create() -> None:
    raw = client().responses.with_raw_response.create(model="auto", input="What is 2 + 2?")
    response = raw.parse()
    assert response.output_text == "Hello from the fake upstream."
    assert response.status == "completed" and response.usage is not None
    assert raw.headers["x-tiergate-route"] in ("small", "large")


def test_openai__responses_stream() -> None:
    events = list(client().responses.create(model="auto", input="Say hello", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "Hello from the fake upstream."
    assert [e.sequence_number for e in events] == list(range(len(events)))


def test_openai__responses_stream_helper() -> None:
    with client().responses.stream(model="auto", input="Say hello") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == "Hello from the fake upstream."


def test_openai__responses_tools() -> None:
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
    c = client()
    first = c.responses.create(model="auto", input="What is the weather in Paris?", tools=[tool])  # type: ignore[list-item]
    calls = [o for o in first.output if o.type == "function_call"]
    assert calls and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    follow_up: list[Any] = [
        {"role": "user", "content": "What is the weather in Paris?"},
        *[o.model_dump(exclude_none=True) for o in first.output],
        {"type": "function_call_output", "call_id": calls[0].call_id, "output": "18C and sunny"},
    ]
    second = c.responses.create(model="auto", input=follow_up, tools=[tool])  # type: ignore[list-item]
    assert second.output_text == "The weather in Paris: 18C and sunny."


def test_openai__responses_structured_output() -> None:
    parsed = client().responses.parse(model="auto", input="Weather in Paris?", text_format=Weather)
    assert parsed.output_parsed == Weather(city="Paris", temperature_c=18)


def test_openai__responses_image() -> None:
    content: Any = [
        {"type": "input_text", "text": "What is in this picture?"},
        {"type": "input_image", "image_url": IMAGE, "detail": "low"},
    ]
    raw = client().responses.with_raw_response.create(
        model="auto", input=[{"role": "user", "content": content}]
    )
    assert raw.parse().output_text == "A red square."
    assert raw.headers["x-tiergate-route"] == "large"  # the only tier that takes images


def test_openai__responses_previous_response_id() -> None:
    c = client()
    first = c.responses.create(model="auto", input="My name is Ada.")
    second = c.responses.create(
        model="auto", input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    assert c.responses.retrieve(second.id).output_text == second.output_text
    c.responses.delete(first.id)


def test_openai__responses_async_stream() -> None:
    async def run() -> str:
        async with AsyncOpenAI(base_url=URL, api_key=KEY, max_retries=0) as c:
            stream = await c.responses.create(model="auto", input="Say hello", stream=True)
            return "".join(
                [e.delta async for e in stream if e.type == "response.output_text.delta"]
            )

    assert asyncio.run(run()) == "Hello from the fake upstream."


def test_openai__models_retrieve() -> None:
    assert client().models.retrieve("auto").id == "auto"
    assert client().models.retrieve("small-a").id == "small-a"


def test_openai__embeddings() -> None:
    vectors = client().embeddings.create(model="embedder", input=["one", "two"])
    assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 8


def test_openai__rate_limit_error() -> None:
    with pytest.raises(RateLimitError) as limited:
        client().chat.completions.create(
            model="limited", messages=[{"role": "user", "content": "hi"}]
        )
    assert limited.value.code == "rate_limit_exceeded"
    assert limited.value.response.headers["retry-after"] == "2"


def test_openai__chat_completions_stream() -> None:
    stream = client().chat.completions.create(
        model="auto",
        messages=[{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream." and chunks[-1].usage is not None


def test_openai__completions_stream() -> None:
    chunks = list(client().completions.create(model="auto", prompt="Say hi", stream=True))
    assert all(isinstance(choice.text, str) for c in chunks for choice in c.choices)


def test_openai__errors_say_what_to_fix() -> None:
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    plain = httpx.post(
        f"{URL}/chat/completions",
        content=json.dumps(body),
        headers={"authorization": f"Bearer {KEY}", "content-type": "text/plain"},
    )
    assert plain.status_code == 400 and "Content-Type: application/json" in plain.text
    bare = httpx.post(f"{URL}/chat/completions", json=body, headers={"authorization": KEY})
    assert bare.status_code == 401 and "expected 'Authorization: Bearer <key>'" in bare.text


# --- the OpenAI Agents SDK -----------------------------------------------------------------------


def test_agents__readme_snippet_runs_a_tool() -> None:
    scope = snippet("agents")
    assert scope["result"].final_output == "The weather in Paris: 18C and sunny."


def test_agents__streamed_run_with_a_tool() -> None:
    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "18C and sunny"

    async def run() -> tuple[Any, list[str]]:
        model = OpenAIResponsesModel("auto", AsyncOpenAI(base_url=URL, api_key=KEY))
        agent = Agent(name="Assistant", model=model, tools=[get_weather])
        result = Runner.run_streamed(agent, "What is the weather in Paris?")
        kinds = [event.type async for event in result.stream_events()]
        return result.final_output, kinds

    final, kinds = asyncio.run(run())
    assert final == "The weather in Paris: 18C and sunny."
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds


# --- LangChain -----------------------------------------------------------------------------------


def test_langchain__readme_snippet_uses_the_responses_api() -> None:
    scope = snippet("langchain")
    assert scope["reply"].text == "Hello from the fake upstream."


def test_langchain__tool_call_and_stream() -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="auto", base_url=URL, api_key=KEY, use_responses_api=True)  # type: ignore[arg-type]

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "18C and sunny"

    message = llm.bind_tools([get_weather]).invoke("What is the weather in Paris?")
    assert message.tool_calls[0]["name"] == "get_weather"  # type: ignore[attr-defined]
    assert message.tool_calls[0]["args"] == {"city": "Paris"}  # type: ignore[attr-defined]
    text = "".join(chunk.text for chunk in llm.stream("Say hello"))
    assert text == "Hello from the fake upstream."


def test_langchain__structured_output() -> None:
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model="auto", base_url=URL, api_key=KEY, use_responses_api=True)  # type: ignore[arg-type]
    weather = llm.with_structured_output(Weather, method="json_schema").invoke("Paris?")
    assert weather == Weather(city="Paris", temperature_c=18)


# --- pydantic-ai ---------------------------------------------------------------------------------


def test_pydantic_ai__readme_snippet_runs_a_tool() -> None:
    scope = snippet("pydantic-ai")
    assert scope["result"].output == "The weather in Paris: 18C and sunny."


def test_pydantic_ai__structured_output_and_stream() -> None:
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIResponsesModel("auto", provider=OpenAIProvider(base_url=URL, api_key=KEY))
    assert Agent(model, output_type=Weather).run_sync("Paris?").output == Weather(
        city="Paris", temperature_c=18
    )

    async def streamed() -> str:
        async with Agent(model).run_stream("Say hello") as run:
            return "".join([delta async for delta in run.stream_text(delta=True)])

    assert asyncio.run(streamed()) == "Hello from the fake upstream."


# --- the llm CLI ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def llm_home(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An `llm` configuration with the gateway as three models: chat, Responses, completion."""
    home = tmp_path_factory.mktemp("llm")
    models = [
        {"model_id": "tg-chat", "model_name": "auto", "api_base": URL, "api_key_name": "tg"},
        {"model_id": "tg-responses", "model_name": "auto", "api_base": URL,
         "api_key_name": "tg", "responses": True},
        {"model_id": "tg-completion", "model_name": "auto", "api_base": URL,
         "api_key_name": "tg", "completion": True},
    ]  # fmt: skip
    (home / "extra-openai-models.yaml").write_text(json.dumps(models))  # JSON is YAML
    (home / "keys.json").write_text(json.dumps({"tg": KEY}))
    return {**os.environ, "LLM_USER_PATH": str(home)}


@pytest.mark.parametrize("model", ["tg-chat", "tg-responses", "tg-completion"])
@pytest.mark.parametrize("stream", [True, False])
def test_llm__cli(llm_home: dict[str, str], model: str, stream: bool) -> None:
    argv = [sys.executable, "-m", "llm", "-m", model, "Say hello"]
    if not stream:
        argv.append("--no-stream")
    done = subprocess.run(argv, env=llm_home, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Hello from the fake upstream."
