"""Quality metrics: escalations, shadow verdicts and feedback scores at `/metrics`.

`GatewayMetrics` holds one `QualityMetrics` on its registry and hands it each finished request's
record, from which it counts the cheaper answers judged in escalation mode and those
escalated, by reason and tier pair, with the tokens and dollars spent on discarded answers. The
shadow judge (`gateway.chat.shadow`) and the feedback route (`gateway.api.feedback`) report to it
directly, since their work happens after the request's record is written. Dashboards divide:
escalation rate = escalations / judged answers; judged agreement = the sum of shadow verdicts
(1: the cheaper answer was as good) / shadow verdicts; mean feedback = score sum / feedback count.

Labels are capped as in `gateway.telemetry.prometheus` (past `max_label_values` distinct values,
`other`), so clients cannot grow the number of series.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.telemetry.prometheus import OVERHEAD_BUCKETS
from gateway.telemetry.prometheus import _LabelGuard as LabelGuard
from gateway.telemetry.record import RequestRecord


class QualityMetrics:
    def __init__(self, registry: CollectorRegistry, *, max_label_values: int = 64) -> None:
        self._label = LabelGuard(max_label_values)
        r = registry
        self.judged = Counter(
            "tiergate_escalation_judged",
            "Cheaper answers judged in escalation mode (checks, verifier), by policy, category "
            "and the tier that answered.",
            ("policy", "category", "tier"),
            registry=r,
        )
        self.escalations = Counter(
            "tiergate_escalations",
            "Cheaper answers discarded for the escalation tier's, by reason (the failed check, "
            "or verifier) and tier pair.",
            ("policy", "category", "reason", "from_tier", "to_tier"),
            registry=r,
        )
        self.discarded_tokens = Counter(
            "tiergate_escalation_discarded_tokens",
            "Tokens of discarded cheaper answers (prompt and completion), by tier.",
            ("tier", "kind"),
            registry=r,
        )
        self.discarded_cost = Counter(
            "tiergate_escalation_discarded_cost_usd",
            "What discarded cheaper answers cost (included in tiergate_cost_usd), by tier.",
            ("tier",),
            registry=r,
        )
        self.check_time = Histogram(
            "tiergate_escalation_check_seconds",
            "Time to judge a cheaper answer: the checks, and the verifier when one runs.",
            (),
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.escalation_failed = Counter(
            "tiergate_escalation_failed",
            "Escalations whose tier did not answer, so the cheaper answer was served after all.",
            ("to_tier",),
            registry=r,
        )
        self.shadow_verdicts = Counter(
            "tiergate_shadow_verdicts",
            "Shadow-judged requests, by policy, category and the cheaper tier that answered.",
            ("policy", "category", "tier"),
            registry=r,
        )
        self.shadow_agreement = Counter(
            "tiergate_shadow_agreement",
            "Sum of shadow verdicts (1: the cheaper answer judged as good as the most capable "
            "tier's, 0.5: split between the two orders, 0: worse); divide by "
            "tiergate_shadow_verdicts for the judged agreement rate.",
            ("policy", "category", "tier"),
            registry=r,
        )
        self.shadow_skipped = Counter(
            "tiergate_shadow_skipped",
            "Sampled requests not shadow-judged, by reason (budget, error, store).",
            ("policy", "reason"),
            registry=r,
        )
        self.shadow_cost = Counter(
            "tiergate_shadow_cost_usd",
            "What shadow judging spent (the most capable tier's answer and the judge's calls).",
            ("policy",),
            registry=r,
        )
        self.feedback = Counter(
            "tiergate_feedback",
            "Feedback scores received, by policy, category and the tier that answered.",
            ("policy", "category", "tier"),
            registry=r,
        )
        self.feedback_score = Counter(
            "tiergate_feedback_score",
            "Sum of feedback scores in [0, 1]; divide by tiergate_feedback for the mean.",
            ("policy", "category", "tier"),
            registry=r,
        )

    # --- from each request's record -------------------------------------------------------------

    def record(self, rec: RequestRecord) -> None:
        """Count a finished request's escalation facts (nothing for other requests)."""
        if rec.escalation_tier is None:
            return
        lab = self._label
        policy, category = lab("policy", rec.policy), lab("category", rec.category)
        cheaper = rec.discarded_tier if rec.escalated is not None else rec.served_tier
        self.judged.labels(policy, category, lab("tier", cheaper or rec.intended_tier)).inc()
        if rec.check_s is not None:
            self.check_time.observe(rec.check_s)
        if rec.escalation_error is not None:
            self.escalation_failed.labels(lab("tier", rec.escalation_tier)).inc()
        if rec.escalated is None or rec.discarded_tier is None:
            return
        tier = lab("tier", rec.discarded_tier)
        self.escalations.labels(
            policy, category, lab("reason", rec.escalated), tier, lab("tier", rec.served_tier)
        ).inc()
        self.discarded_tokens.labels(tier, "prompt").inc(rec.discarded_prompt_tokens)
        self.discarded_tokens.labels(tier, "completion").inc(rec.discarded_completion_tokens)
        self.discarded_cost.labels(tier).inc(max(rec.discarded_cost_usd, 0.0))

    # --- after the request ---------------------------------------------------------------------

    def shadow_judged(
        self, policy: str | None, category: str | None, tier: str | None, verdict: float
    ) -> None:
        labels = self._labels(policy, category, tier)
        self.shadow_verdicts.labels(*labels).inc()
        self.shadow_agreement.labels(*labels).inc(min(max(verdict, 0.0), 1.0))

    def shadow_not_judged(self, policy: str | None, reason: str) -> None:
        self.shadow_skipped.labels(self._label("policy", policy), reason).inc()

    def shadow_spent(self, policy: str | None, usd: float) -> None:
        self.shadow_cost.labels(self._label("policy", policy)).inc(max(usd, 0.0))

    def feedback_given(
        self, policy: str | None, category: str | None, tier: str | None, score: float
    ) -> None:
        labels = self._labels(policy, category, tier)
        self.feedback.labels(*labels).inc()
        self.feedback_score.labels(*labels).inc(min(max(score, 0.0), 1.0))

    def _labels(
        self, policy: str | None, category: str | None, tier: str | None
    ) -> tuple[str, str, str]:
        lab = self._label
        return lab("policy", policy), lab("category", category), lab("tier", tier)
