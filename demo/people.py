"""The ground-truth population: who each person is, how they buy, and which systems know them.

One row per real person (`person_id` 0..N-1). Every source record the generator writes is derived from one
of these rows, which is what ground_truth/identities.parquet records.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, Period, pick, rng_for
from rapport.demo.contact_points import (
    e164,
    email_locals,
    make_phones,
    make_unique,
    normalize_emails,
    personal_domains,
)
from rapport.demo.names import COMPANIES, NAMES

COUNTRIES = ["US", "KR", "GB", "TH", "CN", "DE", "FR"]
COUNTRY_SHARE = [33, 22, 10, 11, 10, 8, 6]
CATEGORIES = ["account_buyer", "guest_buyer", "newsletter", "account_only"]
CATEGORY_SHARE = [44, 21, 28, 7]
MEAN_ORDER_GAP_DAYS = 50.0  # mean of the per-person order rate while active
MEAN_LIFETIME_DAYS = 300.0
SHARED_GROUP_SIZE = 7  # more than marts' max_identifier_fanout (5), so the shared address links nobody
SHARED_KINDS = ["info", "orders", "office", "purchasing", "admin"]


def _names(rng: np.random.Generator, country: np.ndarray) -> pd.DataFrame:
    n = len(country)
    cols = {k: np.empty(n, dtype=object) for k in ("given", "family", "given_roman", "family_roman")}
    for c, (given, family) in NAMES.items():
        m = country == c
        k = int(m.sum())
        g = rng.integers(0, len(given), size=k)
        f = rng.integers(0, len(family), size=k)
        cols["given"][m] = [given[i][0] for i in g]
        cols["given_roman"][m] = [given[i][1] for i in g]
        cols["family"][m] = [family[i][0] for i in f]
        cols["family_roman"][m] = [family[i][1] for i in f]
    return pd.DataFrame({k: pd.Series(v, dtype="str") for k, v in cols.items()})


def _growth_times(rng: np.random.Generator, n: int, period: Period, growth: float = 1.5) -> np.ndarray:
    """Start times with density rising linearly over the period (a growing shop)."""
    u = rng.random(n)
    x = (-1 + np.sqrt(1 + 2 * growth * u * (1 + growth / 2))) / growth
    return (period.start_ts + x * (period.end_ts - period.start_ts - DAY)).astype("int64")


def named_people(
    rng: np.random.Generator, n: int, first_id: int, taken: set[str] | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """n people (person_id from first_id): country, names (native and romanised) and a personal address,
    unique after normalisation and none of `taken`; also the countries as an array."""
    country = pick(rng, COUNTRIES, COUNTRY_SHARE, n).astype(str)
    p = _names(rng, country)
    p.insert(0, "person_id", np.arange(first_id, first_id + n, dtype="int64"))
    p.insert(1, "country", pd.Series(country, dtype="str"))
    domain = personal_domains(rng, country)
    local = email_locals(rng, p["given_roman"], p["family_roman"], domain)
    p["email_domain"] = domain
    p["email_local"] = make_unique(rng, local, domain, taken)
    return p, country


def build_people(n: int, seed: int, period: Period) -> pd.DataFrame:
    rng = rng_for(seed, "people")
    p, country = named_people(rng, n, 0)
    # a second (work) address for some: records under it link to the person only through a phone or
    # the helpdesk's external_id
    has2 = rng.random(n) < 0.15
    company = pd.Series(pick(rng, COMPANIES, [1] * len(COMPANIES), n), dtype="str")
    local2 = (p["given_roman"] + "." + p["family_roman"]).where(
        rng.random(n) < 0.7, p["given_roman"].str[0] + p["family_roman"]
    )
    taken = set(normalize_emails(p["email_local"] + "@" + p["email_domain"]))
    local2 = make_unique(rng, local2, company, taken)
    p["email2_local"] = local2.where(has2, None)
    p["email2_domain"] = company.where(has2, None)

    # phones: most people have a mobile; households share one number (a landline where planned)
    has_phone = rng.random(n) < 0.8
    landline = rng.random(n) < 0.15
    nsn = make_phones(rng, country, landline)
    p["phone_nsn"] = nsn.where(has_phone, None)
    p["household_of"] = _households(rng, country, has_phone)
    shared = p["household_of"].to_numpy() >= 0
    src = p["household_of"].to_numpy()[shared]
    p.loc[shared, "phone_nsn"] = p["phone_nsn"].to_numpy()[src]
    p.loc[shared, "family"] = p["family"].to_numpy()[src]
    p.loc[shared, "family_roman"] = p["family_roman"].to_numpy()[src]
    p["phone_e164"] = e164(country, p["phone_nsn"]).where(p["phone_nsn"].notna(), None)

    # behaviour
    category = pick(rng, CATEGORIES, CATEGORY_SHARE, n).astype(str)
    p["category"] = pd.Series(category, dtype="str")
    buyer = np.isin(category, ["account_buyer", "guest_buyer"])
    p["has_account"] = np.isin(category, ["account_buyer", "account_only"])
    a = _growth_times(rng, n, period)
    life = rng.exponential(MEAN_LIFETIME_DAYS * DAY, size=n).astype("int64")
    p["active_from"] = a
    p["active_to"] = np.minimum(a + life, period.end_ts)
    lam = rng.gamma(0.7, (1 / MEAN_ORDER_GAP_DAYS) / 0.7, size=n)
    p["order_rate"] = np.where(buyer, lam, 0.0)  # natural orders per day at seasonality 1.0
    p["accepts_marketing"] = p["has_account"].to_numpy() & (rng.random(n) < 0.7)
    p["esp"] = (
        (category == "newsletter")
        | p["accepts_marketing"].to_numpy()
        | ((category == "guest_buyer") & (rng.random(n) < 0.4))
    )
    p["helpdesk"] = np.where(buyer, rng.random(n) < 0.3, rng.random(n) < 0.03)
    p["p_open"] = rng.beta(1.5, 4.0, size=n)
    p["p_click"] = rng.beta(1.5, 6.0, size=n)
    p["mpp"] = rng.random(n) < np.where(p["email_domain"].to_numpy() == "icloud.com", 0.9, 0.3)
    p["gb_pays_eur"] = (country == "GB") & (rng.random(n) < 0.3)
    p["dup_account"] = p["has_account"].to_numpy() & (rng.random(n) < 0.015) & p["phone_nsn"].notna().to_numpy()
    p["dup_contact"] = p["esp"].to_numpy() & (rng.random(n) < 0.04)
    p["shared_address"] = _shared_groups(rng, p)
    return p


def _households(rng: np.random.Generator, country: np.ndarray, has_phone: np.ndarray) -> np.ndarray:
    """~2% of people share the phone of another person of the same country (-1: nobody)."""
    n = len(country)
    out = np.full(n, -1, dtype="int64")
    chosen = np.flatnonzero(has_phone & (rng.random(n) < 0.02))
    for c in COUNTRIES:
        idx = chosen[country[chosen] == c]
        idx = idx[rng.permutation(len(idx))]
        pairs = len(idx) // 2
        out[idx[1 : 2 * pairs : 2]] = idx[0 : 2 * pairs : 2]
    return out


def _shared_groups(rng: np.random.Generator, p: pd.DataFrame) -> pd.Series:
    """Groups of colleagues who all use one shared company inbox (info@...) on their shop accounts."""
    n = len(p)
    groups = max(2, round(n / 900))
    out = pd.Series([None] * n, dtype="str")
    cand = np.flatnonzero((p["category"] == "account_buyer").to_numpy() & p["household_of"].lt(0).to_numpy())
    cand = cand[rng.permutation(len(cand))][: groups * SHARED_GROUP_SIZE]
    for g in range(len(cand) // SHARED_GROUP_SIZE):
        members = cand[g * SHARED_GROUP_SIZE : (g + 1) * SHARED_GROUP_SIZE]
        company = COMPANIES[g % len(COMPANIES)]
        if g >= len(COMPANIES):
            name, tld = company.split(".", 1)
            company = f"{name}{g // len(COMPANIES)}.{tld}"
        out.iloc[members] = f"{SHARED_KINDS[g % len(SHARED_KINDS)]}@{company}"
    return out


def true_address_keys(people: pd.DataFrame) -> set[str]:
    """Normalised form of every real address (personal, work, shared): typos must not land on one."""
    keys = set(normalize_emails(people["email_local"] + "@" + people["email_domain"]))
    has2 = people["email2_local"].notna()
    keys |= set(normalize_emails(people["email2_local"][has2] + "@" + people["email2_domain"][has2]))
    keys |= set(people["shared_address"].dropna())
    return keys
