"""Masking of emails and number formatting shown to the reader."""

from __future__ import annotations

import pytest

from rapport.reports.formatting import duration_minutes, money, pct, plural, points, signed_pct
from rapport.reports.masking import mask_email, mask_emails_in_text


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("jane.doe@gmail.com", "j***@gmail.com"),
        ("  Alice@Example.COM ", "A***@Example.COM"),
        ("x@a.io", "x***@a.io"),
        (None, ""),
        ("", ""),
        ("no-at-sign", "***"),
        ("a@b@c.com", "***"),
        ("user@localhost", "***"),
        ("@example.com", "***"),
    ],
)
def test_mask_email(raw: str | None, masked: str) -> None:
    assert mask_email(raw) == masked


def test_mask_emails_inside_free_text() -> None:
    assert mask_emails_in_text("Call bob.stone@example.net today") == "Call b***@example.net today"
    assert mask_emails_in_text("Bob <bob@x.io>, eve@y.org") == "Bob <b***@x.io>, e***@y.org"
    assert mask_emails_in_text("김민준") == "김민준"
    assert mask_emails_in_text(None) == ""


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8600, "$8,600"),
        (268.75, "$269"),
        (50, "$50.00"),
        (12345, "$12.3K"),
        (4_560_000, "$4.56M"),
        (-300, "-$300"),
        (None, "–"),
    ],
)
def test_money(value: float | None, text: str) -> None:
    assert money(value) == text


def test_rates_and_words() -> None:
    assert pct(0.0581) == "5.8%"
    assert pct(0.5814, 0) == "58%"
    assert points(0.04) == "+4.0 pts"
    assert points(-0.055) == "-5.5 pts"
    assert signed_pct(4.0) == "+400%"
    assert signed_pct(-2.5) == "-250%"
    assert plural(1, "person", "people") == "1 person"
    assert plural(2500, "person", "people") == "2,500 people"
    assert plural(0, "customer") == "0 customers"
    assert duration_minutes(30) == "30 min"
    assert duration_minutes(125) == "2.1 h"
    assert duration_minutes(3000) == "2.1 days"
