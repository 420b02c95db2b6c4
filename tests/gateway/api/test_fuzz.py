"""Contract fuzzing: schemathesis generates requests from the gateway's own `/openapi.json`
(valid ones and, by mutating them, invalid ones), 1,000 per operation, against a gateway on
loopback in front of a healthy fake upstream. Nothing may be a 5xx, and every error must be in
OpenAI's envelope."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.generation import GenerationMode

from tests.support.gateway import RunningGateway, config, start_gateway
from tests.support.upstream import FakeUpstream

pytestmark = pytest.mark.fuzz

EXAMPLES = 1000
"""Schema-valid cases per operation."""
NEGATIVE_EXAMPLES = 300
"""Schema-breaking cases per operation with a body, on top."""


@pytest.fixture(scope="module")
def fuzzed_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    upstream = FakeUpstream("fuzz-model").start()
    gw = start_gateway(tmp_path_factory.mktemp("fuzz"), config(upstream.url, upstream.url))
    yield gw
    gw.stop()
    upstream.stop()


@pytest.fixture(scope="module")
def api_schema(fuzzed_gateway: RunningGateway) -> Any:
    return schemathesis.openapi.from_url(fuzzed_gateway.root + "/openapi.json")


OPERATIONS = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/completions"),
    ("GET", "/v1/models"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/status"),
    ("GET", "/admin/usage/{key_id}"),
]


def check(response: Any, case: Any) -> None:
    assert response.status_code < 500, f"{case.as_curl_command()} -> {response.text[:300]}"
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert set(body) == {"error"}, response.text
        error = body["error"]
        assert set(error) == {"message", "type", "param", "code"}, response.text
        assert isinstance(error["message"], str) and error["message"]


@pytest.mark.parametrize("mode", list(GenerationMode), ids=lambda m: m.value)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[" ".join(o) for o in OPERATIONS])
def test_no_5xx_and_every_error_in_the_envelope(
    api_schema: Any, fuzzed_gateway: RunningGateway, method: str, path: str, mode: GenerationMode
) -> None:
    """Positive cases follow the schema; negative ones break it on purpose (wrong types,
    missing fields, out-of-range values) and must all be 4xx in the envelope."""
    operation = api_schema[path][method]
    if mode is GenerationMode.NEGATIVE and method == "GET":
        pytest.skip("no body to break (a string path parameter has no invalid value)")
    examples = EXAMPLES if mode is GenerationMode.POSITIVE else NEGATIVE_EXAMPLES
    seen = {"n": 0}

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        seen["n"] += 1
        check(case.call(base_url=fuzzed_gateway.root, timeout=30), case)

    run()
    has_input = method == "POST" or "{" in path
    assert seen["n"] >= (examples // 2 if has_input else 1), seen


def test_the_schema_has_every_operation(api_schema: Any) -> None:
    ops = {(r.ok().method.upper(), r.ok().path) for r in api_schema.get_all_operations()}
    assert set(OPERATIONS) <= ops
