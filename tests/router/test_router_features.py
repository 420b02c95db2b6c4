"""Conversations and the feature registry: parsing OpenAI messages, one encoder call per batch."""

from __future__ import annotations

import numpy as np
import pytest

from router.conversation import ConversationError, last_user_text, to_conversation
from router.errors import RouterError
from router.features import SHAPE_COLUMNS, feature_names, featurize, get_feature, register_feature


def test_messages_forms() -> None:
    conv = to_conversation(
        [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "part one"},
                    {"type": "image_url", "image_url": {"url": "x"}},
                    {"type": "text", "text": "part two"},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": []},
            {"role": "tool", "content": "42"},
            {"role": "user", "content": "and now?"},
        ]
    )
    assert conv[1] == ("user", "part one\npart two")
    assert conv[2] == ("assistant", "")
    assert last_user_text(conv) == "and now?"
    assert to_conversation("plain") == (("user", "plain"),)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (42, "expected a prompt string or a list of messages"),
        ([{"role": "wizard", "content": "x"}], "role 'wizard'"),
        (["not a dict"], "must be an object"),
        ([{"role": "user", "content": 5}], "content must be a string"),
        ([{"role": "user", "content": [{"type": "text", "text": 1}]}], "needs a string 'text'"),
    ],
)
def test_bad_items(item: object, message: str) -> None:
    with pytest.raises(ConversationError, match=message):
        to_conversation(item)  # type: ignore[arg-type]


def test_builtins_are_registered_like_plugins() -> None:
    assert {"last_user", "tail_1200", "system_and_last_user", "shape"} <= set(feature_names())
    assert get_feature("shape").columns == SHAPE_COLUMNS
    with pytest.raises(RouterError, match="already registered"):
        register_feature("shape", kind="values", columns=["x"])(lambda c: [0.0])
    with pytest.raises(RouterError, match="unknown feature 'nope'; registered features:"):
        get_feature("nope")


def test_featurize_calls_the_encoder_once_per_batch(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    name = "test_turn_count"
    if name not in feature_names():
        register_feature(name, kind="values", columns=["turns"])(lambda c: [float(len(c))])
    convs = [to_conversation("short"), to_conversation([{"role": "user", "content": "a b"}] * 3)]
    x = featurize(convs, ["last_user", "tail_1200", "shape", name], fake_encoder.encode)
    assert len(fake_encoder.calls) == 1 and len(fake_encoder.calls[0]) == 4
    assert x.shape == (2, 16 + 16 + len(SHAPE_COLUMNS) + 1)
    assert x[:, -1].tolist() == [1.0, 3.0]
    assert x.dtype == np.float64
