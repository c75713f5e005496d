"""Ground truth of the demo generator: it covers every identity record exactly once, agrees with the
sources, and the identity noise has the shapes marts.md's matching rules are meant to face."""

from __future__ import annotations

import csv
import gzip
import json
import math
import sqlite3
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import phonenumbers
import pytest

from rapport.demo.contact_points import normalize_email
from rapport.demo.generate import generate
from rapport.demo.names import COMPANIES

PARAMS = {"people": 800, "seed": 5, "end": date(2025, 9, 15), "months": 15}
VALID = ("paid", "fulfilled", "partially_refunded")


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("demo_truth")
    generate(d, **PARAMS)
    return d


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def latest_users(out: Path) -> dict[int, dict]:
    with gzip.open(out / "helpdesk/users.jsonl.gz", "rt", encoding="utf-8") as fh:
        items = [json.loads(line) for line in fh]
    return {u["id"]: u for u in sorted(items, key=lambda u: u["updated_at"])}


def source_records(out: Path) -> dict[str, dict[str, dict]]:
    """source -> source_id -> fields (email, phone, country), read from the source files themselves."""
    con = sqlite3.connect(out / "shop.db")
    recs: dict[str, dict[str, dict]] = defaultdict(dict)
    for cid, email, phone, country in con.execute("select id, email, phone, country from customers"):
        recs["orders.customer"][str(cid)] = {"email": email, "phone": phone, "country": country}
    for oid, email, phone in con.execute("select id, email, phone from orders where customer_id is null"):
        recs["orders.guest_order"][str(oid)] = {"email": email, "phone": phone, "country": None}
    for uid, u in latest_users(out).items():
        if u["role"] == "end-user":
            recs["helpdesk.user"][str(uid)] = {
                "email": u["email"],
                "phone": u["phone"],
                "country": None,
                "external_id": u["external_id"],
            }
    for f in sorted((out / "esp/contacts").glob("contacts_*.csv")):
        for r in read_csv(f):
            recs["esp.contact"][r["contact_id"]] = {"email": r["email"], "phone": None, "country": None}
    for f in sorted((out / "esp/audiences").glob("*.csv")):
        for r in read_csv(f):
            recs["esp.audience_member"][f"{f.stem}:{r['email']}"] = {
                "email": r["email"],
                "phone": None,
                "country": None,
                "group": r["group"],
            }
    return recs


def e164(phone: str | None, country: str | None) -> str | None:
    if not phone:
        return None
    try:
        n = phonenumbers.parse(phone, country if country else None)
    except phonenumbers.NumberParseException:
        return None
    return (
        phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164) if phonenumbers.is_valid_number(n) else None
    )


def test_identities_cover_every_record_exactly_once(out: Path) -> None:
    ident = pd.read_parquet(out / "ground_truth/identities.parquet")
    assert list(ident.columns) == ["source", "source_id", "person_id"]
    assert not ident.duplicated(["source", "source_id"]).any()
    recs = source_records(out)
    assert set(ident["source"]) == set(recs)
    for source, by_id in recs.items():
        assert set(ident.loc[ident["source"] == source, "source_id"]) == set(by_id), source
    users = latest_users(out)
    staff = {str(u["id"]) for u in users.values() if u["role"] != "end-user"}
    assert staff and not staff & set(ident["source_id"])


def test_truth_agrees_with_cross_system_links(out: Path) -> None:
    ident = pd.read_parquet(out / "ground_truth/identities.parquet")
    person = dict(zip(zip(ident["source"], ident["source_id"], strict=True), ident["person_id"], strict=True))
    recs = source_records(out)
    linked = 0
    for uid, r in recs["helpdesk.user"].items():
        if r["external_id"] is not None:
            assert person[("helpdesk.user", uid)] == person[("orders.customer", r["external_id"])]
            linked += 1
    assert linked > 10
    # an audience row and the contact with that exact address are the same person
    contact_person = {r["email"]: person[("esp.contact", cid)] for cid, r in recs["esp.contact"].items()}
    for sid, r in recs["esp.audience_member"].items():
        assert person[("esp.audience_member", sid)] == contact_person[r["email"]]


