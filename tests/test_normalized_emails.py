"""normalized_emails (each distinct address once, the normalisation steps one column each: what the staging
models use) gives every address the key normalized_email gives it (the one-expression form: the contract's
definition, tests/test_forget.py and test_email_validation.py)."""

from __future__ import annotations

import duckdb
from macro_render import render_macro

from rapport.transform.udfs import register

ADDRESSES = [
    "A.B.C+d@gmail.com",
    "x@googlemail.com",
    " MiXeD@Example.org\t",
    "p+q@proton.me",
    "p+q@example.com",
    "Mixed+Tag@iCloud.com",
    "@gmail.com",
    "+tag@gmail.com",
    "no-at-sign",
    "a@b",
    "a@@b.com",
    "a b@c.com",
    "...@gmail.com",
    '=HYPERLINK("http://evil","x")@example.com',
    "a..b@example.com",
    "ö.ü+x@icloud.com",
]


def _connection() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    register(con)  # the macros ask the UDF is_valid_email
    con.execute("create table addresses (email varchar)")
    # every address twice and a null: one row per distinct non-null address comes out
    con.executemany("insert into addresses values (?)", [[a] for a in ADDRESSES + ADDRESSES + [None]])
    return con


def test_each_distinct_address_gets_the_key_of_the_one_expression_form() -> None:
    con = _connection()
    staged = render_macro("normalized_email.sql", "normalized_emails('addresses')")
    one_expression = render_macro("normalized_email.sql", "normalized_email('email')")
    rows = con.execute(f"select email, email_normalized, email_is_valid from ({staged}) as n").fetchall()
    assert sorted(r[0] for r in rows) == sorted(ADDRESSES)
    expected = dict(
        con.execute(f"select distinct email, {one_expression} from addresses where email is not null").fetchall()
    )
    assert {r[0]: r[1] for r in rows} == expected
    validity = dict(con.execute("select distinct email, is_valid_email(email) from addresses").fetchall())
    assert {r[0]: r[2] for r in rows} == {a: validity[a] for a in ADDRESSES}


def test_the_keys_by_hand() -> None:
    con = _connection()
    staged = render_macro("normalized_email.sql", "normalized_emails('addresses')")
    keys = dict(con.execute(f"select email, email_normalized from ({staged}) as n").fetchall())
    assert {a: keys[a] for a in ADDRESSES[:8]} == {
        "A.B.C+d@gmail.com": "abc@gmail.com",  # gmail: no dots, no tag
        "x@googlemail.com": "x@gmail.com",
        " MiXeD@Example.org\t": "mixed@example.org",
        "p+q@proton.me": "p@proton.me",  # a plus-address provider
        "p+q@example.com": "p+q@example.com",  # not one: the tag may be another mailbox
        "Mixed+Tag@iCloud.com": "mixed@icloud.com",
        "@gmail.com": None,
        "+tag@gmail.com": None,  # nothing left of the local part
    }
    assert [keys[a] for a in ADDRESSES[8:15]] == [None] * 7  # no address, or not a valid one
