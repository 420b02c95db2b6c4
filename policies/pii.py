"""Finding personal data in text, and replacing it with placeholders.

Pure functions over strings the gateway hands over (the messages of one request): no I/O, no
logging of what was found. The `pii` rule (`policies.rules`) only sees the kinds found; the gateway
uses `Detector.kinds` to fill `RouteRequest.pii` and a `Redactor` to rewrite a request before a
non-local deployment sees it.

Kinds, each tuned to miss rather than to flag ordinary text (tests/policies/test_pii.py holds the
near-misses: order numbers, dates, version strings, ISBNs, UUIDs, file names, ...):

- `email`: an address with a dotted domain and an alphabetic top-level domain (not `icon@2x.png`).
- `phone`: international (`+` and 8-15 digits), North American (`(555) 123-4567`, `555-123-4567`;
  not `123-456-7890`, whose area code cannot exist)
  and national numbers with a trunk 0 and separators (`020 7946 0958`, 10-11 digits).
- `card`: payment card numbers, 13-19 digits with a known issuer prefix and a valid Luhn digit.
- `iban`: the country's length and a valid mod-97 check.
- National identifiers: `us_ssn` (US Social Security number, written `123-45-6789` or after the
  word SSN, impossible areas and groups excluded), `uk_nino` (UK National Insurance number, with the
  prefixes HMRC never issues excluded), `es_dni` (Spanish DNI and NIE, with their check letter),
  `in_aadhaar` (Indian Aadhaar, grouped 4-4-4, with its Verhoeff digit).
- `ip_address`: IPv4 (not after `version`/`v`) and IPv6 (validated, at least three groups).
- `secret`: OpenAI/Anthropic `sk-...`, AWS `AKIA...`/`ASIA...`, GitHub `ghp_...`/`github_pat_...`,
  Slack `xox...`, Google `AIza...`, Stripe `sk_live_...`, JSON Web Tokens, PEM private keys.
- Operator patterns from the config (`pii_patterns: {employee_id: "EMP-\\d{6}"}`), found first.

Where two matches overlap, the kind found first in the order above (operator patterns before all)
keeps its span.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

BUILTIN_KINDS = (
    "secret",
    "email",
    "iban",
    "card",
    "us_ssn",
    "uk_nino",
    "es_dni",
    "in_aadhaar",
    "ip_address",
    "phone",
)
KIND_NAME = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

_SECRETS = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)"
    r"|(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}"
    r"|(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"
    r"|(?<!\w)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})"
    r"|(?<!\w)xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|(?<![\w-])AIza[0-9A-Za-z_-]{35}"
    r"|(?<!\w)[sr]k_live_[0-9A-Za-z]{16,}"
    r"|(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
)
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])"
)
_FILE_SUFFIXES = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "pdf", "css", "js"}
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_CARD = re.compile(r"(?<![\d.-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)")
_SSN = re.compile(
    r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])"
    r"|(?i:\bssn|social security(?: number)?)\W{0,3}(\d{3})(\d{2})(\d{4})\b"
)
_NINO = re.compile(
    r"(?<![A-Za-z0-9])(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
    r" ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])"
)
_DNI = re.compile(r"(?<![A-Za-z0-9])([XYZ]?)(\d{7,8})-?([A-Z])(?![A-Za-z0-9])")
_AADHAAR = re.compile(r"(?<![\d-])[2-9]\d{3}([ -])\d{4}\1\d{4}(?![\d-])")
_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d)")
_VERSION_BEFORE = re.compile(r"(?i)(?:\bv|\bversion|\bver\.?|\brelease|\bbuild|\brev)\s*$")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){1,6}(?![\w]|[.-]\d)"
    r"|(?<![\w.+-])(?:\([2-9]\d{2}\) ?|[2-9]\d{2}([ .-]))\d{3}(?(1)\1|[ .-])\d{4}(?![\w]|[.-]\d)"
    r"|(?<![\w.+-])0\d{1,4}(?:[ -]\d{2,8}){1,4}(?![\w]|[.-]\d)"
)
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


@dataclass(frozen=True)
class Finding:
    """One match: its kind and where it is in the text (never its value, outside the text)."""

    kind: str
    start: int
    end: int


Span = tuple[int, int]
Finder = Callable[[str], Iterable[Span]]


def _spans(pattern: re.Pattern[str], check: Callable[[re.Match[str]], Span | None]) -> Finder:
    def find(text: str) -> Iterable[Span]:
        for match in pattern.finditer(text):
            span = check(match)
            if span is not None:
                yield span

    return find


def _whole(match: re.Match[str]) -> Span:
    return match.span()


def _secret(match: re.Match[str]) -> Span | None:
    """`sk-` keys are random: mixed case and digits (not `sk-learn-tutorial-for-beginners`)."""
    text = match.group()
    if text.startswith("sk-") and not all(
        re.search(c, text[3:]) for c in (r"\d", "[A-Z]", "[a-z]")
    ):
        return None
    return match.span()


def _email(match: re.Match[str]) -> Span | None:
    return None if match.group(1).lower() in _FILE_SUFFIXES else match.span()


def _iban(match: re.Match[str]) -> Span | None:
    text = match.group()
    length = _IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    chars, end = [], 0
    for index, char in enumerate(text):
        if char != " ":
            chars.append(char)
            end = index + 1
        if len(chars) == length:
            break
    if len(chars) < length or (end < len(text) and text[end] != " " and text[end - 1] != " "):
        return None
    code = "".join(chars)
    rotated = code[4:] + code[:4]
    number = int("".join(str(int(c, 36)) for c in rotated))
    return (match.start(), match.start() + end) if number % 97 == 1 else None


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _card_issuer(digits: str) -> bool:
    """A known issuer's prefix and length: Visa, Mastercard, Amex, Discover, JCB, Diners,
    UnionPay."""
    n, p2, p4 = len(digits), int(digits[:2]), int(digits[:4])
    return (
        (digits[0] == "4" and n in (13, 16, 19))
        or ((51 <= p2 <= 55 or 2221 <= p4 <= 2720) and n == 16)
        or (p2 in (34, 37) and n == 15)
        or ((p4 == 6011 or p2 == 65 or 644 <= int(digits[:3]) <= 649) and 16 <= n <= 19)
        or (3528 <= p4 <= 3589 and 16 <= n <= 19)
        or ((300 <= int(digits[:3]) <= 305 or p2 in (36, 38, 39)) and 14 <= n <= 19)
        or (p2 == 62 and 16 <= n <= 19)
    )


def _card(match: re.Match[str]) -> Span | None:
    text = match.group()
    digits = re.sub(r"[ -]", "", text)
    separators = set(re.findall(r"[ -]", text))
    if len(separators) > 1 or not 13 <= len(digits) <= 19:
        return None
    return match.span() if _card_issuer(digits) and luhn_valid(digits) else None


def _ssn(match: re.Match[str]) -> Span | None:
    area, group, serial = (
        match.group(1, 3, 4) if match.group(1) is not None else match.group(5, 6, 7)
    )
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return None
    return match.span() if match.group(1) is not None else (match.start(5), match.end(7))


def _dni(match: re.Match[str]) -> Span | None:
    prefix, digits, letter = match.groups()
    if len(digits) != (7 if prefix else 8):
        return None
    number = int(str("XYZ".index(prefix)) + digits) if prefix else int(digits)
    return match.span() if _DNI_LETTERS[number % 23] == letter else None


_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff_valid(digits: str) -> bool:
    """Verhoeff's check (dihedral group D5), as Aadhaar numbers carry it."""
    check = 0
    for index, char in enumerate(reversed(digits)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][int(char)]]
    return check == 0


