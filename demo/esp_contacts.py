"""ESP contacts: who is on the list, their status history, and the daily full-snapshot CSV files.

A contact's status over time is a log of (contact, ts, status) entries: the initial `subscribed`,
spontaneous unsubscribes/resubscribes/cleanings, and (appended by campaigns.py) unsubscribes, spam
reports and hard bounces caused by campaign emails. A snapshot dated D shows the state at D 00:00 UTC.
"""

from __future__ import annotations

import functools
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from rapport.demo.common import DAY, Period, iso_z, rng_for
from rapport.demo.contact_points import PLUS_PROVIDERS, type_emails, typo_emails
from rapport.demo.shop import P_TYPO

SNAPSHOT_DAILY_DAYS = 14


def _dash(s: np.ndarray) -> np.ndarray:
    """32 hex digits -> 8-4-4-4-12 UUID layout."""
    ser = pd.Series(s, dtype="str")
    return (
        ser.str.slice(0, 8)
        + "-"
        + ser.str.slice(8, 12)
        + "-"
        + ser.str.slice(12, 16)
        + "-"
        + ser.str.slice(16, 20)
        + "-"
        + ser.str.slice(20, 32)
    ).to_numpy(dtype=object)


def build_contacts(people: pd.DataFrame, seed: int, period: Period, taken: set[str]) -> pd.DataFrame:
    """One contact per subscribed person, a second contact for a few (a plus-tagged or work address)."""
    rng = rng_for(seed, "esp-contacts")
    esp = people[people["esp"]].reset_index(drop=True)
    created = esp["active_from"].to_numpy() + rng.exponential(3 * DAY, size=len(esp)).astype("int64")
    prim = pd.DataFrame({"person_id": esp["person_id"], "created_ts": created, "second": False})
    dup = people[people["dup_contact"]].reset_index(drop=True)
    created2 = dup["active_from"].to_numpy() + rng.exponential(120 * DAY, size=len(dup)).astype("int64") + DAY
    sec = pd.DataFrame({"person_id": dup["person_id"], "created_ts": created2, "second": True})
    c = pd.concat([prim, sec], ignore_index=True)
    c = c[c["created_ts"] < period.end_ts - 2 * DAY]
    c = c.sort_values(["created_ts", "person_id"], kind="stable").reset_index(drop=True)
    n = len(c)
    pp = people.set_index("person_id").loc[c["person_id"]].reset_index()

    local, domain = pp["email_local"].copy(), pp["email_domain"].copy()
    has2 = pp["email2_local"].notna().to_numpy()
    is2 = c["second"].to_numpy()
    # account holders who accept marketing reach the ESP through the shop's sync, under their account's
    # address; others sign up on a form, some with their work address; a second contact takes the other one
    synced = pp["accepts_marketing"].to_numpy() & ~is2
    work = has2 & (((rng.random(n) < 0.12) & ~synced) ^ is2)
    local[work], domain[work] = pp["email2_local"][work], pp["email2_domain"][work]
    email = type_emails(rng, local, domain, p_caps=0.08, p_space=0.0, p_plus=0.06, p_dots=0.02, p_googlemail=0.005)
    # a second contact without a work address: the same mailbox signed up again with a plus-tag
    retag = is2 & ~has2
    plus_ok = domain.isin(list(PLUS_PROVIDERS)).to_numpy()
    email[retag & plus_ok] = (local[retag & plus_ok] + "+newsletter@" + domain[retag & plus_ok]).to_numpy()
    keep = ~(retag & ~plus_ok)
    bad = rng.random(n) < P_TYPO
    email[bad] = typo_emails(rng, local[bad], domain[bad], taken).to_numpy()
    c["email"], c["bad"] = email, bad
    country = pp["country"].to_numpy().astype(str)
    native = ~np.isin(country, ["US", "GB", "DE", "FR"]) & (rng.random(n) < 0.5)
    latin = np.isin(country, ["US", "GB", "DE", "FR"])
    first = pp["given_roman"].str.capitalize().where(~native, pp["given"])
    last = pp["family_roman"].str.capitalize().where(~native, pp["family"])
    first[latin], last[latin] = pp["given"][latin], pp["family"][latin]
    blank = rng.random(n) < 0.15  # newsletter forms often ask for the address only
    first[blank], last[blank] = None, None
    c["first_name"], c["last_name"] = first, last
    c = c[keep].reset_index(drop=True)
    # plus-tag retags and random typing can coincide with another contact's exact address: drop those
    c = c[~c["email"].str.strip().str.lower().duplicated()].reset_index(drop=True)
    c["contact_idx"] = np.arange(len(c), dtype="int64")
    c["contact_id"] = _dash(_hex32(rng, len(c)))
    return c


def _hex32(rng: np.random.Generator, n: int) -> np.ndarray:
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # looks like a UUID v4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexd = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    h = np.empty((n, 32), dtype=np.uint8)
    h[:, 0::2], h[:, 1::2] = hexd[raw >> 4], hexd[raw & 15]
    return np.ascontiguousarray(h).view("S32").ravel().astype("U32")


