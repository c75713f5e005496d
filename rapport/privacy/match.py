"""Matching an erased person: normalisation, keyed hashes and the spellings of their email and phone.

The same matching keys as the identity models (dbt_project/macros/normalized_email.sql and the
`normalize_phone` UDF of rapport.transform.udfs), so that "the person" here is the person stitching sees:

- `install(con, key)` defines, on one DuckDB connection, the temp macros `erasure_norm_email(x)` (a port
  of the dbt macro, reading `plus_address_domains` from dbt_project.yml) and `erasure_hash(kind, value)`
  (SHA-256 of `key|kind|value`, lowercase hex), and registers `normalize_phone`.
- `keyed_hash(key, kind, value)` is the same hash in Python.
- `email_pattern(normalised)` / `phone_pattern(e164)`: RE2 patterns (also valid Python `re`) that match
  every spelling of one address or number in free text (letter case, gmail dots, plus-tags; separators,
  country code or trunk prefix), for redacting mentions at `forget` time.
"""

from __future__ import annotations

import hashlib
import re
from contextlib import suppress
from functools import lru_cache

import duckdb
import phonenumbers
import yaml

from rapport.core.config import PROJECT_ROOT

REDACTED = "[erased]"
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
# An email-looking token in free text (quarantined lines, JSON): candidates for normalise-and-hash.
EMAIL_TOKEN_RE = r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
# Characters that may sit inside an address: a spelling must not be glued to them on either side.
_EMAIL_BEFORE = r"(^|[^A-Za-z0-9._%+'-])"
_EMAIL_AFTER = r"([^A-Za-z0-9-]|$)"
_PHONE_BEFORE = r"(^|[^0-9+])"
_PHONE_AFTER = r"([^0-9]|$)"
_PHONE_SEP = r"[\s().\-/]*"


@lru_cache(maxsize=1)
def dbt_vars() -> dict:
    """The `vars:` of dbt_project.yml (plus_address_domains, max_identifier_fanout)."""
    with open(PROJECT_ROOT / "dbt_project" / "dbt_project.yml", encoding="utf-8") as fh:
        return dict(yaml.safe_load(fh).get("vars") or {})


def plus_domains() -> tuple[str, ...]:
    return tuple(str(d).lower() for d in dbt_vars().get("plus_address_domains") or ())


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def norm_email_macro_sql() -> str:
    """`create temp macro erasure_norm_email(x)`: the dbt macro normalized_email, expression for expression
    (it calls the UDF is_valid_email: `rapport.transform.udfs.register` the connection first)."""
    e = "lower(trim(coalesce(cast(x as varchar), ''), ' ' || chr(9) || chr(10) || chr(13)))"
    local = f"split_part({e}, '@', 1)"
    domain = f"split_part({e}, '@', 2)"
    plus = "(" + ", ".join(_sql_str(d) for d in plus_domains()) + ")" if plus_domains() else "('')"
    untagged = f"case when {domain} in {plus} then split_part({local}, '+', 1) else {local} end"
    is_gmail = f"{domain} in ('gmail.com', 'googlemail.com')"
    final = f"case when {is_gmail} then replace({untagged}, '.', '') else {untagged} end"
    return f"""create or replace temp macro erasure_norm_email(x) as (case
        when not regexp_full_match({e}, '[^@\\s]+@[^@\\s.]+(\\.[^@\\s.]+)+') then null
        when not is_valid_email({e}) then null
        when ({final}) = '' then null
        else ({final}) || '@' || (case when {is_gmail} then 'gmail.com' else {domain} end)
    end)"""


def install(con: duckdb.DuckDBPyConnection, key: str) -> None:
    """Define the matching macros on `con` (temp: they never reach the database file)."""
    from rapport.transform.udfs import register

    with suppress(duckdb.NotImplementedException):  # already registered on this connection
        register(con)
    con.execute(norm_email_macro_sql())
    con.execute(
        "create or replace temp macro erasure_hash(kind, v) as "
        f"case when v is null then null else sha256({_sql_str(key)} || '|' || kind || '|' || cast(v as varchar)) end"
    )


