"""The Responses API <-> chat completions translation, both ways, on plain values."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.chat.response_events import ResponseEvents
from gateway.chat.translate import ResponseShell, response_from_chat, to_chat
from gateway.protocol.errors import GatewayError
from gateway.protocol.responses import ResponsesRequest

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


def request(**fields: Any) -> ResponsesRequest:
    return ResponsesRequest.model_validate({"model": "auto", **fields})


def chat_of(**fields: Any) -> dict[str, Any]:
    translation = to_chat(request(**fields))
    return translation.chat.model_dump(exclude_unset=True)


def test_a_string_input_and_instructions_become_system_and_user_messages() -> None:
    chat = chat_of(input="Hi", instructions="Be brief", max_output_tokens=50, temperature=0.2)
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
    ]
    assert chat["max_tokens"] == 50 and chat["temperature"] == 0.2


def test_parts_images_audio_and_files_map_to_chat_parts() -> None:
    content = [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAA", "detail": "low"},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "input_file", "file_data": "JVBER", "filename": "a.pdf"},
    ]
    chat = chat_of(input=[{"role": "user", "content": content}])
    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA", "detail": "low"}},
        {"type": "input_audio", "input_audio": {"data": "UklG", "format": "wav"}},
        {"type": "file", "file": {"file_data": "JVBER", "filename": "a.pdf"}},
    ]


def test_function_calls_and_outputs_become_tool_calls_and_tool_messages() -> None:
    items = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city": "Paris"}'},
        {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "get_weather",
         "arguments": '{"city": "Rome"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
        {"type": "function_call_output", "call_id": "call_2",
         "output": [{"type": "input_text", "text": "21C"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
    ]  # fmt: skip
    chat = chat_of(input=items, tools=[WEATHER], tool_choice={"type": "function", "name": "x"})
    _user, assistant, out1, out2 = chat["messages"]
    assert assistant["content"] == "Let me look."
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_1", "call_2"]
    assert assistant["tool_calls"][1]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Rome"}',
    }
    assert out1 == {"role": "tool", "tool_call_id": "call_1", "content": "18C"}
    assert out2["content"] == "21C"
    assert chat["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in WEATHER.items() if k != "type"},
        }
    ]
    assert chat["tool_choice"] == {"type": "function", "function": {"name": "x"}}


def test_structured_output_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"type": "json_schema", "name": "thing", "schema": schema, "strict": True}
    chat = chat_of(input="x", text={"format": fmt})
    assert chat["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "thing", "schema": schema, "strict": True},
    }
    assert "response_format" not in chat_of(input="x", text={"format": {"type": "text"}})


def test_what_chat_cannot_carry_is_set_aside_for_a_native_deployment() -> None:
    translation = to_chat(
        request(
            input=[
                {"type": "computer_call_output", "call_id": "c"},
                {"role": "user", "content": "q"},
            ],
            tools=[{"type": "web_search"}, WEATHER],
            tool_choice={"type": "file_search"},
            store=True,
            include=["reasoning.encrypted_content"],
            top_k=5,
        )
    )
    assert translation.native_only == [
        "input item 'computer_call_output'",
        "tool 'web_search'",
        "tool_choice 'file_search'",
    ]
    chat = translation.chat.model_dump(exclude_unset=True)
    assert len(chat["tools"]) == 1 and "tool_choice" not in chat
    assert "store" not in chat and "include" not in chat
    assert chat["top_k"] == 5  # unknown fields pass through as on chat completions


def test_a_wrong_item_is_a_400_naming_its_index() -> None:
    with pytest.raises(GatewayError) as wrong:
        to_chat(
            request(input=[{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}])
        )
    assert wrong.value.status == 400 and wrong.value.param == "input.1"
    with pytest.raises(GatewayError):
        to_chat(
            request(input=[{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}])
        )


def test_earlier_items_come_first() -> None:
    earlier = [{"type": "message", "role": "user", "content": "first"}]
    translation = to_chat(request(input="second"), earlier)
    assert [m["content"] for m in translation.chat.model_dump()["messages"]] == ["first", "second"]
    assert len(translation.items) == 2


def chat_answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    usage = {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13,
             "prompt_tokens_details": {"cached_tokens": 2}}  # fmt: skip
    return {"choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}


def test_a_chat_answer_becomes_a_response_with_output_items_and_usage() -> None:
    shell = ResponseShell(request(input="x", tools=[WEATHER]), model="small-a")
    call = {"id": "call_9", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}  # fmt: skip
    message = {"role": "assistant", "content": "Checking.", "tool_calls": [call]}
    response = response_from_chat(shell, chat_answer(message, "tool_calls"), 9, 4)
    assert response["object"] == "response" and response["status"] == "completed"
    assert response["id"].startswith("resp_") and response["model"] == "small-a"
    text, fc = response["output"]
    assert text["content"][0] == {
        "type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []
    }  # fmt: skip
    assert (fc["type"], fc["call_id"], fc["name"]) == ("function_call", "call_9", "get_weather")
    assert response["usage"]["input_tokens"] == 9 and response["usage"]["output_tokens"] == 4
    assert response["usage"]["input_tokens_details"]["cached_tokens"] == 2
    assert response["tools"] == [WEATHER]


def test_a_chat_answer_cut_at_its_length_is_incomplete() -> None:
    shell = ResponseShell(request(input="x", max_output_tokens=4))
    response = response_from_chat(shell, chat_answer({"content": "abc"}, "length"), 9, 4)
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}


def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def test_a_chat_stream_becomes_the_typed_events_in_openais_order() -> None:
    events = ResponseEvents(ResponseShell(request(input="x"), model="small-a"))
    out = events.chunk(chunk({"role": "assistant", "content": "Hel"}))
    out += events.chunk(chunk({"content": "lo"}))
    opening = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f"}}
    out += events.chunk(chunk({"tool_calls": [opening]}))
    out += events.chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    out += events.chunk(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    out += events.chunk(chunk({}, "tool_calls"))
    out += events.chunk({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}})
    out += events.completed(3, 5)
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    assert out[6]["text"] == "Hello" and out[12]["arguments"] == '{"a":1}'
    final = out[-1]["response"]
    assert final["status"] == "completed" and final["usage"]["total_tokens"] == 8
    assert [o["type"] for o in final["output"]] == ["message", "function_call"]
    assert json.loads(final["output"][1]["arguments"]) == {"a": 1}
    assert out[2]["item"]["id"] == final["output"][0]["id"] == out[4]["item_id"]


def test_a_broken_stream_ends_with_error_and_response_failed() -> None:
    events = ResponseEvents(ResponseShell(request(input="x")))
    out = events.chunk(chunk({"content": "partial"}))
    out += events.failed("small-a failed mid-stream", "upstream_server_error")
    assert [e["type"] for e in out][-2:] == ["error", "response.failed"]
    assert out[-1]["response"]["status"] == "failed"
    assert out[-1]["response"]["error"]["message"] == "small-a failed mid-stream"


def test_an_empty_stream_still_completes() -> None:
    events = ResponseEvents(ResponseShell(request(input="x")))
    out = events.completed(1, 0)
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]