def initial_log(contacts: pd.DataFrame, seed: int, period: Period) -> pd.DataFrame:
    """Status log without campaign effects: subscribe at creation, spontaneous changes, and edits that
    only move updated_at (status None)."""
    rng = rng_for(seed, "esp-contact-log")
    n = len(contacts)
    idx = contacts["contact_idx"].to_numpy()
    created = contacts["created_ts"].to_numpy()
    unsub = created + rng.exponential(1200 * DAY, size=n).astype("int64")
    resub = unsub + rng.exponential(60 * DAY, size=n).astype("int64")
    resub_ok = rng.random(n) < 0.1
    cleaned = created + rng.exponential(4000 * DAY, size=n).astype("int64")
    edit = created + rng.exponential(200 * DAY, size=n).astype("int64")
    parts = [
        (idx, created, "subscribed"),
        (idx, unsub, "unsubscribed"),
        (idx[resub_ok], resub[resub_ok], "subscribed"),
        (idx, cleaned, "cleaned"),
        (idx, edit, None),
    ]
    log = pd.concat([pd.DataFrame({"contact_idx": i, "ts": t, "status": s}) for i, t, s in parts], ignore_index=True)
    log = log[log["ts"] < period.end_ts]
    # a cleaned address stays cleaned: later spontaneous entries for it are dropped
    return _after_cleaned_dropped(log)


def _after_cleaned_dropped(log: pd.DataFrame) -> pd.DataFrame:
    log = log.sort_values(["contact_idx", "ts"], kind="stable").reset_index(drop=True)
    cl = log[log["status"] == "cleaned"].groupby("contact_idx")["ts"].min()
    first_clean = log["contact_idx"].map(cl).fillna(np.iinfo("int64").max).to_numpy()
    return log[log["ts"].to_numpy() <= first_clean].reset_index(drop=True)


class _Sorted:
    """Entries sorted by (contact, ts): each contact's entries before t are a prefix of its rows."""

    def __init__(self, contact: np.ndarray, ts: np.ndarray, n_contacts: int) -> None:
        self.order = np.lexsort((ts, contact))
        self.contact, self.ts = contact[self.order], ts[self.order]
        self.start = np.searchsorted(self.contact, np.arange(n_contacts))
        self.n = n_contacts

    def last_before(self, t: int) -> np.ndarray:
        """Position (in sorted order) of each contact's last entry before t; -1 if none."""
        count = np.bincount(self.contact[self.ts < t], minlength=self.n)
        return np.where(count > 0, self.start + count - 1, -1)


class LogIndex:
    """The status log, sorted once, for fast "state at time t" queries over all contacts."""

    def __init__(self, log: pd.DataFrame, n_contacts: int) -> None:
        contact, ts = log["contact_idx"].to_numpy(), log["ts"].to_numpy()
        status = log["status"].to_numpy(dtype=object)
        has = log["status"].notna().to_numpy()
        self.n = n_contacts
        self.all = _Sorted(contact, ts, n_contacts)
        self.st = _Sorted(contact[has], ts[has], n_contacts)
        self.st_values = status[has][self.st.order]

    def state_at(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        status = np.full(self.n, None, dtype=object)
        ls = self.st.last_before(t)
        ok = ls >= 0
        status[ok] = self.st_values[ls[ok]]
        la = self.all.last_before(t)
        updated = np.where(la >= 0, self.all.ts[np.maximum(la, 0)], 0)
        return status, updated


def state_at(log: pd.DataFrame, n_contacts: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(status, updated_ts) of every contact at time t: the last status entry and the last entry of any
    kind strictly before t. Status is None for contacts not yet created."""
    return LogIndex(log, n_contacts).state_at(t)


def snapshot_dates(period: Period) -> list[date]:
    """Daily for the last 14 days (to `end` inclusive), plus the 1st of each earlier month."""
    daily = [period.end - timedelta(days=k) for k in range(SNAPSHOT_DAILY_DAYS - 1, -1, -1)]
    monthly = []
    d = date(period.start.year, period.start.month, 1)
    while d < daily[0]:
        if d > period.start:
            monthly.append(d)
        d = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return monthly + daily


def write_contact_snapshots(esp_root: Path, contacts: pd.DataFrame, log: pd.DataFrame, period: Period) -> int:
    out = esp_root / "contacts"
    out.mkdir(parents=True, exist_ok=True)
    index = LogIndex(log, len(contacts))
    base = contacts[["contact_id", "email", "first_name", "last_name"]].copy()
    base["created_at"] = iso_z(contacts["created_ts"].to_numpy())
    files = 0
    for d in snapshot_dates(period):
        t = period.start_ts + (d - period.start).days * DAY
        status, updated = index.state_at(t)
        m = (contacts["created_ts"].to_numpy() < t) & (status != None)  # noqa: E711 (elementwise)
        snap = base[m].copy()
        snap.insert(4, "status", status[m])
        snap["updated_at"] = iso_z(updated[m])
        write_csv(snap, out / f"contacts_{d:%Y%m%d}.csv")
        files += 1
    return files


@functools.cache
def _duckdb() -> duckdb.DuckDBPyConnection:
    return duckdb.connect(config={"threads": 1})  # one in-memory connection: connecting costs ~20 ms


def write_csv(df: pd.DataFrame, path: Path) -> None:
    """CSV with a header, quotes only where needed, empty for null (DuckDB's writer: fast at 1M rows)."""
    con = _duckdb().cursor()
    try:
        con.register("frame", pa.Table.from_pandas(df, preserve_index=False))
        con.execute(f"copy (select * from frame) to '{path}' (header, delimiter ',')")
        con.unregister("frame")
    finally:
        con.close()