def test_identity_noise(out: Path) -> None:
    ident = pd.read_parquet(out / "ground_truth/identities.parquet")
    person = dict(zip(zip(ident["source"], ident["source_id"], strict=True), ident["person_id"], strict=True))
    recs = source_records(out)
    account_like = ("orders.customer", "helpdesk.user", "esp.contact")
    email_people: dict[str, set[int]] = defaultdict(set)
    email_accounts: dict[str, int] = defaultdict(int)
    phone_people: dict[str, set[int]] = defaultdict(set)
    phone_emails: dict[str, set[str]] = defaultdict(set)
    keys: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    for source, by_id in recs.items():
        for sid, r in by_id.items():
            p = person[(source, sid)]
            ek = normalize_email(r["email"])
            pk = e164(r["phone"], r["country"] if source == "orders.customer" else None)
            keys[(source, sid)] = (ek, pk)
            if ek:
                email_people[ek].add(p)
                email_accounts[ek] += source in account_like
            if pk:
                phone_people[pk].add(p)
                if ek:
                    phone_emails[pk].add(ek)
    # an address names one person, except shared inboxes carried by more than 5 account records
    shared = {k for k, ps in email_people.items() if len(ps) > 1}
    assert shared and all(email_accounts[k] > 5 for k in shared)
    # a phone names one person, except households (two people) and the shop's own line on phone orders
    multi = {k: ps for k, ps in phone_people.items() if len(ps) > 1}
    assert any(len(ps) == 2 for ps in multi.values())
    crowded = [k for k, ps in multi.items() if len(ps) > 2]
    assert crowded == ["+16465550199"] and len(phone_emails["+16465550199"]) > 5
    # people with two addresses (work and personal)
    person_keys: dict[int, set[str]] = defaultdict(set)
    for (source, sid), (ek, _) in keys.items():
        if ek and ek not in shared:
            person_keys[person[(source, sid)]].add(ek)
    assert sum(len(v) > 1 for v in person_keys.values()) > 10
    # guest orders by account holders under another address with the account's phone in international form
    cust_phone = {person[("orders.customer", sid)]: keys[("orders.customer", sid)] for sid in recs["orders.customer"]}
    found = 0
    for sid, r in recs["orders.guest_order"].items():
        p = person[("orders.guest_order", sid)]
        ek, pk = keys[("orders.guest_order", sid)]
        if p in cust_phone and pk and r["phone"].startswith("+") and pk == cust_phone[p][1] and ek != cust_phone[p][0]:
            found += 1
    assert found > 0
    # genuinely unlinkable records: an address nobody else has and no phone, from a person with other records
    email_records: dict[str, int] = defaultdict(int)
    for ek, _ in keys.values():
        if ek:
            email_records[ek] += 1
    people_records: dict[int, int] = defaultdict(int)
    for k in keys:
        people_records[person[k]] += 1
    lonely = [
        k
        for k, (ek, pk) in keys.items()
        if k[0] != "esp.audience_member"
        and ek
        and email_records[ek] == 1
        and pk is None
        and people_records[person[k]] > 1
        and k[0] != "helpdesk.user"
    ]
    non_audience = sum(1 for k in keys if k[0] != "esp.audience_member")
    assert 0.001 <= len(lonely) / non_audience <= 0.03


def test_source_system_habits_behind_identity_links(out: Path) -> None:
    """Two habits of the real systems the demo models (docs/identity.md, "The demo's identity noise"):
    a helpdesk end-user without an email is a caller profile whose phone is the caller ID in E.164, while
    phones typed into other profiles stay free text; an ESP contact of a shop customer who accepts
    marketing arrives through the shop's sync, under the account's address, while form sign-ups and
    second contacts may use another one (a work address)."""
    recs = source_records(out)
    callers = [r for r in recs["helpdesk.user"].values() if r["email"] is None]
    assert len(callers) >= 3
    assert all(r["phone"] and r["phone"] == e164(r["phone"], None) for r in callers)
    typed = [r["phone"] for r in recs["helpdesk.user"].values() if r["email"] and r["phone"]]
    assert any(not p.startswith("+") for p in typed)

    ident = pd.read_parquet(out / "ground_truth/identities.parquet")
    person = dict(zip(zip(ident["source"], ident["source_id"], strict=True), ident["person_id"], strict=True))
    con = sqlite3.connect(out / "shop.db")
    # accounts under a shared inbox (info@...) are left out: the demo signs those colleagues up on a form
    marketing = {
        person[("orders.customer", str(cid))]: normalize_email(email)
        for cid, email in con.execute(
            "select id, email from customers where accepts_marketing = 1 and email is not null and lower(trim(email)) "
            "not in (select lower(trim(email)) from customers where email is not null group by 1 having count(*) > 1) "
            "order by id desc"
        )
    }
    contact_keys: dict[int, set[str | None]] = defaultdict(set)
    for sid, r in recs["esp.contact"].items():
        contact_keys[person[("esp.contact", sid)]].add(normalize_email(r["email"]))
    synced = [p for p in marketing if p in contact_keys]
    assert len(synced) > 50
    # every such person has a contact under the account's address, unless it was misspelt (P_TYPO): never
    # only a work address
    missing = [p for p in synced if marketing[p] not in contact_keys[p]]
    assert len(missing) <= 0.02 * len(synced)
    assert not [k for p in missing for k in contact_keys[p] if k and k.rsplit("@", 1)[-1] in COMPANIES]
    # form sign-ups and second contacts still use work addresses
    work = [r for r in recs["esp.contact"].values() if r["email"].strip().lower().rsplit("@", 1)[-1] in COMPANIES]
    assert len(work) >= 3


