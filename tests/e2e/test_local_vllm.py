"""End to end: the official `openai` client and LangChain, through the gateway, to SmolLM2 on vLLM.

Every request is also sent straight to vLLM with the same greedy settings, so "usage tokens equal
to what vLLM reported" is checked against vLLM itself, not against the gateway's own arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support.vllm import SMALL, Gateway, Server

pytestmark = pytest.mark.vllm

QUESTION: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "What is the capital of France?"}
]
# Greedy and short: the same request straight to vLLM must give the same tokens.
TEMPERATURE, MAX_TOKENS, SEED = 0, 24, 0


def client(server: Server) -> OpenAI:
    return OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, timeout=120)


def straight_to_vllm(vllm: Server) -> tuple[str, int, int]:
    reply = client(vllm).chat.completions.create(
        model=vllm.model,
        messages=QUESTION,
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
        seed=SEED,
    )
    assert reply.usage is not None
    text = reply.choices[0].message.content or ""
    return text, reply.usage.prompt_tokens, reply.usage.completion_tokens


def assert_routed_to_small(headers: Any) -> None:
    assert headers["x-tiergate-route"] == "small"
    assert headers["x-tiergate-deployment"] == SMALL
    assert 0.0 <= float(headers["x-tiergate-score"]) <= 1.0
    assert headers["x-request-id"]


def test_json_answer_usage_and_cost(gateway: Gateway, vllm_server: Server) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto", messages=QUESTION, temperature=TEMPERATURE, max_tokens=MAX_TOKENS, seed=SEED
    )
    reply = raw.parse()
    text = reply.choices[0].message.content or ""
    assert "Paris" in text
    assert_routed_to_small(raw.headers)

    direct_text, prompt_tokens, completion_tokens = straight_to_vllm(vllm_server)
    assert text == direct_text
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (
        prompt_tokens,
        completion_tokens,
    )
    price = gateway.config.deployments[SMALL].price
    expected = price.cost(prompt_tokens, completion_tokens)
    assert float(raw.headers["x-tiergate-cost-usd"]) == pytest.approx(expected, abs=1e-9)


def test_streamed_answer_and_usage(gateway: Gateway, vllm_server: Server) -> None:
    with client(gateway).chat.completions.with_streaming_response.create(
        model="auto",
        messages=QUESTION,
        stream=True,
        stream_options={"include_usage": True},
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
        seed=SEED,
    ) as response:
        assert_routed_to_small(response.headers)
        pieces, usage = [], None
        for chunk in response.parse():
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                usage = chunk.usage
    direct_text, prompt_tokens, completion_tokens = straight_to_vllm(vllm_server)
    assert "".join(pieces) == direct_text
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt_tokens, completion_tokens)


def test_an_unreachable_large_tier_falls_back_to_the_small_one(gateway: Gateway) -> None:
    raw = client(gateway).chat.completions.with_raw_response.create(
        model="auto",
        messages=QUESTION,
        extra_headers={"x-tiergate-tier": "large"},
        temperature=TEMPERATURE,
        max_tokens=MAX_TOKENS,
        seed=SEED,
    )
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-tiergate-route"] == "small"
    assert raw.headers["x-tiergate-fallback"]


def test_langchain_two_step_chain(gateway: Gateway) -> None:
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.runnables import RunnableLambda
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        base_url=gateway.base_url,
        api_key="unused",
        model="auto",
        temperature=0,
        max_completion_tokens=32,
        max_retries=0,
        timeout=120,
    )
    pick = (
        ChatPromptTemplate.from_messages(
            [("user", "Name one country in Europe. Reply with the country's name only.")]
        )
        | llm
        | StrOutputParser()
    )
    ask = (
        ChatPromptTemplate.from_messages([("user", "What is the capital of {country}?")])
        | llm
        | StrOutputParser()
    )
    chain = pick | RunnableLambda(lambda country: {"country": country.strip()}) | ask
    answer = chain.invoke({})
    assert isinstance(answer, str) and answer.strip()
