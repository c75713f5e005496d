"""Orders and order items.

Natural orders: each person buys as a Poisson process with rate `order_rate * seasonality(day)` while
active, drawn by thinning (candidates at the peak rate, kept with probability seasonality). Each order's
fate (`destiny`) is drawn independently, so valid orders form a thinned Poisson process with rate
`P_VALID * order_rate * seasonality`: that is what makes the campaigns' true uplift exact (truth.py).
Campaign-caused orders come from campaigns.py and are always valid.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, Period, pick, rng_for
from rapport.demo.contact_points import type_emails, type_phones, typo_emails
from rapport.demo.shop import P_TYPO, row_styles

# destiny codes: what finally happens to an order
OK, PARTIAL, REFUNDED, CANCELLED, PENDING = 0, 1, 2, 3, 4
DESTINY_P = [0.86, 0.03, 0.03, 0.05, 0.03]
P_VALID = DESTINY_P[OK] + DESTINY_P[PARTIAL]  # paid/fulfilled or partially refunded
# seconds from one step to the next, drawn uniformly in [low, high)
PAY_AFTER, FULFIL_AFTER = (60, 1_800), (12 * HOUR, 96 * HOUR)  # paid after created; fulfilled after paid
REFUND_AFTER, CANCEL_AFTER = (DAY, 8 * DAY), (600, 48 * HOUR)  # refunded after fulfilled; cancelled after created
MAX_SETTLE_DAYS = 13  # every order reaches its final status within this many days (refunds are the slowest)
ATTRIBUTION_HOURS = 120
SHOP_PHONE_NSN = "6465550199"  # the shop's own line, typed by agents on phone orders (+1 646-555-0199)
JUNK_PHONES = ["000-0000", "010-0000-0000", "0000000000", "n/a", "-", "123"]

CURRENCY_OF = {"US": "USD", "GB": "USD", "KR": "KRW", "TH": "THB", "CN": "CNY", "DE": "EUR", "FR": "EUR"}
CUR_INDEX = {"USD": 0, "KRW": 1, "THB": 2, "CNY": 3, "EUR": 4}
SHIPPING = np.array([599, 300_000, 6_000, 1_200, 495])  # minor units x100 (KRW: 3,000 won)
FREE_SHIPPING_FROM = np.array([5_000, 5_000_000, 150_000, 30_000, 4_500])
MINOR = np.array([1, 100, 1, 1, 1])  # rounding step in cents: KRW has no minor unit
TAX_RATE = {"KR": 0.10, "GB": 0.20, "DE": 0.19, "FR": 0.20, "TH": 0.07, "CN": 0.13}
US_SALES_TAX = [0.0, 0.04, 0.0625, 0.0725, 0.08875, 0.1025]
DISCOUNTS = {"WELCOME10": 0.10, "SPRING15": 0.15, "VIP20": 0.20, "SORRY5": 0.05, "FREESHIP": -1.0}

CATALOG = [  # sku, name, category, USD price
    ("SK-TNR-150", "Green Tea Hydrating Toner 150ml", "Skincare", 24),
    ("SK-SRM-030", "Vitamin C Serum 30ml", "Skincare", 38),
    ("SK-CRM-050", "Ceramide Barrier Cream 50ml", "Skincare", 32),
    ("SK-SUN-050", "Daily Sunscreen SPF50 50ml", "Skincare", 22),
    ("SK-MSK-010", "Sheet Mask Set (10)", "Skincare", 18),
    ("SK-CLN-200", "Low pH Gel Cleanser 200ml", "Skincare", 16),
    ("SK-ESS-100", "Snail Mucin Essence 100ml", "Skincare", 28),
    ("SK-EYE-020", "Retinal Eye Cream 20ml", "Skincare", 44),
    ("MU-CSH-015", "Cushion Foundation 15g", "Makeup", 34),
    ("MU-TNT-004", "Water Lip Tint", "Makeup", 14),
    ("MU-BRW-001", "Brow Pencil", "Makeup", 12),
    ("MU-MSC-008", "Curling Mascara", "Makeup", 19),
    ("MU-PAL-009", "Eyeshadow Palette (9)", "Makeup", 42),
    ("MU-BLS-005", "Cream Blush", "Makeup", 21),
    ("HR-SHP-300", "Scalp Care Shampoo 300ml", "Hair", 20),
    ("HR-OIL-070", "Camellia Hair Oil 70ml", "Hair", 26),
    ("HR-MSK-200", "Protein Hair Mask 200ml", "Hair", 23),
    ("FR-EDP-050", "Eau de Parfum Fig 50ml", "Fragrance", 78),
    ("FR-EDP-030", "Eau de Parfum Yuzu 30ml", "Fragrance", 58),
    ("FR-CND-200", "Hinoki Candle 200g", "Fragrance", 36),
    ("BD-LTN-300", "Rice Body Lotion 300ml", "Body", 19),
    ("BD-SCR-250", "Sea Salt Body Scrub 250g", "Body", 17),
    ("BD-HND-050", "Hand Cream Trio", "Body", 15),
    ("TL-GUA-001", "Rose Quartz Gua Sha", "Tools", 29),
    ("TL-PAD-100", "Cotton Pads (100)", "Tools", 6),
    ("TL-BRS-003", "Brush Set (3)", "Tools", 31),
    ("GS-HOL-001", "Holiday Gift Set", "Gift sets", 89),
    ("GS-MIN-005", "Travel Minis (5)", "Gift sets", 35),
    ("GS-DUO-002", "Serum & Cream Duo", "Gift sets", 64),
    ("SK-TNP-070", "Exfoliating Toner Pads (70)", "Skincare", 25),
]


def _price_table() -> np.ndarray:
    """Shelf prices per product and currency, in cents, set once like a real price list."""
    usd = np.array([p[3] for p in CATALOG], dtype="float64")
    return np.stack(
        [
            usd * 100 - 1,  # USD 24 -> 23.99
            (np.round(usd * 1350, -3) - 100) * 100,  # KRW 24 -> 32,300 won
            (np.round(usd * 35, -1) - 1) * 100,  # THB 24 -> 839 baht
            (np.round(usd * 7.2) - 1) * 100,  # CNY 24 -> 172 yuan
            np.round(usd * 0.92) * 100 - 10,  # EUR 24 -> 21.90
        ],
        axis=1,
    ).astype("int64")


PRICES = _price_table()
POPULARITY = 1 / np.arange(1, len(CATALOG) + 1) ** 0.6


def natural_orders(people: pd.DataFrame, seed: int, period: Period, season: np.ndarray) -> pd.DataFrame:
    rng = rng_for(seed, "natural-orders")
    rate = people["order_rate"].to_numpy()
    a = people["active_from"].to_numpy()
    b = people["active_to"].to_numpy()
    span = np.maximum(b - a, 0)
    n = rng.poisson(rate * span / DAY)  # candidates at the peak rate (seasonality max is 1.0)
    pid = np.repeat(people["person_id"].to_numpy(), n)
    t = np.repeat(a, n) + rng.random(len(pid)) * np.repeat(span, n)
    day = ((t - period.start_ts) // DAY).astype("int64")
    keep = rng.random(len(pid)) < season[day]
    destiny = rng.choice(5, size=len(pid), p=DESTINY_P)
    return pd.DataFrame(
        {
            "person_id": pid[keep],
            "created_ts": np.floor(t[keep]).astype("int64"),
            "destiny": destiny[keep],
            "campaign_id": None,
            "utm": False,
        }
    )


def settle_times(rng: np.random.Generator, created: np.ndarray) -> tuple[np.ndarray, ...]:
    """When each order would be paid, fulfilled, refunded and cancelled (its destiny says which happen)."""
    n = len(created)
    paid = created + rng.integers(PAY_AFTER[0], PAY_AFTER[1], size=n)
    fulfilled = paid + rng.integers(FULFIL_AFTER[0], FULFIL_AFTER[1], size=n)
    refund = fulfilled + rng.integers(REFUND_AFTER[0], REFUND_AFTER[1], size=n)
    cancel = created + rng.integers(CANCEL_AFTER[0], CANCEL_AFTER[1], size=n)
    return paid, fulfilled, refund, cancel


def _statuses(rng: np.random.Generator, created: np.ndarray, destiny: np.ndarray, end_ts: int):
    """Status as seen at the export, last change time, cancellation time (0: none)."""
    n = len(created)
    paid, fulfilled, refund, cancel = settle_times(rng, created)
    status = np.full(n, "pending", dtype=object)
    updated = created.copy()
    cancelled = np.zeros(n, dtype="int64")
    settles = destiny <= REFUNDED
    for when, name in ((paid, "paid"), (fulfilled, "fulfilled")):
        m = settles & (when < end_ts)
        status[m], updated[m] = name, when[m]
    m = (destiny == PARTIAL) & (refund < end_ts)
    status[m], updated[m] = "partially_refunded", refund[m]
    m = (destiny == REFUNDED) & (refund < end_ts)
    status[m], updated[m] = "refunded", refund[m]
    m = (destiny == CANCELLED) & (cancel < end_ts)
    status[m], updated[m], cancelled[m] = "cancelled", cancel[m], cancel[m]
    return status, updated, cancelled


def build_orders(
    people: pd.DataFrame,
    customers: pd.DataFrame,
    natural: pd.DataFrame,
    caused: pd.DataFrame,
    clicks: pd.DataFrame,
    seed: int,
    period: Period,
    taken: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Assemble orders (ids in created order) with identities as typed, money, statuses and items."""
    rng = rng_for(seed, "orders")
    o = pd.concat([natural, caused], ignore_index=True)
    o = o.sort_values(["created_ts", "person_id"], kind="stable").reset_index(drop=True)
    n = len(o)
    o["id"] = np.arange(10_001, 10_001 + n, dtype="int64")
    pid = o["person_id"].to_numpy()
    ts = o["created_ts"].to_numpy()
    pp = people.set_index("person_id").loc[pid].reset_index()
    country = pp["country"].to_numpy().astype(str)

    # who checks out: the account (main or second), or as a guest
    n_people = len(people)
    main_id, main_at = np.full(n_people, -1, "int64"), np.zeros(n_people, "int64")
    sec_id, sec_at = np.full(n_people, -1, "int64"), np.zeros(n_people, "int64")
    first = ~customers["second"].to_numpy()
    main_id[customers["person_id"][first]] = customers["id"][first]
    main_at[customers["person_id"][first]] = customers["created_ts"][first]
    sec_id[customers["person_id"][~first]] = customers["id"][~first]
    sec_at[customers["person_id"][~first]] = customers["created_ts"][~first]
    u = rng.random((4, n))
    has2 = pp["email2_local"].notna().to_numpy()
    # account holders sometimes check out as guests, more often those with a work address (from work)
    as_guest = u[0] < np.where(has2, 0.2, 0.07)
    cust = np.where((main_id[pid] >= 0) & (main_at[pid] <= ts) & ~as_guest, main_id[pid], -1)
    use2 = (cust >= 0) & (sec_id[pid] >= 0) & (sec_at[pid] <= ts) & (u[1] < 0.35)
    cust = np.where(use2, sec_id[pid], cust)
    guest = cust < 0
    existing = guest & (main_id[pid] >= 0)  # an account holder checking out as a guest

    # checkout email and phone as typed
    local, domain = pp["email_local"].copy(), pp["email_domain"].copy()
    work = has2 & ((existing & (u[2] < 0.9)) | (guest & (u[2] < 0.1)))
    local[work], domain[work] = pp["email2_local"][work], pp["email2_domain"][work]
    email = type_emails(rng, local, domain, p_caps=0.1, p_space=0.04, p_plus=0.05, p_dots=0.03, p_googlemail=0.01)
    shared = guest & pp["shared_address"].notna().to_numpy() & (u[3] < 0.5)
    sh = pp["shared_address"][shared]
    email[shared] = type_emails(
        rng, sh.str.split("@").str[0], sh.str.split("@").str[1], p_caps=0.5, p_plus=0.0, p_dots=0.0, p_googlemail=0.0
    ).to_numpy()
    typo = guest & ~shared & (rng.random(n) < P_TYPO)
    email[typo] = typo_emails(rng, local[typo], domain[typo], taken).to_numpy()
    cust_email = customers.set_index("id")["email"]
    on_acc = ~guest
    same = on_acc & (rng.random(n) < 0.9)
    email[same] = cust_email.loc[cust[same]].to_numpy()

    has_phone = (
        pp["phone_nsn"].notna().to_numpy()
        & ~typo
        & (rng.random(n) < np.where(existing, 0.85, np.where(guest, 0.45, 0.3)))
    )
    intl = np.where(existing, rng.random(n) < 0.8, rng.random(n) < 0.5)
    phone = type_phones(rng, country, pp["phone_nsn"].fillna(""), intl)
    phone[~has_phone] = None
    # phone orders: an agent types the shop's own number; junk numbers typed to get past the form
    # (at least a dozen, so the shop's line always fans out over more than 5 addresses)
    cand = np.flatnonzero(guest & ~typo)
    k = min(len(cand), max(12, round(0.005 * len(cand))))
    pick_idx = np.sort(rng.choice(cand, size=k, replace=False))
    phone_order = np.zeros(n, dtype=bool)
    phone_order[pick_idx] = True
    intl_shop = rng.permutation(k) < int(np.ceil(0.8 * k))  # agents mostly type it in international form
    shop_phone = type_phones(rng, np.full(k, "US"), pd.Series([SHOP_PHONE_NSN] * k, dtype="str"), intl_shop)
    phone[pick_idx] = shop_phone.to_numpy()
    junk = guest & ~phone_order & (rng.random(n) < 0.003)
    phone[junk] = pick(rng, JUNK_PHONES, [1] * len(JUNK_PHONES), int(junk.sum()))

    o["customer_id"] = cust
    o["email"], o["phone"] = email, phone
    o["typo"], o["phone_order"] = typo, phone_order
    cur = pd.Series(country, dtype="str").map(CURRENCY_OF).to_numpy(dtype=object)
    cur[pp["gb_pays_eur"].to_numpy()] = "EUR"
    o["currency"] = cur
    o["status"], o["updated_ts"], o["cancelled_ts"] = _statuses(rng, ts, o["destiny"].to_numpy(), period.end_ts)
    o["style"] = row_styles(rng, n)
    _utm(rng, o, clicks, country)
    items = _money(rng, o, country)
    return o, items