def _aadhaar(match: re.Match[str]) -> Span | None:
    return match.span() if verhoeff_valid(re.sub(r"[ -]", "", match.group())) else None


def _ipv4(match: re.Match[str]) -> Span | None:
    before = match.string[max(0, match.start() - 12) : match.start()]
    return None if _VERSION_BEFORE.search(before) else match.span()


def _ipv6(match: re.Match[str]) -> Span | None:
    text = match.group()
    groups = [g for g in re.split(r":+", text) if g]
    if len(groups) < 2 or (len(groups) < 3 and not any(len(g) >= 3 for g in groups)):
        return None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return match.span()


def _phone(match: re.Match[str]) -> Span | None:
    digits = sum(c.isdigit() for c in match.group())
    text = match.group()
    if text.startswith("+"):
        return match.span() if 8 <= digits <= 15 else None
    if text.startswith("0"):
        return match.span() if 10 <= digits <= 11 else None
    return match.span()


_BUILTIN: dict[str, Finder] = {
    "secret": _spans(_SECRETS, _secret),
    "email": _spans(_EMAIL, _email),
    "iban": _spans(_IBAN, _iban),
    "card": _spans(_CARD, _card),
    "us_ssn": _spans(_SSN, _ssn),
    "uk_nino": _spans(_NINO, _whole),
    "es_dni": _spans(_DNI, _dni),
    "in_aadhaar": _spans(_AADHAAR, _aadhaar),
    "ip_address": lambda text: [*_spans(_IPV6, _ipv6)(text), *_spans(_IPV4, _ipv4)(text)],
    "phone": _spans(_PHONE, _phone),
}


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
        operator = {k: _spans(p, _whole) for k, p in check_patterns(patterns or {}).items()}
        self._finders: dict[str, Finder] = {**operator, **_BUILTIN}

    @property
    def kinds_known(self) -> tuple[str, ...]:
        return tuple(self._finders)

    def find(self, text: str) -> list[Finding]:
        """Every finding in `text`, non-overlapping, in text order."""
        taken: list[Finding] = []
        for kind, finder in self._finders.items():
            for start, end in finder(text):
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
