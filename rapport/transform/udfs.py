"""Python scalar UDFs the dbt models call, registered on every engine's connection.

`UDFS` lists them; `register(conn)` registers them on a DuckDB connection (dbt-duckdb does so on every
connection through the plugin `rapport.transform.dbt_plugin`, named in `profiles.yml`); another engine
registers the same scalar functions on its session. This module does not import dbt.

- `normalize_phone(phone varchar, country varchar) -> varchar`: E.164 via `phonenumbers`, parsed with the
  record's own ISO country when it has one; without a country only international form (`+CC...`) parses.
  Numbers that do not parse, or whose length is impossible for their country (or only possible as a local
  number without an area code), give null: they are no identifier.
- `phone_region(e164 varchar) -> varchar`: the ISO country of an E.164 number (null when unknown).
- the campaign statistics' distribution functions (`rapport_norm_cdf(x)`, `rapport_norm_ppf(p)`,
  `rapport_t_ppf(p, df)`, all double), from `rapport.experiments.distributions.UDFS`.
- `is_valid_email(address varchar) -> boolean`: whether an address is syntactically valid, by the maintained
  `email-validator` in syntax-only mode (no DNS). The `normalized_email` macro makes invalid addresses no
  identifier; audience files leave them out (rapport.publishing.audiences).

All are vectorised Arrow UDFs with a cache: real data repeats the same few values on many rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
import pyarrow as pa
from duckdb import DuckDBPyConnection, sqltypes
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from rapport.experiments import distributions

_POSSIBLE = phonenumbers.ValidationResult.IS_POSSIBLE


@lru_cache(maxsize=262_144)
def normalize_phone(phone: str | None, country: str | None = None) -> str | None:
    """E.164 form of a free-text phone number, or None when it is no usable identifier."""
    if phone is None:
        return None
    text = phone.strip()
    if not text:
        return None
    region = (country or "").strip().upper() or None
    if region is not None and len(region) != 2:
        region = None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # "Possible" (right length for the country) rather than "valid": valid-number metadata rejects
    # reserved-for-fiction ranges such as UK 07700 900xxx that real exports and demos do contain.
    if not (phonenumbers.is_valid_number(number) or phonenumbers.is_possible_number_with_reason(number) == _POSSIBLE):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=65_536)
def phone_region(e164: str | None) -> str | None:
    """ISO 3166-1 alpha-2 country of an E.164 number, None when it cannot be told."""
    if not e164:
        return None
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    # Numbers outside the valid-number metadata (fiction ranges) fall back to the calling code's main country.
    region = phonenumbers.region_code_for_number(number) or phonenumbers.region_code_for_country_code(
        number.country_code
    )
    return None if region in (None, "ZZ", "001") else region


# Addresses of the plainest shape, which `email-validator` accepts whatever else it checks: letters and digits
# with single . _ + - between them (at most 63 characters) @ up to three dotted labels of letters and digits with
# single hyphens inside (at most 49 characters each) and a top-level domain of 2-24 letters; so every length
# limit holds (local part 64, label 63, address 254). Special-use top-level domains (`.test`, `.local`, ...)
# are left to the validator, which refuses them. Most real addresses have this shape: they skip the
# validator's ~20 us per address (IDNA checks of the domain), which at a million people was seconds per build
# and per audience export. tests/test_email_validation.py checks the shape against the validator.
_LABEL = r"[A-Za-z0-9](?:-?[A-Za-z0-9]){0,24}"
PLAIN_ADDRESS = re.compile(rf"[A-Za-z0-9](?:[._+-]?[A-Za-z0-9]){{0,31}}@(?:{_LABEL}\.){{1,3}}([A-Za-z]{{2,24}})")
_SPECIAL_USE = frozenset(SPECIAL_USE_DOMAIN_NAMES)


def is_plain_address(address: str) -> bool:
    """Whether `address` has the plain shape above (then it is valid: no need to ask the validator)."""
    match = PLAIN_ADDRESS.fullmatch(address)
    return match is not None and match.group(1).lower() not in _SPECIAL_USE


@lru_cache(maxsize=262_144)
def is_valid_email(address: str | None) -> bool | None:
    """Whether `address` is a syntactically valid email address (RFC 5322/6531 as `email-validator` reads
    them, without DNS; quoted local parts and domain literals are refused): `=HYPERLINK("x","y")@ex.com`,
    `a..b@x.com` or `a@localhost` are not. None for None. Surrounding white space is ignored."""
    if address is None:
        return None
    if is_plain_address(address):
        return True
    try:
        validate_email(address.strip(" \t\r\n"), check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@dataclass(frozen=True)
class Udf:
    """A SQL function backed by a Python function of scalars (None for SQL null, in and out)."""

    name: str
    function: Callable[..., Any]
    args: tuple[str, ...]  # SQL types: "varchar", "double", "boolean", "bigint"
    returns: str


UDFS: list[Udf] = [
    Udf("normalize_phone", normalize_phone, ("varchar", "varchar"), "varchar"),
    Udf("phone_region", phone_region, ("varchar",), "varchar"),
    # distribution functions of the campaign statistics (all double; called per campaign, not per member)
    *(Udf(*spec) for spec in distributions.UDFS),
    Udf("is_valid_email", is_valid_email, ("varchar",), "boolean"),
]

_DUCKDB_TYPES = {
    "varchar": sqltypes.VARCHAR,
    "double": sqltypes.DOUBLE,
    "boolean": sqltypes.BOOLEAN,
    "bigint": sqltypes.BIGINT,
}
_ARROW_TYPES = {"varchar": pa.string(), "double": pa.float64(), "boolean": pa.bool_(), "bigint": pa.int64()}


def _vectorised(udf: Udf) -> Callable[..., pa.Array]:
    """An Arrow UDF calling the scalar function row by row (the scalar functions cache repeated values)."""
    arrow_type = _ARROW_TYPES[udf.returns]

    def call(*columns: pa.Array | pa.ChunkedArray) -> pa.Array:
        rows = zip(*(c.to_pylist() for c in columns), strict=True)
        return pa.array([udf.function(*row) for row in rows], type=arrow_type)

    # DuckDB reads the parameter count off the signature: *args won't do
    arity: dict[int, Callable[..., pa.Array]] = {
        1: lambda a: call(a),
        2: lambda a, b: call(a, b),
        3: lambda a, b, c: call(a, b, c),
        4: lambda a, b, c, d: call(a, b, c, d),
    }
    return arity[len(udf.args)]


def register(conn: DuckDBPyConnection) -> None:
    """Register every UDF on a DuckDB connection (also usable outside dbt, e.g. in tests)."""
    for udf in UDFS:
        conn.create_function(
            udf.name,
            _vectorised(udf),
            [_DUCKDB_TYPES[a] for a in udf.args],
            _DUCKDB_TYPES[udf.returns],
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
