"""A second, independent implementation of marts.md's linking rules, in Python, to check the dbt stitching.

    graph = contract_graph(con, plus_domains=..., fanout=5)
    reference_clusters(graph) -> DataFrame(source, source_id, cluster)
    ceiling_clusters(graph, truth) -> DataFrame(source, source_id, cluster)

`contract_graph` reads the raw (as typed) email, phone, country and shop-customer key of every record from
`intermediate.int_identity_records_unioned` of a built work DB (attached as `work`), plus the checkout
email/phone of customers' orders (they show a shared phone, marts.md), and redo everything after that
without the project's SQL: email keys from the contract's wording, phones with `phonenumbers`, the
fan-out guard, then connected components with scipy.

- `reference_clusters`: the contract's partition. rapport's clusters must be exactly these.
- `ceiling_clusters` (`truth`: source, source_id, person_id): the same graph with every
  link between two different true people cut. Its pairwise recall is the best any stitcher that follows
  the contract can reach on the data: a record that shares no usable identifier with the rest of its
  person cannot be linked to them by these rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd
import phonenumbers
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")


def email_key(value: object, plus_domains: frozenset[str]) -> str | None:
    """marts.md: trim, lowercase; Gmail dots and googlemail.com; +tags on plus-addressing providers."""
    if not isinstance(value, str):
        return None
    s = value.strip().lower()
    if not _EMAIL_SHAPE.fullmatch(s):
        return None
    local, domain = s.split("@")
    if domain in plus_domains:
        local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}" if local else None


def phone_key(value: object, country: object) -> str | None:
    """marts.md: E.164, parsed with the record's own country where it has one; else only `+CC...` parses."""
    if not isinstance(value, str) or not value.strip():
        return None
    region = country.strip().upper() if isinstance(country, str) and len(country.strip()) == 2 else None
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _records(con: duckdb.DuckDBPyConnection, plus_domains: frozenset[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    records = con.execute(
        "select source, source_id, email, phone, country, shop_customer_key, is_account_like "
        "from work.intermediate.int_identity_records_unioned"
    ).df()
    records["email_key"] = [email_key(v, plus_domains) for v in records["email"]]
    records["phone_key"] = [phone_key(p, c) for p, c in zip(records["phone"], records["country"], strict=True)]
    checkouts = con.execute("select email, phone from work.staging.stg_shop__orders where customer_id is not null").df()
    checkouts["email_key"] = [email_key(v, plus_domains) for v in checkouts["email"]]
    checkouts["phone_key"] = [phone_key(p, None) for p in checkouts["phone"]]
    return records, checkouts


def _identifiers(records: pd.DataFrame, checkouts: pd.DataFrame, fanout: int) -> pd.DataFrame:
    """(record index, identifier) for every identifier the fan-out guard lets link."""
    long = pd.concat(
        [
            pd.DataFrame({"rec": records.index, "ident": "email:" + records["email_key"]}),
            pd.DataFrame({"rec": records.index, "ident": "phone:" + records["phone_key"]}),
            pd.DataFrame({"rec": records.index, "ident": "shop:" + records["shop_customer_key"]}),
        ]
    ).dropna()
    account = long[records.loc[long["rec"], "is_account_like"].to_numpy(dtype=bool)]
    per_value = account.groupby("ident")["rec"].nunique()
    rejected = set(per_value[per_value > fanout].index)
    pairs = pd.concat([records[["phone_key", "email_key"]], checkouts[["phone_key", "email_key"]]]).dropna()
    emails_per_phone = pairs.drop_duplicates().groupby("phone_key")["email_key"].nunique()
    rejected |= {"phone:" + p for p in emails_per_phone[emails_per_phone > fanout].index}
    return long[~long["ident"].isin(rejected)]


def _components(records: pd.DataFrame, links: pd.DataFrame) -> pd.DataFrame:
    """Connected components of the bipartite record-identifier graph, as one label per record."""
    n = len(records)
    ident_codes, _ = pd.factorize(links["ident"])
    rows = links["rec"].to_numpy(dtype=np.int64)
    cols = n + ident_codes.astype(np.int64)
    size = n + (int(ident_codes.max()) + 1 if len(ident_codes) else 0)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(size, size))
    _, labels = connected_components(graph, directed=False)
    return pd.DataFrame(
        {"source": records["source"], "source_id": records["source_id"], "cluster": labels[:n].astype(np.int64)}
    )


@dataclass(frozen=True)
class ContractGraph:
    records: pd.DataFrame  # source, source_id, ... one row per record
    links: pd.DataFrame  # rec (index into records), ident: the identifiers that may link


def contract_graph(con: duckdb.DuckDBPyConnection, *, plus_domains: frozenset[str], fanout: int = 5) -> ContractGraph:
    records, checkouts = _records(con, plus_domains)
    return ContractGraph(records, _identifiers(records, checkouts, fanout))


def reference_clusters(graph: ContractGraph) -> pd.DataFrame:
    return _components(graph.records, graph.links)


def ceiling_clusters(graph: ContractGraph, truth: pd.DataFrame) -> pd.DataFrame:
    records, links = graph.records, graph.links
    person = records.merge(truth, on=["source", "source_id"], how="left")["person_id"]
    # records outside the ground truth get a person of their own, so they link to nobody
    person = person.astype("Int64").astype("str").where(person.notna(), "record:" + records.index.astype("str"))
    links = links.assign(ident=person.loc[links["rec"]].to_numpy() + "|" + links["ident"].to_numpy())
    return _components(records, links)
