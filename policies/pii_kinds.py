"""What each kind of personal data looks like: its pattern, its checks, where to look for it.

Each kind is a `Finder`: the spans of that kind in `text[pos:endpos]`. Patterns are tuned to miss
rather than to flag ordinary text: checksums where the kind has one (Luhn, mod 97, Verhoeff, the DNI
letter), impossible values excluded (SSN areas, NINO prefixes), formats a person writes rather than
any run of digits. Cost matters, since every message of a request under a `pii` policy is scanned:
kinds made of digits are looked for only around runs of four or more digits (`numeric_windows`),
secrets only where their literal prefix occurs, e-mail addresses only around an `@`.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Callable, Iterable, Iterator

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

_SECRETS = [  # (the literal each match starts with, its pattern from there)
    ("-----BEGIN", r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE"
                   r" KEY-----|\Z)"),
    ("sk-", r"(?<![\w-])sk-(?:proj-|svcacct-|admin-|ant-[a-z0-9]+-)?[A-Za-z0-9_-]{32,}"),
    ("AKIA", r"(?<![A-Z0-9])AKIA[A-Z0-9]{16}(?![A-Z0-9])"),
    ("ASIA", r"(?<![A-Z0-9])ASIA[A-Z0-9]{16}(?![A-Z0-9])"),
    *((f"gh{c}_", rf"(?<!\w)gh{c}_[A-Za-z0-9]{{36,255}}") for c in "pousr"),
    ("github_pat_", r"(?<!\w)github_pat_[A-Za-z0-9_]{22,255}"),
    ("xox", r"(?<!\w)xox[abposr]-[A-Za-z0-9-]{10,}"),
    ("AIza", r"(?<![\w-])AIza[0-9A-Za-z_-]{35}"),
    ("sk_live_", r"(?<!\w)sk_live_[0-9A-Za-z]{16,}"),
    ("rk_live_", r"(?<!\w)rk_live_[0-9A-Za-z]{16,}"),
    ("eyJ", r"(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]  # fmt: skip
_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![\w-])"
)
_FILE_SUFFIXES = {"png", "jpg", "jpeg", "gif", "svg", "webp", "ico", "bmp", "pdf", "css", "js"}
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")
_CARD = re.compile(r"(?<![\d.+-])\d(?:[ -]?\d){12,18}(?![\d-]|\.\d)")
_SSN = re.compile(r"(?<![\d-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\d-])")
_SSN_NAMED = re.compile(r"(?i:\bssn|social security(?: number)?)\W{0,3}(\d{3})(\d{2})(\d{4})\b")
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


Span = tuple[int, int]
Finder = Callable[[str, int, int], Iterable[Span]]
"""Spans of one kind in `text[pos:endpos]` (lookbehinds still see what comes before `pos`)."""


def spans(pattern: re.Pattern[str], check: Callable[[re.Match[str]], Span | None]) -> Finder:
    def find(text: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterable[Span]:
        for match in pattern.finditer(text, pos, endpos):
            span = check(match)
            if span is not None:
                yield span

    return find


def whole(match: re.Match[str]) -> Span:
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


def _ssn_possible(area: str, group: str, serial: str) -> bool:
    return not (area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000")


def _ssn(match: re.Match[str]) -> Span | None:
    return match.span() if _ssn_possible(*match.group(1, 3, 4)) else None


def _ssn_named(match: re.Match[str]) -> Span | None:
    """Nine bare digits only after the words SSN or social security (number)."""
    return (match.start(1), match.end(3)) if _ssn_possible(*match.group(1, 2, 3)) else None


def _find_ssn(text: str, pos: int, endpos: int) -> Iterable[Span]:
    yield from spans(_SSN, _ssn)(text, pos, endpos)
    lowered = text[pos:endpos].lower()
    if "ssn" in lowered or "social security" in lowered:
        yield from spans(_SSN_NAMED, _ssn_named)(text, pos, endpos)


_SECRET_FINDERS = [(literal, re.compile(pattern)) for literal, pattern in _SECRETS]


def _find_secrets(text: str, pos: int, endpos: int) -> Iterable[Span]:
    """Each token format is tried only where its literal prefix occurs."""
    for literal, pattern in _SECRET_FINDERS:
        at = text.find(literal, pos, endpos)
        while at >= 0:
            match = pattern.match(text, at, endpos)
            span = _secret(match) if match is not None else None
            if span is not None:
                yield span
            at = text.find(literal, span[1] if span else at + 1, endpos)


def _find_emails(text: str, pos: int, endpos: int) -> Iterable[Span]:
    """Addresses around each `@` (at most 64 characters before it and 256 after)."""
    for start, end in _merged((max(pos, at - 64), at + 256) for at in _all(text, "@", pos, endpos)):
        yield from spans(_EMAIL, _email)(text, start, min(end, endpos))


def _all(text: str, literal: str, pos: int, endpos: int) -> Iterator[int]:
    at = text.find(literal, pos, endpos)
    while at >= 0:
        yield at
        at = text.find(literal, at + 1, endpos)


def _merged(windows: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in windows:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _find_ips(text: str, pos: int, endpos: int) -> Iterable[Span]:
    yield from spans(_IPV4, _ipv4)(text, pos, endpos)
    if text.count(":", pos, endpos) >= 2:
        yield from spans(_IPV6, _ipv6)(text, pos, endpos)


_NUMBERS = re.compile(r"\d[\d\s().:/+-]*")
_MARGIN = 48
"""Characters of context around a run of digits: an IBAN's letters, `version` before an address."""


def numeric_windows(text: str) -> list[tuple[int, int]]:
    """Where the kinds made of digits can be: runs of at least four digits (with separators),
    widened by `_MARGIN` and merged. Prose with few numbers is scanned in a few short windows."""
    return _merged(
        (max(0, m.start() - _MARGIN), m.end() + _MARGIN)
        for m in _NUMBERS.finditer(text)
        if sum(c.isdigit() for c in m.group()) >= 4
    )


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
    """Not a version number (`version 1.2.3.4`), nor loopback or `0.0.0.0` (no one's address)."""
    before = match.string[max(0, match.start() - 12) : match.start()]
    text = match.group()
    if _VERSION_BEFORE.search(before) or text.startswith("127.") or text == "0.0.0.0":
        return None
    return match.span()


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


NUMERIC_KINDS = frozenset(
    ("iban", "card", "us_ssn", "uk_nino", "es_dni", "in_aadhaar", "ip_address", "phone")
)
"""Kinds that hold a run of at least four digits: looked for only around one."""
BUILTIN: dict[str, Finder] = {
    "secret": _find_secrets,
    "email": _find_emails,
    "iban": spans(_IBAN, _iban),
    "card": spans(_CARD, _card),
    "us_ssn": _find_ssn,
    "uk_nino": spans(_NINO, whole),
    "es_dni": spans(_DNI, _dni),
    "in_aadhaar": spans(_AADHAAR, _aadhaar),
    "ip_address": _find_ips,
    "phone": spans(_PHONE, _phone),
}