def test_campaign_truth(out: Path) -> None:
    truth = pd.read_parquet(out / "ground_truth/campaigns.parquet")
    snap = read_csv(sorted((out / "esp/campaigns").glob("campaigns_*.csv"))[-1])
    assert sorted(truth["campaign_id"]) == sorted(c["campaign_id"] for c in snap)
    pct = {c["campaign_id"]: float(c["holdout_pct"]) for c in snap}
    for row in truth.itertuples():
        aud = read_csv(out / "esp/audiences" / f"{row.campaign_id}.csv")
        control = sum(a["group"] == "control" for a in aud)
        assert row.has_control == (control > 0) == (pct[row.campaign_id] > 0)
        assert (row.treatment_size, row.control_size) == (len(aud) - control, control)
        assert 0.0 <= row.true_uplift_abs <= row.uplift_if_delivered
        assert row.expected_treatment_rate - row.expected_control_rate == pytest.approx(row.true_uplift_abs, abs=1e-12)
    zero = truth[truth["uplift_if_delivered"] == 0]
    assert len(zero) >= 3 and (zero["true_uplift_abs"] == 0).all()
    assert (zero["true_incremental_revenue_per_recipient_usd"] == 0).all() and (zero["caused_orders"] == 0).all()
    effect = truth[truth["uplift_if_delivered"] > 0]
    # a caused order is worth tens of dollars: per recipient, the uplift times that (delivered members only)
    per_order = effect["true_incremental_revenue_per_recipient_usd"] / effect["uplift_if_delivered"]
    assert (per_order > 10).all() and (per_order < 150).all(), per_order
    assert (truth.loc[truth["uplift_if_delivered"] > 0, "true_uplift_abs"] > 0).all()
    assert truth["uplift_if_delivered"].nunique() >= 4
    summary = json.loads((out / "ground_truth/summary.json").read_text())
    assert summary["parameters"]["people"] == PARAMS["people"]
    assert summary["counts"]["campaigns"] == len(truth)


@pytest.mark.slow
def test_default_size_conversions_match_the_model(tmp_path: Path) -> None:
    """At the default size: audiences of useful size, and the conversions the data shows agree with the
    expected rates the ground truth claims (a check of the exact-uplift model). Generation's speed is
    bench/run.py's `generate` stage."""
    s = generate(tmp_path, people=3000, seed=7, end=date(2025, 9, 15))
    truth = pd.read_parquet(tmp_path / "ground_truth/campaigns.parquet")
    sizes = truth["treatment_size"] + truth["control_size"]
    assert sizes.median() >= 300 and sizes.max() >= 1000
    ident = pd.read_parquet(tmp_path / "ground_truth/identities.parquet")
    con = sqlite3.connect(tmp_path / "shop.db")
    orders = pd.read_sql(f"select id, customer_id, created_at from orders where status in {VALID}", con)
    cust_person = ident[ident["source"] == "orders.customer"].set_index("source_id")["person_id"]
    guest_person = ident[ident["source"] == "orders.guest_order"].set_index("source_id")["person_id"]
    orders["person_id"] = [
        cust_person[str(int(c))] if c == c and c is not None else guest_person[str(i)]
        for i, c in zip(orders["id"], orders["customer_id"], strict=True)
    ]
    orders["ts"] = [
        datetime.fromisoformat(t.replace("Z", "+00:00").replace(" ", "T")).timestamp() for t in orders["created_at"]
    ]
    by_person = orders.groupby("person_id")["ts"].apply(sorted).to_dict()
    aud_person = ident[ident["source"] == "esp.audience_member"].set_index("source_id")["person_id"]
    observed = expected = variance = 0.0
    for row in truth.itertuples():
        send = row.send_at.timestamp() if row.send_at.tzinfo else row.send_at.tz_localize("UTC").timestamp()
        for a in read_csv(tmp_path / "esp/audiences" / f"{row.campaign_id}.csv"):
            p = aud_person[f"{row.campaign_id}:{a['email']}"]
            observed += any(send <= t < send + 7 * 86400 for t in by_person.get(p, []))
            rate = row.expected_treatment_rate if a["group"] == "treatment" else row.expected_control_rate
            expected += rate
            variance += rate * (1 - rate)
    assert abs(observed - expected) < 4 * math.sqrt(variance) + 2, (observed, expected, s.counts)
