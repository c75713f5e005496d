"""Email validation (issue #17): the UDF is_valid_email and the normalized_email macro that uses it."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st
from macro_render import render_macro

from rapport.transform.udfs import UDFS, is_valid_email, register

HOSTILE = '=HYPERLINK("http://evil.example","x")@example.com'
CASES = {  # address -> valid? (by the RFCs as email-validator reads them, syntax only)
    "min@example.com": True, " Min@Example.COM\t": True, "-dash@example.com": True, "+tag@fastmail.com": True,
    "=carol@example.com": True, "kim.minsu@naver.com": True, "민준@example.kr": True, "x@bücher.ch": True,
    HOSTILE: False, "a..b@example.com": False, ".a@example.com": False, "a@localhost": False, "a@b": False,
    '"quoted"@example.com': False, "a b@example.com": False, "a@@example.com": False, "no-at-sign": False,
    "a@example.test": False, "a@[127.0.0.1]": False, "": False,
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
    key = {a: con.execute(f"select {sql} from (select ?::varchar as x)", [a]).fetchall()[0][0]
           for a in (HOSTILE, "-Dash@Example.com", "a..b@example.com", "Li+news@Gmail.com")}
    assert key == {HOSTILE: None, "-Dash@Example.com": "-dash@example.com", "a..b@example.com": None,
                   "Li+news@Gmail.com": "li@gmail.com"}
