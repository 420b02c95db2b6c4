"""What a request needs from a deployment beyond text, and which deployments have it.

A chat request's content says what it needs: image parts need `capabilities.vision`,
`input_audio` parts `capabilities.audio`. A Responses request with a built-in tool (`web_search`,
`file_search` ...) needs a deployment that serves the Responses API itself
(`capabilities.responses`). The planner tells the policy the modalities (the `vision` rule picks a
tier that takes them) and keeps, among the candidates, only the deployments that have every need:
a request is never sent where it can only fail, and when no deployment it may use can take it, the
client gets a 400 saying what is missing instead of the upstream's error.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from gateway.protocol.errors import GatewayError
from gateway.protocol.openai import ChatCompletionRequest, RoutedRequest
from gateway.upstream.base import Target
from policies import Modality

Need = Literal["vision", "audio", "responses"]

_PART_NEEDS: dict[str, Need] = {"image_url": "vision", "input_audio": "audio"}
_MODALITY: dict[Need, Modality] = {"vision": "image", "audio": "audio"}
_WHAT: dict[Need, str] = {
    "vision": "image input (capabilities.vision)",
    "audio": "audio input (capabilities.audio)",
    "responses": "the Responses API natively, for its built-in tools (capabilities.responses)",
}


def content_needs(request: RoutedRequest) -> frozenset[Need]:
    """The needs a chat request's parts show: images, audio. A text completion needs none."""
    if not isinstance(request, ChatCompletionRequest):
        return frozenset()
    found: set[Need] = set()
    for message in request.messages:
        if isinstance(message.content, list):
            for part in message.content:
                need = _PART_NEEDS.get(part.type)
                if need is not None:
                    found.add(need)
    return frozenset(found)


def modalities(needs: Iterable[Need]) -> frozenset[Modality]:
    """The modalities among `needs`, as the routing policy names them."""
    return frozenset(_MODALITY[n] for n in needs if n in _MODALITY)


def has(target: Target, needs: Iterable[Need]) -> bool:
    """Whether `target`'s deployment has every one of `needs`."""
    caps = target.deployment.capabilities
    return all(getattr(caps, need) for need in needs)


def capable(candidates: list[Target], needs: frozenset[Need]) -> list[Target]:
    """The candidates that have every need, in order; 400 naming what is missing when none has."""
    if not needs:
        return candidates
    kept = [t for t in candidates if has(t, needs)]
    if kept or not candidates:
        return kept
    missing = sorted({n for t in candidates for n in needs if not has(t, (n,))})
    names = ", ".join(t.name for t in candidates)
    raise GatewayError(
        400,
        f"this request needs {' and '.join(_WHAT[n] for n in missing)}, and no deployment it "
        f"may use has it ({names}); send it to a deployment that does, or mark one in the config",
        code="unsupported_input",
        param="model",
    )
