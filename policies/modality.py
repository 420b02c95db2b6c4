"""The `vision` rule: a request with images (or audio) goes to a tier that can take them.

The router scores a request's text; whether a tier may serve it at all is a fact about its input.
The gateway extracts the modalities a request carries (`RouteRequest.modalities`: `image` for image
parts, `audio` for `input_audio` parts) and which tiers have a deployment that takes each
(`TierFacts.vision`, `TierFacts.audio`, from the deployments' `capabilities`). When the tiers that
take every modality present are fewer than all, the rule rules the others out (`Narrow`): the score
then chooses between the cheapest and the most capable of them; when every tier can, nothing
changes; when none can, the rule stays silent and the gateway answers 400 (it leaves out of the
candidates every deployment that cannot take the request).

Registered under `vision` with the same hook as any user's rule, and listed in the default rules.
"""

from __future__ import annotations

from policies.rules import Narrow, Verdict, register_rule
from policies.types import Modality, RouteRequest, TierFacts, TierName


def accepts(facts: TierFacts, tier: TierName, modality: Modality) -> bool:
    """Whether some deployment of `tier` takes `modality`."""
    table = facts.vision if modality == "image" else facts.audio
    return table.get(tier, False)


@register_rule("vision")
def _modalities_need_support(request: RouteRequest, facts: TierFacts) -> Verdict | None:
    if not request.modalities:
        return None
    able = tuple(t for t in facts.order if all(accepts(facts, t, m) for m in request.modalities))
    if not able or len(able) == len(facts.order):
        return None
    return Narrow(able, "vision")