def keyed_hash(key: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{key}|{kind}|{value}".encode()).hexdigest()


def normalize_emails(addresses: list[str]) -> list[str | None]:
    """Normalised form of each address (None: no identifier), by the same SQL the models use."""
    from rapport.transform.udfs import register

    con = duckdb.connect()
    try:
        register(con)
        con.execute(norm_email_macro_sql())
        return [con.execute("select erasure_norm_email(?)", [a]).fetchall()[0][0] for a in addresses]
    finally:
        con.close()


def _re_escape(ch: str) -> str:
    return "\\" + ch if ch in r"\.^$|?*+()[]{}-/" else ch


def email_pattern(normalised: str) -> str:
    """Every spelling of the normalised address `normalised`; groups 1 and 2 are the delimiters around it.

    Use case-insensitively. gmail: dots anywhere in the local part, googlemail.com, any +tag; other
    plus-addressing providers: any +tag; everyone else: the address itself in any letter case.
    """
    local, _, domain = normalised.partition("@")
    tag = r"(?:\+[^@\s]*)?"
    if domain == "gmail.com":
        body = r"\.*" + "".join(_re_escape(c) + r"\.*" for c in local) + tag + r"@(?:gmail|googlemail)\.com"
    elif domain in plus_domains():
        body = "".join(_re_escape(c) for c in local) + tag + "@" + "".join(_re_escape(c) for c in domain)
    else:
        body = "".join(_re_escape(c) for c in normalised)
    return f"{_EMAIL_BEFORE}(?:{body}){_EMAIL_AFTER}"


def phone_pattern(e164: str) -> str | None:
    """Every usual spelling of an E.164 number: +CC or 00CC or CC, or a trunk 0, then the national number
    with any separators. None when the number does not parse."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    nsn = phonenumbers.national_significant_number(number)
    if not nsn:
        return None
    cc = str(number.country_code)
    prefix = rf"(?:(?:(?:\+|00){_PHONE_SEP})?{re.escape(cc)}{_PHONE_SEP}|0{_PHONE_SEP})?"
    digits = _PHONE_SEP.join(nsn)
    return f"{_PHONE_BEFORE}(?:{prefix}\\(?{digits}){_PHONE_AFTER}"


def email_could_be_in(normalised: str, lowered: str, lowered_undotted: str) -> bool:
    """Cheap test that a text may hold a spelling of `normalised` (every spelling contains the domain, or
    googlemail.com, and the local part once dots are dropped); `lowered` is the text in lower case."""
    local, _, domain = normalised.partition("@")
    domains = GMAIL_DOMAINS if domain == "gmail.com" else (domain,)
    return any("@" + d in lowered for d in domains) and local.replace(".", "") in lowered_undotted


def phone_could_be_in(e164: str, digits_only: str) -> bool:
    """Cheap test that a text may hold a spelling of `e164`: its national number appears once the separators
    a spelling may use are dropped (`digits_only`)."""
    try:
        nsn = phonenumbers.national_significant_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False
    return bool(nsn) and nsn in digits_only


PHONE_SEPARATORS = re.compile(r"[\s().\-/]")


def combined(patterns: list[str]) -> str | None:
    """One pattern for several spellings of the same kind (they share their delimiter groups)."""
    if not patterns:
        return None
    before, after = (
        (_EMAIL_BEFORE, _EMAIL_AFTER) if patterns[0].startswith(_EMAIL_BEFORE) else (_PHONE_BEFORE, _PHONE_AFTER)
    )
    bodies = [p[len(before) : len(p) - len(after)] for p in patterns]
    return f"{before}(?:{'|'.join(bodies)}){after}"


def python_pattern(pattern: str) -> re.Pattern[str]:
    """The RE2 pattern for Python's `re` (same syntax for what these patterns use), case-insensitive."""
    return re.compile(pattern, re.IGNORECASE)


def redact_text(text: str, patterns: list[re.Pattern[str]]) -> tuple[str, int]:
    """Replace every spelling with REDACTED; repeated because adjacent matches share a delimiter."""
    total = 0
    for pat in patterns:
        while True:
            text, n = pat.subn(lambda m: m.group(1) + REDACTED + m.group(2), text)
            total += n
            if not n:
                break
    return text, total
