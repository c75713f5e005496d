"""Removing erased people from raw.* and quarantine.* by their hashed identifiers.

Runs after every extract and before the raw checks (rapport.pipeline.steps), and inside `rapport forget`. The
sources still hold erased people, so every extract may land them again (a changed record, the orders
look-back, a new daily ESP snapshot): this pass removes them again before anything reads raw.

A row is the person's when one of its own fields hashes to a recorded identifier (see SPECS):
- account-like records (shop customers, helpdesk users, ESP contacts): their id, normalised email or phone,
  or (helpdesk) the shop customer id in external_id; every landed version of a matched id goes;
- orders: the order id, the shop customer id, or for guest orders the checkout email or phone;
- dependents: order items (order id), tickets (requester), audience rows and events (email);
- quarantined rows: an email-looking token of the raw text, or an id / phone field when it is JSON.

Identifiers learnt on the way are recorded too, so later runs find the rows that hang off them: the ids
of every matched record, and the emails and phones the person's records carry, except non-identifying
values by the contract's fan-out rule (a shop's own phone typed on many orders never becomes a way to
erase everyone who ordered by phone). Passes repeat until nothing new is learnt.

Other people's orders whose checkout email or phone is the person's keep their row (they are that
customer's orders) with the field set to NULL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb

from rapport.core.warehouse import UTC_NOW, tables_in
from rapport.privacy.match import EMAIL_TOKEN_RE, dbt_vars

MAX_PASSES = 8


def _norm(col: str) -> str:
    return f"erasure_norm_email({col})"


def _is(kind: str, expr: str) -> str:
    return f"erasure_hash('{kind}', {expr}) in (select hash from _erased where kind = '{kind}')"


CUSTOMER_PHONE = "normalize_phone(phone, nullif(upper(trim(country)), ''))"
LOOSE_PHONE = "normalize_phone(phone, null)"


@dataclass(frozen=True)
class Spec:
    table: str  # raw table
    id_sql: str  # the record's id: every row with a matched id goes
    match: str  # predicate: the row is the person's
    kind: str | None = None  # identifier kind recorded for matched ids (None: nothing hangs off this row)
    grow: tuple[tuple[str, str], ...] = ()  # identifiers the person's rows carry: (kind, expression)
    collect: str = ""  # name of the clear ids handed to `forget` for the derived tables


# Order matters: a pass handles parents before the rows that hang off them.
SPECS: tuple[Spec, ...] = (
    Spec(
        "shop_customers",
        "cast(id as varchar)",
        " or ".join([_is("shop_customer", "id"), _is("email", _norm("email")), _is("phone", CUSTOMER_PHONE)]),
        "shop_customer",
        (("email", _norm("email")), ("phone", CUSTOMER_PHONE)),
        "shop_customer",
    ),
    Spec(
        "helpdesk_users",
        "cast(id as varchar)",
        " or ".join(
            [
                _is("helpdesk_user", "id"),
                _is("email", _norm("email")),
                _is("phone", LOOSE_PHONE),
                _is("shop_customer", "nullif(trim(external_id), '')"),
            ]
        ),
        "helpdesk_user",
        (("email", _norm("email")), ("phone", LOOSE_PHONE)),
        "helpdesk_user",
    ),
    Spec(
        "esp_contacts",
        "contact_id",
        _is("esp_contact", "contact_id") + " or " + _is("email", _norm("email")),
        "esp_contact",
        (("email", _norm("email")),),
        "esp_contact",
    ),
    Spec(
        "shop_orders",
        "cast(id as varchar)",
        f"{_is('order', 'id')} or {_is('shop_customer', 'customer_id')} or (customer_id is null and "
        f"({_is('email', _norm('email'))} or {_is('phone', LOOSE_PHONE)}))",
        "order",
        (
            ("email", f"case when customer_id is null then {_norm('email')} end"),
            ("phone", f"case when customer_id is null then {LOOSE_PHONE} end"),
        ),
        "order",
    ),
    Spec("shop_order_items", "cast(id as varchar)", _is("order", "order_id")),
    Spec("helpdesk_tickets", "cast(id as varchar)", _is("helpdesk_user", "requester_id"), collect="ticket"),
    Spec("esp_audiences", "campaign_id || ':' || email", _is("email", _norm("email")), collect="audience_member"),
    Spec("esp_events", "sg_event_id", _is("email", _norm("email")), collect="event"),
)
# Account-like records for the fan-out rule: (table, kind, value, record key, filter).
ACCOUNTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("shop_customers", "email", _norm("email"), "id", ""),
    ("shop_customers", "phone", CUSTOMER_PHONE, "id", ""),
    ("helpdesk_users", "email", _norm("email"), "id", "lower(trim(role)) = 'end-user' and"),
    ("helpdesk_users", "phone", LOOSE_PHONE, "id", "lower(trim(role)) = 'end-user' and"),
    ("esp_contacts", "email", _norm("email"), "contact_id", ""),
)
# Where a phone is seen beside an email (any record or order): (table, normalised phone).
PHONE_EMAIL_PAIRS: tuple[tuple[str, str], ...] = (
    ("shop_customers", CUSTOMER_PHONE),
    ("helpdesk_users", LOOSE_PHONE),
    ("shop_orders", LOOSE_PHONE),
)
_JSON_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "shop_customers": (("shop_customer", "id"), ("phone", "phone")),
    "shop_orders": (("order", "id"), ("shop_customer", "customer_id"), ("phone", "phone")),
    "shop_order_items": (("order", "order_id"),),
    "helpdesk_users": (("helpdesk_user", "id"), ("shop_customer", "external_id"), ("phone", "phone")),
    "helpdesk_tickets": (("helpdesk_user", "requester_id"),),
    "esp_contacts": (("esp_contact", "contact_id"),),
}


@dataclass
class PurgeResult:
    removed: dict[str, int] = field(default_factory=dict)  # "raw.shop_customers" -> rows deleted
    redacted: dict[str, int] = field(default_factory=dict)  # rows whose field was set to NULL
    # clear ids removed per collect name, and clear emails / phones learnt ("email", "phone"): only kept in
    # memory, for `forget` to find the derived rows and the spellings to redact
    ids: dict[str, set[str]] = field(default_factory=dict)
    learnt: int = 0  # identifiers recorded by this pass

    def add(self, counts: dict[str, int], table: str, n: int) -> None:
        if n:
            counts[table] = counts.get(table, 0) + n

    @property
    def total_removed(self) -> int:
        return sum(self.removed.values())


def existing_tables(con: duckdb.DuckDBPyConnection, schema: str) -> set[str]:
    return set(tables_in(con, schema))


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    return int(con.execute(sql, params or []).fetchall()[0][0] or 0)


def purge_raw(
    con: duckdb.DuckDBPyConnection, *, key_id: str, added_by: str, erasure_id: str | None = None
) -> PurgeResult:
    """Remove the rows of everyone in ops.erasure_identifiers from raw.* and quarantine.*.

    Needs `rapport.privacy.match.install(con, key)`; run inside the caller's transaction. Identifiers learnt
    are added to ops.erasure_identifiers under `key_id`, `erasure_id` and `added_by`.
    """
    result = PurgeResult()
    raw = existing_tables(con, "raw")
    con.execute("create or replace temp table _erased as select kind, hash from ops.erasure_identifiers")
    con.execute("create or replace temp table _learnt (kind varchar, hash varchar)")
    for _ in range(MAX_PASSES):
        learnt = 0
        con.execute("create or replace temp table _cand (kind varchar, value varchar)")
        for spec in SPECS:
            if spec.table in raw:
                learnt += _purge_table(con, spec, result)
        learnt += _grow(con, raw, result)
        if not learnt:
            break
    _purge_quarantine(con, result)
    _redact_other_orders(con, raw, result)
    result.learnt = _count(con, "select count(*) from _learnt")
    con.execute(
        f"""insert into ops.erasure_identifiers (kind, hash, key_id, erasure_id, added_at, added_by)
           select distinct kind, hash, ?, ?, {UTC_NOW}, ? from _learnt
           on conflict do nothing""",
        [key_id, erasure_id, added_by],
    )
    for name in ("_erased", "_learnt", "_cand", "_hit"):
        con.execute(f"drop table if exists {name}")
    return result


def _learn(con: duckdb.DuckDBPyConnection, select_kind_hash: str) -> int:
    """Record (kind, hash) pairs not known yet; returns how many were new."""
    con.execute(
        f"""create or replace temp table _new as
            select distinct kind, hash from ({select_kind_hash}) as n
            where hash is not null and not exists (
                select 1 from _erased as e where e.kind = n.kind and e.hash = n.hash)"""
    )
    n = _count(con, "select count(*) from _new")
    if n:
        con.execute("insert into _erased select kind, hash from _new")
        con.execute("insert into _learnt select kind, hash from _new")
    con.execute("drop table _new")
    return n


def _purge_table(con: duckdb.DuckDBPyConnection, spec: Spec, result: PurgeResult) -> int:
    table = f"raw.{spec.table}"
    con.execute(
        f"create or replace temp table _hit as select distinct {spec.id_sql} as id from {table} where {spec.match}"
    )
    ids = [r[0] for r in con.execute("select id from _hit").fetchall()]
    if not ids:
        return 0
    learnt = 0
    if spec.kind:
        learnt += _learn(con, f"select '{spec.kind}' as kind, erasure_hash('{spec.kind}', id) as hash from _hit")
    person_rows = f"{spec.id_sql} in (select id from _hit)"
    for kind, expr in spec.grow:
        con.execute(
            f"insert into _cand select distinct '{kind}', {expr} from {table} "
            f"where {person_rows} and {expr} is not null"
        )
    n = _count(con, f"delete from {table} where {person_rows}")
    result.add(result.removed, table, n)
    if spec.collect:
        result.ids.setdefault(spec.collect, set()).update(ids)
    return learnt


def _grow(con: duckdb.DuckDBPyConnection, raw: set[str], result: PurgeResult) -> int:
    """Learn the emails and phones the person's records carry, except non-identifying ones.

    Non-identifying by the contract's fan-out rule, applied to what remains in raw (plus the person's own
    record): carried by more than max_identifier_fanout account-like records, or for a phone seen beside more
    than that many distinct emails; or listed as rejected by the last build.
    """
    if not _count(con, "select count(*) from _cand"):
        return 0
    fanout = int(dbt_vars().get("max_identifier_fanout", 5))
    accounts = [
        f"select '{kind}' as kind, {expr} as value, '{table}:' || {key} as record from raw.{table} "
        f"where {where} {expr} in (select value from _cand where kind = '{kind}')"
        for table, kind, expr, key, where in ACCOUNTS
        if table in raw
    ]
    pairs = [
        f"select {phone} as value, {_norm('email')} as email from raw.{table} "
        f"where {phone} in (select value from _cand where kind = 'phone')"
        for table, phone in PHONE_EMAIL_PAIRS
        if table in raw
    ]
    shared = (
        [
            f"select kind, value from ({' union all '.join(accounts)}) group by kind, value "
            f"having count(distinct record) + 1 > {fanout}"
        ]
        if accounts
        else []
    )
    if pairs:
        shared.append(
            f"select 'phone', value from ({' union all '.join(pairs)}) where email is not null "
            f"group by value having count(distinct email) + 1 > {fanout}"
        )
    if "int_identity_fanout_measured" in existing_tables(con, "intermediate"):
        shared.append(
            "select identifier_type, identifier_value from intermediate.int_identity_fanout_measured where is_rejected"
        )
    con.execute("create or replace temp table _shared (kind varchar, value varchar)")
    for sql in shared:
        con.execute(f"insert into _shared {sql}")
    con.execute(
        """create or replace temp table _grown as
           select distinct c.kind, c.value from _cand as c
           where not exists (select 1 from _shared as r where r.kind = c.kind and r.value = c.value)
             and erasure_hash(c.kind, c.value) not in (select hash from _erased where kind = c.kind)"""
    )
    for kind, value in con.execute("select kind, value from _grown").fetchall():
        result.ids.setdefault(kind, set()).add(value)  # clear values: `forget` redacts their spellings
    n = _learn(con, "select kind, erasure_hash(kind, value) as hash from _grown")
    con.execute("drop table _grown")
    con.execute("drop table _shared")
    return n


def _purge_quarantine(con: duckdb.DuckDBPyConnection, result: PurgeResult) -> None:
    token = EMAIL_TOKEN_RE.replace("'", "''")
    email_hashes = "(select coalesce(list(hash), []) from _erased where kind = 'email')"
    for name in sorted(existing_tables(con, "quarantine")):
        if not name.endswith("_rejects"):
            continue
        source_table = name.removesuffix("_rejects")
        tests = [
            f"list_has_any(list_transform(regexp_extract_all(raw, '{token}'), "
            f"lambda x: erasure_hash('email', erasure_norm_email(x))), {email_hashes})"
        ]
        for kind, key in _JSON_FIELDS.get(source_table, ()):
            value = f"case when json_valid(raw) then nullif(trim(json_extract_string(raw, '$.{key}')), '') end"
            if kind == "phone":
                value = f"normalize_phone({value}, null)"
            tests.append(_is(kind, value))
        if source_table == "esp_contacts":  # a rejected CSV line: its first field is the contact id
            tests.append(_is("esp_contact", "trim(split_part(raw, ',', 1), '\" ')"))
        n = _count(con, f"delete from quarantine.{name} where raw is not null and ({' or '.join(tests)})")
        result.add(result.removed, f"quarantine.{name}", n)


def _redact_other_orders(con: duckdb.DuckDBPyConnection, raw: set[str], result: PurgeResult) -> None:
    if "shop_orders" not in raw:
        return
    for column, test in (("email", _is("email", _norm("email"))), ("phone", _is("phone", LOOSE_PHONE))):
        n = _count(con, f"update raw.shop_orders set {column} = null where customer_id is not null and {test}")
        result.add(result.redacted, "raw.shop_orders", n)
