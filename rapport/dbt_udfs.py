"""dbt-duckdb plugin: Python scalar UDFs the dbt models call (this ties those models to DuckDB).

Registered on every dbt connection through `profiles.yml` (`plugins: [{module: rapport.dbt_udfs}]`):

- `normalize_phone(phone varchar, country varchar) -> varchar`: E.164 via `phonenumbers`, parsed with the
  record's own ISO country when it has one; without a country only international form (`+CC...`) parses.
  Numbers that do not parse, or whose length is impossible for their country (or only possible as a local
  number without an area code), give null: they are no identifier.
- `phone_region(e164 varchar) -> varchar`: the ISO country of an E.164 number (null when unknown).
- the campaign statistics' distribution functions (`rapport_norm_cdf(x)`, `rapport_norm_ppf(p)`,
  `rapport_t_ppf(p, df)`, all double), from `rapport.experiments.distributions.UDFS`.

The phone functions are vectorised Arrow UDFs with a cache: real data repeats the same few phones on many rows.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers
import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection
from duckdb.sqltypes import DOUBLE, VARCHAR

from rapport.experiments.distributions import UDFS as STAT_UDFS

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


def _as_list(values: pa.Array | pa.ChunkedArray) -> list:
    return values.to_pylist()


def _normalize_phone_arrow(phones: pa.Array, countries: pa.Array) -> pa.Array:
    return pa.array(
        [normalize_phone(p, c) for p, c in zip(_as_list(phones), _as_list(countries), strict=True)],
        type=pa.string(),
    )


def _phone_region_arrow(numbers: pa.Array) -> pa.Array:
    return pa.array([phone_region(n) for n in _as_list(numbers)], type=pa.string())


def register(conn: DuckDBPyConnection) -> None:
    """Register the UDFs on a DuckDB connection (also usable outside dbt, e.g. in tests)."""
    conn.create_function(
        "normalize_phone",
        _normalize_phone_arrow,
        [VARCHAR, VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    conn.create_function(
        "phone_region",
        _phone_region_arrow,
        [VARCHAR],
        VARCHAR,
        type="arrow",
        null_handling="special",
        side_effects=False,
    )
    for name, function, args, _returns in STAT_UDFS:  # all double; called per campaign row, not per member
        conn.create_function(name, function, [DOUBLE] * len(args), DOUBLE, null_handling="special")


class Plugin(BasePlugin):
    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        register(conn)