def _utm(rng: np.random.Generator, o: pd.DataFrame, clicks: pd.DataFrame, country: np.ndarray) -> None:
    n = len(o)
    src = pick(rng, [None, "google", "instagram", "tiktok", "naver", "partner"], [45, 18, 12, 10, 8, 5], n)
    src[(src == "naver") & (country != "KR")] = "facebook"
    medium = pd.Series(src, dtype="str").map(
        {
            "google": "cpc",
            "instagram": "social",
            "tiktok": "social",
            "naver": "cpc",
            "facebook": "social",
            "partner": "referral",
        }
    )
    camp = pd.Series(src, dtype="str").map(
        {
            "google": "brand_search",
            "instagram": "ig_reels",
            "tiktok": "tt_spark",
            "naver": "naver_brand",
            "facebook": "fb_retarget",
            "partner": "partner_blog",
        }
    )
    utm_source, utm_medium, utm_campaign = pd.Series(src, dtype="str"), medium, camp
    # natural orders placed within 120 h after a click on a campaign email often carry its tags
    if len(clicks):
        nat = o["campaign_id"].isna().to_numpy()
        left = pd.DataFrame({"row": np.arange(n), "person_id": o["person_id"], "ts": o["created_ts"]})[nat]
        right = clicks.rename(columns={"timestamp": "ts"})[["person_id", "ts", "campaign_id"]]
        right = right.sort_values(["ts", "person_id"], kind="stable")
        hit = pd.merge_asof(
            left.sort_values("ts", kind="stable"),
            right,
            on="ts",
            by="person_id",
            direction="backward",
            tolerance=ATTRIBUTION_HOURS * HOUR,
        )
        hit = hit[hit["campaign_id"].notna()]
        hit = hit[rng.random(len(hit)) < 0.5]
        rows = hit["row"].to_numpy()
        utm_source.iloc[rows], utm_medium.iloc[rows] = "esp", "email"
        utm_campaign.iloc[rows] = hit["campaign_id"].to_numpy()
    tagged = o["utm"].to_numpy()
    utm_source[tagged], utm_medium[tagged] = "esp", "email"
    utm_campaign[tagged] = o["campaign_id"][tagged]
    phone_order = o["phone_order"].to_numpy()
    for s in (utm_source, utm_medium, utm_campaign):
        s[phone_order] = None
    o["utm_source"], o["utm_medium"], o["utm_campaign"] = utm_source, utm_medium, utm_campaign


