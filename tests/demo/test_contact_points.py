"""Email/phone building blocks of the demo generator, against hand-written cases and `phonenumbers`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import phonenumbers
import pytest

from rapport.demo.contact_points import (
    PHONE_PLAN,
    make_phones,
    normalize_email,
    normalize_emails,
    type_emails,
    type_phones,
    typo_emails,
)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (" Minji.Kim+shop@GoogleMail.com ", "minjikim@gmail.com"),
        ("minji.kim@gmail.com", "minjikim@gmail.com"),
        ("A.B+x@outlook.com", "a.b@outlook.com"),
        ("a.b+x@naver.com", "a.b+x@naver.com"),  # naver: no plus-addressing, dots kept
        ("INFO@Hanbit-Tech.co.kr", "info@hanbit-tech.co.kr"),
        ("no-at-sign", None),
        ("two@@signs.com", None),
        ("x@localhost", None),
        (None, None),
    ],
)
def test_normalize_email(raw: object, key: str | None) -> None:
    assert normalize_email(raw) == key


def test_vectorised_normalisation_agrees_with_reference() -> None:
    raw = ["Minji.Kim+shop@GoogleMail.com", "a.b+x@naver.com", " X.Y+z@icloud.com", "p.q@proton.me"]
    got = normalize_emails(pd.Series(raw)).tolist()
    assert got == ["minjikim@gmail.com", "a.b+x@naver.com", "x.y@icloud.com", "p.q@proton.me"]


def _parse(s: str, region: str | None) -> phonenumbers.PhoneNumber:
    return phonenumbers.parse(s, region)


@pytest.mark.parametrize("country", sorted(PHONE_PLAN))
def test_typed_phones_are_valid_in_both_forms(country: str) -> None:
    rng = np.random.default_rng(3)
    n = 400
    ctry = np.full(n, country)
    landline = rng.random(n) < 0.3
    nsn = make_phones(rng, ctry, landline)
    assert nsn.is_unique
    cc = PHONE_PLAN[country][0]
    national = type_phones(rng, ctry, nsn, np.zeros(n, dtype=bool))
    intl = type_phones(rng, ctry, nsn, np.ones(n, dtype=bool))
    for typed_n, typed_i, digits in zip(national, intl, nsn, strict=True):
        assert not typed_n.startswith("+")
        pn = _parse(typed_n, country)
        assert phonenumbers.is_valid_number(pn), typed_n
        assert phonenumbers.format_number(pn, phonenumbers.PhoneNumberFormat.E164) == f"+{cc}{digits}"
        assert typed_i.startswith("+")
        pi = _parse(typed_i, None)  # international form parses without any country
        assert phonenumbers.is_valid_number(pi), typed_i
        assert phonenumbers.format_number(pi, phonenumbers.PhoneNumberFormat.E164) == f"+{cc}{digits}"


def test_typed_formats_look_like_people_type_them() -> None:
    rng = np.random.default_rng(5)
    n = 300
    kr = type_phones(rng, np.full(n, "KR"), pd.Series(["1012345678"] * n), np.zeros(n, dtype=bool))
    assert "010-1234-5678" in set(kr)
    us = type_phones(rng, np.full(n, "US"), pd.Series(["4155550100"] * n), np.zeros(n, dtype=bool))
    assert "(415) 555-0100" in set(us)
    cn = type_phones(rng, np.full(n, "CN"), pd.Series(["13800138000"] * n), np.zeros(n, dtype=bool))
    assert "138 0013 8000" in set(cn)
    kr_i = type_phones(rng, np.full(n, "KR"), pd.Series(["1012345678"] * n), np.ones(n, dtype=bool))
    assert "+82 10 1234 5678" in set(kr_i)


def test_typed_emails_keep_their_normalised_key() -> None:
    rng = np.random.default_rng(11)
    n = 3000
    local = pd.Series(["minji.kim"] * n)
    domain = pd.Series(["gmail.com"] * (n // 2) + ["naver.com"] * (n - n // 2))
    typed = type_emails(rng, local, domain, p_caps=0.3, p_space=0.1, p_plus=0.2, p_dots=0.2, p_googlemail=0.1)
    keys = set(normalize_emails(typed))
    assert keys == {"minjikim@gmail.com", "minji.kim@naver.com"}
    assert any(t != t.strip() for t in typed)  # surrounding spaces
    assert any(t.strip() != t.strip().lower() for t in typed)  # mixed case
    assert any("googlemail.com" in t.lower() for t in typed)
    assert any("+" in t for t in typed[: n // 2])
    assert not any("+" in t for t in typed[n // 2 :])  # no plus-tags where the provider ignores them


def test_typos_link_to_nobody() -> None:
    rng = np.random.default_rng(2)
    local = pd.Series(["minji.kim", "jsmith", "wei.wang88", "ab"] * 50)
    domain = pd.Series(["gmail.com", "yahoo.com", "qq.com", "naver.com"] * 50)
    real = {normalize_email(f"{a}@{b}") for a, b in zip(local, domain, strict=True)}
    typos = typo_emails(rng, local, domain, real)
    for t in typos:
        assert normalize_email(t) is not None
        assert normalize_email(t) not in real
