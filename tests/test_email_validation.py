"""Email validation (issue #17): the UDF is_valid_email and the normalized_email macro that uses it."""

from __future__ import annotations

import duckdb
import pytest
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st
from macro_render import render_macro

from rapport.transform.udfs import PLAIN_ADDRESS, UDFS, is_plain_address, is_valid_email, register

HOSTILE = '=HYPERLINK("http://evil.example","x")@example.com'
CASES = {  # address -> valid? (by the RFCs as email-validator reads them, syntax only)
    "min@example.com": True,
    " Min@Example.COM\t": True,
    "-dash@example.com": True,
    "+tag@fastmail.com": True,
    "=carol@example.com": True,
    "kim.minsu@naver.com": True,
    "민준@example.kr": True,
    "x@bücher.ch": True,
    HOSTILE: False,
    "a..b@example.com": False,
    ".a@example.com": False,
    "a@localhost": False,
    "a@b": False,
    '"quoted"@example.com': False,
    "a b@example.com": False,
    "a@@example.com": False,
    "no-at-sign": False,
    "a@example.test": False,
    "a@[127.0.0.1]": False,
    "": False,
}


@pytest.mark.parametrize("address, valid", CASES.items())
def test_is_valid_email_by_hand(address, valid):
    assert is_valid_email(address) is valid


def test_null_is_null():
    assert is_valid_email(None) is None


@given(st.text(max_size=80))
def test_any_text_gives_a_boolean(text):
    assert is_valid_email(text) in (True, False)


def test_the_udf_is_registered_for_every_engine_and_agrees_on_duckdb():
    assert "is_valid_email" in {u.name for u in UDFS}
    con = duckdb.connect()
    register(con)
    got = dict(con.execute("select a, is_valid_email(a) from unnest(?) t(a)", [list(CASES)]).fetchall())
    assert got == CASES
    assert con.execute("select is_valid_email(null)").fetchall() == [(None,)]


def test_the_macro_gives_invalid_addresses_no_key():
    sql = render_macro("normalized_email.sql", "normalized_email('x')")
    con = duckdb.connect()
    register(con)
    key = {
        a: con.execute(f"select {sql} from (select ?::varchar as x)", [a]).fetchall()[0][0]
        for a in (HOSTILE, "-Dash@Example.com", "a..b@example.com", "Li+news@Gmail.com")
    }
    assert key == {
        HOSTILE: None,
        "-Dash@Example.com": "-dash@example.com",
        "a..b@example.com": None,
        "Li+news@Gmail.com": "li@gmail.com",
    }


def _validator_accepts(address: str) -> bool:
    try:
        validate_email(address.strip(" \t\r\n"), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@settings(max_examples=2000)
@given(st.from_regex(PLAIN_ADDRESS, fullmatch=True))
def test_every_plain_address_is_one_the_validator_accepts(address):
    # the shortcut may only skip the validator where the validator would say yes
    assert not is_plain_address(address) or _validator_accepts(address)


@pytest.mark.parametrize("tld", SPECIAL_USE_DOMAIN_NAMES)
def test_special_use_domains_are_left_to_the_validator(tld):
    for address in (f"a@example.{tld}", f"a@example.{tld.upper()}"):
        assert PLAIN_ADDRESS.fullmatch(address) and not is_plain_address(address)
        assert is_valid_email(address) is False


@pytest.mark.parametrize(
    "address",
    [
        "a" * 64 + "@example.com",  # local part over 63: not plain (the validator allows 64)
        "a@" + "b" * 50 + ".com",  # label over 49
        "a@b.c.d.e.com",  # four labels before the top-level domain
        "a@xn--bcher-kva.ch",
        "a--b@example.com",
        "a@ex--ample.com",
        "a@example.c0m",
        "a_@example.com",
    ],
)
def test_shapes_outside_the_shortcut_still_get_the_validators_answer(address):
    assert not is_plain_address(address)
    assert is_valid_email(address) is _validator_accepts(address)


@settings(max_examples=500)
@given(st.emails() | st.text(alphabet="ab.-_+@xyz1", max_size=30))
def test_is_valid_email_agrees_with_the_validator(address):
    assert is_valid_email(address) is _validator_accepts(address)


def test_the_longest_plain_addresses_are_within_the_validators_limits():
    local, label, tld = "a" + "-a" * 31, "b" + "-b" * 24, "c" * 24  # 63, 49 and 24 characters, written out
    longest = f"{local}@{label}.{label}.{label}.{tld}"
    assert is_plain_address(longest) and _validator_accepts(longest) and len(longest) == 238
    for longer in (
        f"a-{local}@{label}.{tld}",
        f"a@b-{label}.{tld}",
        f"a@{label}.{label}.{label}.{label}.{tld}",
        f"a@{label}.c{tld}",
    ):
        assert not is_plain_address(longer)