def expected_net_total(
    seed: int, combos: list[tuple[str, str]], p_ok: float, draws: int = 20_000
) -> dict[tuple[str, str], float]:
    """Expected net amount (total - refunded_total, in the order's currency) of a campaign-caused order per
    (country, currency): a Monte Carlo mean over `draws` orders run through the same money model (_money)
    the generator uses, fulfilled with probability p_ok, else partially refunded (relative standard error
    about 0.5%). The ground truth's expected incremental revenue is built on it (truth.py)."""
    rng = rng_for(seed, "caused-order-value")
    out = {}
    for country, currency in combos:
        status = np.where(rng.random(draws) < p_ok, "fulfilled", "partially_refunded")
        o = pd.DataFrame(
            {
                "id": np.arange(draws),
                "currency": np.full(draws, currency, dtype=object),
                "campaign_id": "mc",
                "status": status.astype(object),
            }
        )
        _money(rng, o, np.full(draws, country))
        out[(country, currency)] = float(((o["total"] - o["refunded_total"]) / 100).mean())
    return out


def _round_minor(cents: np.ndarray, step: np.ndarray) -> np.ndarray:
    return (np.round(cents / step) * step).astype("int64")


def _money(rng: np.random.Generator, o: pd.DataFrame, country: np.ndarray) -> pd.DataFrame:
    """Items, then subtotal, discount, shipping, tax and total in integer cents (the total adds up exactly)."""
    n = len(o)
    ci = o["currency"].map(CUR_INDEX).to_numpy()
    k = 1 + np.minimum(rng.poisson(0.5, size=n), 4)
    order_idx = np.repeat(np.arange(n), k)
    m = len(order_idx)
    prod = rng.choice(len(CATALOG), size=m, p=POPULARITY / POPULARITY.sum())
    qty = rng.choice([1, 2, 3], size=m, p=[0.8, 0.15, 0.05])
    unit = PRICES[prod, ci[order_idx]]
    subtotal = np.bincount(order_idx, weights=qty * unit, minlength=n).round().astype("int64")
    step = MINOR[ci]

    code = pick(rng, [None, *DISCOUNTS], [82, 6, 4, 3, 2, 3], n)
    caused = o["campaign_id"].notna().to_numpy()
    email_code = caused & (rng.random(n) < 0.5)
    code[email_code] = "EMAIL10"
    pct = pd.Series(code, dtype="str").map({**DISCOUNTS, "EMAIL10": 0.10}).fillna(0.0).to_numpy()
    shipping = np.where(subtotal >= FREE_SHIPPING_FROM[ci], 0, SHIPPING[ci]).astype("int64")
    discount = np.where(pct > 0, _round_minor(subtotal * np.maximum(pct, 0), step), 0)
    discount = np.where(pct < 0, shipping, discount).astype("int64")
    rate = pd.Series(country, dtype="str").map(TAX_RATE).to_numpy(dtype="float64", copy=True)
    us = np.isnan(rate)
    rate[us] = np.asarray(US_SALES_TAX)[rng.integers(0, len(US_SALES_TAX), size=int(us.sum()))]
    tax = _round_minor((subtotal - discount + shipping) * rate, step)
    total = subtotal - discount + shipping + tax
    status = o["status"].to_numpy()
    refunded = np.where(status == "refunded", total, 0)
    part = _round_minor(total * rng.uniform(0.1, 0.6, size=n), step)
    part = np.clip(part, step, np.maximum(total - step, step))
    refunded = np.where(status == "partially_refunded", part, refunded).astype("int64")
    o["subtotal"], o["discount_total"], o["shipping_total"] = subtotal, discount, shipping
    o["tax_total"], o["total"], o["refunded_total"] = tax, total, refunded
    o["discount_code"] = pd.Series(code, dtype="str")
    return pd.DataFrame(
        {
            "id": np.arange(1, m + 1, dtype="int64"),
            "order_id": o["id"].to_numpy()[order_idx],
            "sku": np.asarray([p[0] for p in CATALOG], dtype=object)[prod],
            "product_name": np.asarray([p[1] for p in CATALOG], dtype=object)[prod],
            "category": np.asarray([p[2] for p in CATALOG], dtype=object)[prod],
            "quantity": qty.astype("int64"),
            "unit_price": unit,
        }
    )
