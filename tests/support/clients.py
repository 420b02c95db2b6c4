"""What the client tests need on the gateway's side: a fake upstream that answers like a model
would in an agent loop, and a gateway in front of it for clients run from `.venv-clients`.

Agent frameworks hold a conversation (ask, call a tool, read its output, answer), so a test cannot
enqueue their turns one by one: `agent_reply` answers each request by what it says.
`serve_for_clients` starts the fakes and a keyed gateway on loopback, in this process, for a client
suite run in another environment (`tests/clients`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.gateway import RunningGateway, start_gateway, two_tier_config
from tests.support.records import Records
from tests.support.upstream import Fail, FakeUpstream, Reply, Script

KEY = "sk-clients-test-0123456789"
WEATHER = "18C and sunny"


def instance_of(schema: dict[str, Any]) -> Any:
    """A small value that fits a JSON schema: what a model asked for structured output says."""
    if "anyOf" in schema:
        return instance_of(schema["anyOf"][0])
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {name: instance_of(sub) for name, sub in props.items()}
    return {"string": "Paris", "integer": 18, "number": 18.5, "boolean": True, "array": []}.get(
        str(kind)
    )


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(p.get("text") or "" for p in content or () if isinstance(p, dict))


def agent_reply(body: dict[str, Any]) -> Reply:
    """A chat completions request's answer, by what it asks: call `get_weather` when asked about
    the weather, answer with the tool's output once it came back, fill a `final_result` tool or
    a JSON schema with a value that fits it, describe an image."""
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or ()}
    asked = _text(last.get("content"))
    if last.get("role") == "tool":
        if "final_result" in tools:
            return _call("final_result", instance_of(tools["final_result"]["parameters"]))
        return Reply(text=f"The weather in Paris: {_text(last.get('content'))}.")
    if "get_weather" in tools and "weather" in asked.lower():
        return _call("get_weather", {"city": "Paris"})
    if "final_result" in tools:
        return _call("final_result", instance_of(tools["final_result"]["parameters"]))
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return Reply(text=json.dumps(instance_of(fmt["json_schema"]["schema"])))
    if any(p.get("type") == "image_url" for p in last.get("content") or () if isinstance(p, dict)):
        return Reply(text="A red square.")
    return Reply(text="Hello from the fake upstream.")


def _call(name: str, arguments: Any) -> Reply:
    call = {
        "id": f"call_{name}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }
    return Reply(text="", tool_calls=[call])


@dataclass
class ClientsGateway:
    gateway: RunningGateway
    records: Records
    upstreams: list[FakeUpstream]

    def stop(self) -> None:
        self.gateway.stop()
        for upstream in self.upstreams:
            upstream.stop()


def serve_for_clients(tmp_path: Path, *, store: bool = True) -> ClientsGateway:
    """Two tiers that answer like a model in an agent loop (the large one takes images), a
    `limited` deployment that always answers 429, an `embedder`, all behind one key."""
    import hashlib

    small, large, limited = (FakeUpstream(n).start() for n in ("small-model", "large-model", "x"))
    small.default = large.default = Script(agent_reply)
    limited.default = Fail(429, "slow down", retry_after=2)
    config: dict[str, Any] = two_tier_config(small.url, large.url)
    config["deployments"]["small-a"]["capabilities"] = {"tools": True}
    config["deployments"]["large-a"]["capabilities"] = {"vision": True}
    config["deployments"]["limited"] = {"model": "openai/limited", "api_base": limited.url}
    config["deployments"]["embedder"] = {
        "model": "openai/text-embedding-3-small",
        "api_base": small.url,
        "capabilities": {"embeddings": True},
    }
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    config["keys"] = [{"id": "clients", "key_sha256": digest}]
    records = Records()
    gateway = start_gateway(tmp_path, config, sinks=[records])
    return ClientsGateway(gateway, records, [small, large, limited])
