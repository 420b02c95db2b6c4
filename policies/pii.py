"""Finding personal data in text, and replacing it with placeholders.

Pure functions over strings the gateway hands over (the messages of one request): no I/O, no
logging of what was found. The `pii` rule (`policies.rules`) only sees the kinds found; the gateway
uses `Detector.kinds` to fill `RouteRequest.pii` and a `Redactor` to rewrite a request before a
non-local deployment sees it.

Kinds, each tuned to miss rather than to flag ordinary text (tests/policies/test_pii.py holds the
near-misses: order numbers, dates, version strings, ISBNs, UUIDs, file names, ...):

- `email`: an address with a dotted domain and an alphabetic top-level domain (not `icon@2x.png`).
- `phone`: international (`+` and 8-15 digits), North American (`(555) 123-4567`, `555-123-4567`;
  not `123-456-7890`, whose area code cannot exist) and national numbers with a trunk 0 and
  separators (`020 7946 0958`, 10-11 digits).
- `card`: payment card numbers, 13-19 digits with a known issuer prefix and a valid Luhn digit.
- `iban`: the country's length and a valid mod-97 check.
- National identifiers: `us_ssn` (US Social Security number, written `123-45-6789` or after the
  word SSN, impossible areas and groups excluded), `uk_nino` (UK National Insurance number, with the
  prefixes HMRC never issues excluded), `es_dni` (Spanish DNI and NIE, with their check letter),
  `in_aadhaar` (Indian Aadhaar, grouped 4-4-4, with its Verhoeff digit).
- `ip_address`: IPv4 (not after `version`/`v`, not loopback or 0.0.0.0) and IPv6 (validated, at
  least three groups).
- `secret`: OpenAI/Anthropic `sk-...`, AWS `AKIA...`/`ASIA...`, GitHub `ghp_...`/`github_pat_...`,
  Slack `xox...`, Google `AIza...`, Stripe `sk_live_...`, JSON Web Tokens, PEM private keys.
- Operator patterns from the config (`pii_patterns: {employee_id: "EMP-\\d{6}"}`), found first.

Where two matches overlap, the kind looked for first keeps its span: operator patterns, then
`BUILTIN_KINDS` in order (secrets, e-mail, IBAN, card, the national identifiers, IP, phone). How
each kind is recognised, and where it is looked for, is `policies.pii_kinds`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from policies.pii_kinds import (
    BUILTIN,
    BUILTIN_KINDS,
    KIND_NAME,
    NUMERIC_KINDS,
    Finder,
    luhn_valid,
    numeric_windows,
    spans,
    verhoeff_valid,
    whole,
)

__all__ = [
    "BUILTIN_KINDS",
    "Detector",
    "Finding",
    "Redactor",
    "check_patterns",
    "luhn_valid",
    "verhoeff_valid",
]


@dataclass(frozen=True)
class Finding:
    """One match: its kind and where it is in the text (never its value, outside the text)."""

    kind: str
    start: int
    end: int


def check_patterns(patterns: Mapping[str, str]) -> dict[str, re.Pattern[str]]:
    """Operator patterns compiled; ValueError naming the one that is not accepted and why."""
    compiled: dict[str, re.Pattern[str]] = {}
    for kind, pattern in patterns.items():
        if not KIND_NAME.match(kind) or kind in BUILTIN_KINDS:
            raise ValueError(
                f"pii pattern name {kind!r}: use 1-32 lowercase letters, digits or '_' (starting "
                f"with a letter), not a built-in kind ({', '.join(BUILTIN_KINDS)})"
            )
        try:
            compiled[kind] = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pii pattern {kind!r}: not a valid regular expression ({exc})"
            ) from None
        if compiled[kind].search(""):
            raise ValueError(f"pii pattern {kind!r} matches the empty string")
    return compiled


class Detector:
    """Finds personal data: the built-in kinds plus the operator's `patterns` (kind -> regex)."""

    def __init__(self, patterns: Mapping[str, str] | None = None) -> None:
        operator = {k: spans(p, whole) for k, p in check_patterns(patterns or {}).items()}
        self._finders: dict[str, Finder] = {**operator, **BUILTIN}

    @property
    def kinds_known(self) -> tuple[str, ...]:
        return tuple(self._finders)

    def find(self, text: str) -> list[Finding]:
        """Every finding in `text`, non-overlapping, in text order."""
        taken: list[Finding] = []
        everywhere = [(0, len(text))]
        numeric = numeric_windows(text)
        for kind, finder in self._finders.items():
            for pos, endpos in numeric if kind in NUMERIC_KINDS else everywhere:
                for start, end in finder(text, pos, endpos):
                    if end > start and all(end <= f.start or start >= f.end for f in taken):
                        taken.append(Finding(kind, start, end))
        return sorted(taken, key=lambda f: f.start)

    def kinds(self, texts: Iterable[str]) -> tuple[str, ...]:
        """The kinds found in any of `texts`, sorted (what `RouteRequest.pii` holds)."""
        return tuple(sorted({f.kind for text in texts if text for f in self.find(text)}))


class Redactor:
    """Replaces findings with placeholders (`[EMAIL_1]`, `[PHONE_2]` ...) across one request's
    texts: the same value gets the same placeholder everywhere, so the model can still refer to
    it. `counts` says how many values of each kind were replaced."""

    def __init__(self, detector: Detector) -> None:
        self._detector = detector
        self._names: dict[tuple[str, str], str] = {}
        self.counts: dict[str, int] = {}

    def redact(self, text: str) -> str:
        findings = self._detector.find(text)
        if not findings:
            return text
        parts, last = [], 0
        for f in findings:
            parts += [text[last : f.start], self._placeholder(f.kind, text[f.start : f.end])]
            last = f.end
        parts.append(text[last:])
        return "".join(parts)

    def _placeholder(self, kind: str, value: str) -> str:
        key = (kind, value)
        if key not in self._names:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self._names[key] = f"[{kind.upper()}_{self.counts[kind]}]"
        return self._names[key]
