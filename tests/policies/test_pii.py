"""Personal data: what each kind finds, and the near-misses it must leave alone."""

from __future__ import annotations

import pytest

from policies.pii import (
    BUILTIN_KINDS,
    Detector,
    Redactor,
    check_patterns,
    luhn_valid,
    verhoeff_valid,
)

FOUND: dict[str, list[str]] = {
    "email": ["jane.doe@example.co.uk", "ops+alerts@mail.example.org", "git@github.com"],
    "phone": [
        "+44 20 7946 0958",
        "+1 (415) 555-2671",
        "+4915112345678",
        "(415) 555-2671",
        "415-555-2671",
        "415.555.2671",
        "020 7946 0958",
        "06 12 34 56 78",
    ],
    "card": [
        "4111 1111 1111 1111",
        "4111111111111111",
        "5500-0000-0000-0004",
        "378282246310005",
        "6011 1111 1111 1117",
        "3530 1113 3330 0000",
        "30569309025904",
    ],
    "iban": [
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "GB82WEST12345698765432",
        "NL91 ABNA 0417 1643 00",
        "FR14 2004 1010 0505 0001 3M02 606",
    ],
    "us_ssn": ["123-45-6789", "123 45 6789", "078-05-1120"],
    "uk_nino": ["AB 12 34 56 C", "AB123456C", "JG103759A"],
    "es_dni": ["12345678Z", "12345678-Z", "X1234567L"],
    "in_aadhaar": ["2345 6789 0124", "2345-6789-0124"],
    "ip_address": ["192.168.1.10", "8.8.8.8", "2001:db8::ff00:42:8329", "fe80::1ff:fe23:4567:890a"],
    "secret": [
        "sk-proj-Ab3dEf1234567890AbCdEf1234567890abcd",
        "sk-" + "aB3" * 16,
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_" + "a1B2" * 9,
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "xoxb-1234-5678-abcdEFGHijkl",
        "AIza" + "SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
    ],
}

NEAR_MISSES: dict[str, list[str]] = {
    "email": [
        "icon@2x.png",
        "user@localhost",
        "follow @handle",
        "lodash@4.17.21",
        "a at b dot com",
    ],
    "phone": [
        "order 123-456-7890",
        "ORD-2024-000123",
        "order #100234567",
        "1,234,567,890 users",
        "+3.14159",
        "ISBN 978-0-306-40615-7",
        "ISBN 0-306-40615-2",
        "ext. 4567",
    ],
    "card": [
        "4111 1111 1111 1112",
        "1234 5678 9012 3456",
        "0000 0000 0000 0000",
        "4111 1111-1111 1111",
        "tracking 9400 1000 0000 0000 0000 00",
    ],
    "iban": ["DE89 3704 0044 0532 0130 01", "XX12 3456 7890 1234 5678 90", "DE89 3704"],
    "us_ssn": ["000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000"],
    "uk_nino": ["QQ 12 34 56 C", "GB 12 34 56 A", "AB 12 34 56 E"],
    "es_dni": ["12345678A", "X1234567A"],
    "in_aadhaar": ["2345 6789 0123", "1234 5678 9012", "234567890124"],
    "ip_address": [
        "version 1.2.3.4",
        "http://127.0.0.1:8080/v1",
        "listen on 0.0.0.0",
        "v10.0.0.1",
        "1.2.3.4.5",
        "999.1.1.1",
        "at 12:30:45",
        "std::vector",
        "00:1A:2B:3C:4D:5E",
        "a::b",
    ],
    "secret": [
        "sk-learn-tutorial-for-beginners-and-experts",
        "sk-short",
        "AKIA123",
        "eyJhbGciOiJIUzI1NiJ9",
        "-----BEGIN PUBLIC KEY-----",
        "ghp_short",
    ],
}

ORDINARY = [
    "UUID 123e4567-e89b-12d3-a456-426614174000",
    "dates 2024-01-15, 15/01/2024, 15.01.2024, 01-02-2024, Jan 15, 2024",
    "versions 1.2.3, Python 3.11.4, v2.0.1-beta, node@20",
    "order numbers ORD-2024-000123, #100234567, INV/2024/0042",
    "prices $1,234.56 and 3.5% and 10:30am",
    "hash sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "What is 10 divided by 2? And 123456 * 789?",
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector()


@pytest.mark.parametrize("kind", sorted(FOUND))
def test_each_kind_finds_its_examples_whole(detector: Detector, kind: str) -> None:
    for value in FOUND[kind]:
        text = f"Please note: {value}, thanks."
        found = [(f.kind, text[f.start : f.end]) for f in detector.find(text)]
        assert found == [(kind, value)], value


@pytest.mark.parametrize("kind", sorted(NEAR_MISSES))
def test_each_kinds_near_misses_are_left_alone(detector: Detector, kind: str) -> None:
    for text in NEAR_MISSES[kind]:
        assert detector.find(f"Note: {text} here") == [], text


def test_ordinary_text_has_no_personal_data(detector: Detector) -> None:
    for text in ORDINARY:
        assert detector.find(text) == [], text
    assert set(FOUND) == set(BUILTIN_KINDS) == set(NEAR_MISSES)


def test_checksums() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert verhoeff_valid("234567890124") and not verhoeff_valid("234567890123")


def test_kinds_are_sorted_and_operator_patterns_come_first() -> None:
    detector = Detector({"employee_id": r"EMP-\d{6}", "ticket": r"TCK-\d+"})
    text = "EMP-123456 wrote to jane@example.com about TCK-7 and 415-555-2671"
    assert detector.kinds([text, ""]) == ("email", "employee_id", "phone", "ticket")
    # An operator pattern keeps its span even where a built-in kind would match too.
    overlap = Detector({"staff_phone": r"415-555-\d{4}"})
    assert [f.kind for f in overlap.find("call 415-555-2671")] == ["staff_phone"]


def test_operator_patterns_are_checked() -> None:
    with pytest.raises(ValueError, match="not a built-in kind"):
        check_patterns({"email": "x"})
    with pytest.raises(ValueError, match="pii pattern name 'Bad Name'"):
        check_patterns({"Bad Name": "x"})
    with pytest.raises(ValueError, match="'ids': not a valid regular expression"):
        check_patterns({"ids": "(unclosed"})
    with pytest.raises(ValueError, match="matches the empty string"):
        check_patterns({"ids": r"\d*"})


def test_the_same_value_gets_the_same_placeholder_across_texts(detector: Detector) -> None:
    redactor = Redactor(detector)
    first = redactor.redact("Mail jane@example.com or call +44 20 7946 0958.")
    second = redactor.redact("Again: jane@example.com, not bob@example.org.")
    assert first == "Mail [EMAIL_1] or call [PHONE_1]."
    assert second == "Again: [EMAIL_1], not [EMAIL_2]."
    assert redactor.counts == {"email": 2, "phone": 1}
    assert redactor.redact("nothing here") == "nothing here"
