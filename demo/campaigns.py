"""Email campaigns: the schedule, audiences with random holdout groups, the sends, and the exact expected
intent-to-treat uplift of each campaign (ground truth).

A 15-month history has 22-28 campaigns, a longer one proportionally more. About a third of the campaigns
with a control group hold out 30-50% of the audience (the others 5-20%), and about a third of all
campaigns have no effect at all (uplift 0), so the campaign decisions can be checked against known truth.

Campaigns are run in send order because each changes the list (unsubscribes, bounces) that later ones
draw their audience from. Sends are at least 8 days apart, so a campaign's caused orders (always inside
its own 7-day window) never fall into another campaign's window, and the last send is 21 days before the
end, so every order in a window has reached its final status (orders.MAX_SETTLE_DAYS) by the export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, Period, date_str, iso_z, pick, rng_for, seasonal_integral
from rapport.demo.esp_contacts import LogIndex, snapshot_dates, write_csv
from rapport.demo.messages import HOLDOUT_DAYS, P_CAUSED_OK, P_DELIVER_OK, simulate_send
from rapport.demo.orders import CURRENCY_OF, MAX_SETTLE_DAYS, OK, P_VALID, PARTIAL, expected_net_total

MIN_GAP_DAYS = 8
MIN_AUDIENCE = 150
LAST_SEND_BEFORE_END_DAYS = 21
assert LAST_SEND_BEFORE_END_DAYS >= HOLDOUT_DAYS + MAX_SETTLE_DAYS

SEGMENTS = {
    "all": "All subscribers",
    "buyers": "Customers with at least one order",
    "lapsed": "Lapsed buyers: no order in the last 90 days",
    "recent": "Recent buyers: ordered in the last 30 days",
    "never": "Subscribers who never ordered",
    "repeat": "Repeat buyers (2+ orders)",
    "kr": "Korea (KR) subscribers",
    "en": "English-speaking (US, GB)",
    "thcn": "Thailand and China",
    "eu": "Europe (DE, FR)",
    "half": "Random 50% test cell",
}
THEMES = {  # by month of the send
    1: ["New Year Reset", "Winter Skin Rescue"],
    2: ["Valentine's Edit", "Winter Skin Rescue"],
    3: ["Spring Sale", "New Arrivals"],
    4: ["Spring Sale", "Routine Builder"],
    5: ["Sunscreen Season", "Members Week"],
    6: ["Summer Skincare", "Mid-Year Sale"],
    7: ["Summer Skincare", "Back in Stock"],
    8: ["Weekend Flash Sale", "Best Sellers"],
    9: ["Autumn Edit", "New Arrivals"],
    10: ["Autumn Edit", "We Miss You"],
    11: ["Black Friday", "Holiday Gift Guide"],
    12: ["Holiday Gift Guide", "Year-End Sale"],
}
SUBJECTS = {
    "kr": "[마루앤코] {theme} - 최대 30% 할인",
    "thcn": "{theme} | ลดสูงสุด 30% · 最高享7折",
    "default": "{theme}: up to 30% off this week",
}
UPLIFTS = [0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08]  # P(extra order | delivered)
LARGE_HOLDOUTS = [30.0, 40.0, 50.0]  # percent: control groups large enough to detect small lifts
LARGE_HOLDOUT_SHARE = 0.3  # of the campaigns with a control group
EXTRA_ZERO_SHARE = 0.2  # of all campaigns, on top of the 4 forced and the zero draws of UPLIFTS
BASE_PERIOD_DAYS = 457  # 15 months (demo.common.make_period): 22-28 campaigns in such a history


@dataclass
class CampaignRun:
    campaigns: pd.DataFrame  # one row per campaign: plan, sizes, costs, truth
    audiences: pd.DataFrame  # campaign_id, email, group, person_id, contact_idx
    caused_orders: pd.DataFrame
    log: pd.DataFrame  # contact status log including campaign effects
    clicks: pd.DataFrame  # person_id, timestamp, campaign_id of every click (for utm tagging)


PLAN_COLUMNS = {
    "campaign_id": object,
    "name": object,
    "subject": object,
    "theme": object,
    "send_ts": "int64",
    "created_ts": "int64",
    "segment": object,
    "holdout_pct": "float64",
    "uplift": "float64",
    "cost_currency": object,
    "draft_name": bool,
    "lowercase_events": bool,
    "cost_base": "float64",
    "cost_per_k": "float64",
}
RESULT_COLUMNS = [
    "campaign_id",
    "segment",
    "subject",
    "treatment_size",
    "control_size",
    "true_uplift_abs",
    "expected_control_rate",
    "expected_treatment_rate",
    "true_incremental_revenue_per_recipient_usd",
    "caused_orders",
]


def plan_campaigns(seed: int, period: Period, large_holdout_share: float = LARGE_HOLDOUT_SHARE) -> pd.DataFrame:
    """The campaign schedule; `large_holdout_share` of the campaigns with a control group hold out 30-50%."""
    rng = rng_for(seed, "campaign-plan")
    first = period.start_ts + 30 * DAY
    last = period.end_ts - LAST_SEND_BEFORE_END_DAYS * DAY
    span_days = max((last - first) // DAY, 0)
    per_15_months = rng.integers(22, 29)
    scale = max(1.0, period.days / BASE_PERIOD_DAYS)  # longer histories: as many campaigns per month
    k = int(min(round(per_15_months * scale), span_days // MIN_GAP_DAYS + 1 if span_days >= 0 else 0))
    if k <= 0 or last < first:  # too short a period for any campaign
        return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in PLAN_COLUMNS.items()})
    slack = span_days - (k - 1) * MIN_GAP_DAYS
    offsets = np.sort(rng.integers(0, slack + 1, size=k)) + np.arange(k) * MIN_GAP_DAYS
    hours = rng.choice([1, 2, 9, 14], size=k)  # morning in Seoul/Bangkok or in Europe/US
    send = first + offsets * DAY + hours * HOUR + rng.choice([0, 30], size=k) * 60
    segment = np.asarray(pick(rng, list(SEGMENTS), [8, 3, 2, 1, 2, 1, 2, 2, 1, 0.5, 2], k), dtype=object)
    segment[: min(3, k)] = "all"  # early on the list is small: send to everyone
    holdout = pick(rng, [5, 10, 10, 15, 20, 12.5], [2, 4, 0, 2, 2, 1], k).astype("float64")
    no_control = rng.choice(np.arange(3, k), size=min(2, max(k - 3, 0)), replace=False) if k > 3 else []
    holdout[no_control] = 0.0
    uplift = np.asarray(UPLIFTS, dtype="float64")[rng.integers(0, len(UPLIFTS), size=k)]
    # several zero-effect campaigns, whatever the draw
    zero = rng.choice(k, size=min(k, 4), replace=False)
    uplift[zero] = 0.0
    ids = pd.Series(rng.integers(16**9, 16**10, size=k)).map(lambda v: f"{v:010x}").to_numpy(dtype=object)
    assert len(set(ids)) == k  # 10 random hex digits: a collision among ~25 would be a 1e-10 event
    dates = pd.to_datetime(send, unit="s")
    theme = np.asarray(
        [THEMES[d.month][int(x)] for d, x in zip(dates, rng.integers(0, 2, size=k), strict=True)], dtype=object
    )
    name = [f"{d:%Y-%m} {t}" for d, t in zip(dates, theme, strict=True)]
    subject = [SUBJECTS.get(s, SUBJECTS["default"]).format(theme=t) for s, t in zip(segment, theme, strict=True)]
    currency = pick(rng, ["USD", "EUR"], [7, 3], k)
    # larger control groups and more zero-effect campaigns, from a stream of their own so that the draws
    # above (and so the rest of the demo) stay as they were
    more = rng_for(seed, "campaign-plan-decisions")
    controlled = np.flatnonzero(holdout > 0)
    large = more.choice(controlled, size=round(large_holdout_share * len(controlled)), replace=False)
    holdout[large] = more.choice(LARGE_HOLDOUTS, size=len(large))
    uplift[more.choice(k, size=round(EXTRA_ZERO_SHARE * k), replace=False)] = 0.0
    return pd.DataFrame(
        {
            "campaign_id": ids,
            "name": name,
            "subject": subject,
            "theme": theme,
            "send_ts": send.astype("int64"),
            "created_ts": (send - rng.integers(3 * DAY, 14 * DAY, size=k)).astype("int64"),
            "segment": segment,
            "holdout_pct": holdout,
            "uplift": uplift,
            "cost_currency": currency,
            "draft_name": rng.random(k) < 0.5,
            "lowercase_events": rng.random(k) < 0.35,
            "cost_base": rng.uniform(80, 400, size=k).round(2),
            "cost_per_k": rng.uniform(0.6, 1.4, size=k),
        }
    )


def _history(orders: list[pd.DataFrame], n_people: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """Per person: number of valid orders before t and the time of the last one (0: none)."""
    count = np.zeros(n_people, dtype="int64")
    last = np.zeros(n_people, dtype="int64")
    for o in orders:
        ts = o["created_ts"].to_numpy()
        valid = np.isin(o["destiny"].to_numpy(), [OK, PARTIAL]) & (ts < t)
        pid = o["person_id"].to_numpy()[valid].astype("int64")
        count += np.bincount(pid, minlength=n_people)
        np.maximum.at(last, pid, ts[valid])
    return count, last


def _segment_mask(
    rng: np.random.Generator, seg: str, country: np.ndarray, count: np.ndarray, last: np.ndarray, t: int
) -> np.ndarray:
    return {
        "all": np.ones(len(country), dtype=bool),
        "buyers": count >= 1,
        "lapsed": (count >= 1) & (last < t - 90 * DAY),
        "recent": last >= t - 30 * DAY,
        "never": count == 0,
        "repeat": count >= 2,
        "kr": country == "KR",
        "en": np.isin(country, ["US", "GB"]),
        "thcn": np.isin(country, ["TH", "CN"]),
        "eu": np.isin(country, ["DE", "FR"]),
        "half": rng.random(len(country)) < 0.5,
    }[seg]


def p_no_natural_valid_order(
    active_from: np.ndarray, active_to: np.ndarray, order_rate: np.ndarray, t0: int, period: Period, season: np.ndarray
) -> np.ndarray:
    """P(no natural valid order in [t0, t0 + 7 days)) per person (arrays of the audience's people), from the
    generating model: valid orders are a Poisson process with rate P_VALID * order_rate * seasonality."""
    lo = np.maximum(active_from, t0)
    hi = np.minimum(active_to, t0 + HOLDOUT_DAYS * DAY)
    return np.exp(-P_VALID * order_rate * seasonal_integral(period, season, lo, hi))


class CausedOrderValue:
    """Expected net USD of a campaign-caused order per person at a send date: the money model's expected
    net amount for the person's country and currency (orders.expected_net_total), at that currency's USD
    rate on the send date (the latest earlier rate when the day has none; orders come within days, over
    which rates move by about 1%)."""

    def __init__(self, people: pd.DataFrame, fx: pd.DataFrame, seed: int) -> None:
        country = people["country"].to_numpy().astype(str)
        currency = pd.Series(country, dtype="str").map(CURRENCY_OF).to_numpy(dtype=object)
        currency[people["gb_pays_eur"].to_numpy()] = "EUR"
        combos = sorted(set(zip(country, currency, strict=True)))
        value = expected_net_total(seed, combos, P_CAUSED_OK)
        self.local = np.array([value[c] for c in zip(country, currency, strict=True)])
        self.currency = currency.astype(str)
        self.fx = {c: f.sort_values("rate_date") for c, f in fx.groupby("currency")}

    def usd(self, person_ids: np.ndarray, t: int) -> np.ndarray:
        day = str(date_str(np.asarray([t]))[0])
        out = self.local[person_ids].copy()
        for cur, rates in self.fx.items():
            m = self.currency[person_ids] == cur
            if m.any():
                earlier = rates[rates["rate_date"].to_numpy() <= day]
                out[m] *= float(earlier["usd_per_unit"].iloc[-1])
        return out


def run_campaigns(
    people: pd.DataFrame,
    contacts: pd.DataFrame,
    log: pd.DataFrame,
    natural: pd.DataFrame,
    plan: pd.DataFrame,
    seed: int,
    period: Period,
    season: np.ndarray,
    fx: pd.DataFrame,
    on_events: Callable[[dict[str, np.ndarray]], None],
) -> CampaignRun:
    """Run the sends in order; each campaign's webhook events are handed to `on_events` as column arrays
    (person_id, contact_idx, email, timestamp, event, sg_message_id, campaign_id and per-type fields).
    `fx` (shop.build_fx) prices the caused orders of the ground truth."""
    rng = rng_for(seed, "campaign-run")
    n_people, n_contacts = len(people), len(contacts)
    assert (people["person_id"].to_numpy() == np.arange(n_people)).all()
    assert (contacts["contact_idx"].to_numpy() == np.arange(n_contacts)).all()
    country = people["country"].to_numpy().astype(str)
    pa_ = {k: people[k].to_numpy() for k in ("active_from", "active_to", "order_rate", "p_open", "p_click", "mpp")}
    c_person = contacts["person_id"].to_numpy()
    c_created = contacts["created_ts"].to_numpy()
    c_email = contacts["email"].to_numpy(dtype=object)
    c_bad = contacts["bad"].to_numpy()
    logs, group_logs, caused, audiences, clicks, rows = [log], [], [], [], [], []
    order_value = CausedOrderValue(people, fx, seed) if len(plan) else None
    for camp in plan.itertuples(index=False):
        t = int(camp.send_ts)
        status, _ = LogIndex(pd.concat(logs, ignore_index=True), n_contacts).state_at(t)
        eligible = (status == "subscribed") & (c_created < t - DAY)
        count, last = _history([natural, *caused], n_people, t)
        seg = _segment_mask(rng, camp.segment, country, count, last, t)[c_person]
        segment = camp.segment
        if (eligible & seg).sum() < MIN_AUDIENCE:
            segment, seg = "all", np.ones(n_contacts, dtype=bool)  # too small for a holdout test: send to all
        eligible &= seg
        # one audience row per person (an ESP dedupes exact addresses; we keep the person's first contact)
        idx = np.flatnonzero(eligible)
        idx = idx[~pd.Series(c_person[idx]).duplicated().to_numpy()]
        idx = idx[rng.permutation(len(idx))]
        n = len(idx)
        n_ctrl = int(round(n * camp.holdout_pct / 100))
        treated = np.arange(n) >= n_ctrl
        suppressed = np.zeros(n_contacts, dtype=bool)
        if group_logs:
            g = pd.concat(group_logs, ignore_index=True)
            g = (
                g[g["ts"] < t]
                .sort_values(["contact_idx", "ts"], kind="stable")
                .drop_duplicates("contact_idx", keep="last")
            )
            suppressed[g["contact_idx"].to_numpy()[g["suppressed"].to_numpy()]] = True
        pid = c_person[idx]
        aud = pd.DataFrame(
            {
                "contact_idx": idx,
                "person_id": pid,
                "email": c_email[idx],
                "bad": c_bad[idx],
                "group": np.where(treated, "treatment", "control"),
                "campaign_id": camp.campaign_id,
                "suppressed": suppressed[idx],
            }
        )
        ti, tp = idx[treated], pid[treated]
        treat = pd.DataFrame(
            {
                "contact_idx": ti,
                "person_id": tp,
                "email": c_email[ti],
                "bad": c_bad[ti],
                "suppressed": suppressed[ti],
                "p_open": pa_["p_open"][tp],
                "p_click": pa_["p_click"][tp],
                "mpp": pa_["mpp"][tp],
            }
        )
        res = simulate_send(rng, treat, camp.campaign_id, t, camp.uplift, camp.lowercase_events, period.end_ts)
        logs.append(res["log"])
        group_logs.append(res["groups"])
        caused.append(res["orders"])
        ev = res["events"]
        if ev:
            c = ev["event"] == "click"
            clicks.append(
                pd.DataFrame(
                    {
                        "person_id": ev["person_id"][c],
                        "timestamp": ev["timestamp"][c],
                        "campaign_id": ev["campaign_id"][c],
                    }
                )
            )
            on_events(ev)
        audiences.append(aud)
        # truth: expected ITT difference = mean over the audience of P0 * P(delivered) * uplift; revenue: every
        # caused order adds its value whether or not the member would have bought anyway (no P0)
        p0 = p_no_natural_valid_order(
            pa_["active_from"][pid], pa_["active_to"][pid], pa_["order_rate"][pid], t, period, season
        )
        d = np.where(c_bad[idx] | suppressed[idx], 0.0, P_DELIVER_OK)
        rows.append(
            {
                "campaign_id": camp.campaign_id,
                "segment": segment,
                "subject": camp.subject if segment == camp.segment else SUBJECTS["default"].format(theme=camp.theme),
                "treatment_size": n - n_ctrl,
                "control_size": n_ctrl,
                "true_uplift_abs": float(np.mean(p0 * d * camp.uplift)) if n else 0.0,
                "expected_control_rate": float(np.mean(1 - p0)) if n else 0.0,
                "expected_treatment_rate": float(np.mean(1 - p0 * (1 - d * camp.uplift))) if n else 0.0,
                "true_incremental_revenue_per_recipient_usd": float(np.mean(d * camp.uplift * order_value.usd(pid, t)))
                if n
                else 0.0,
                "caused_orders": len(res["orders"]),
            }
        )
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS).astype({"campaign_id": object})
    camps = plan.drop(columns=["segment", "subject"]).merge(results, on="campaign_id", how="left")
    click = (
        pd.concat(clicks, ignore_index=True)
        if clicks
        else pd.DataFrame({"person_id": np.zeros(0, "int64"), "timestamp": np.zeros(0, "int64"), "campaign_id": []})
    )
    return CampaignRun(
        campaigns=camps,
        audiences=pd.concat(audiences, ignore_index=True) if audiences else pd.DataFrame(),
        caused_orders=pd.concat(caused, ignore_index=True) if caused else natural.iloc[:0],
        log=pd.concat(logs, ignore_index=True),
        clicks=click,
    )


def _cost(camps: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(estimate shown before the send, final cost after it)."""
    size = camps["treatment_size"].fillna(0).to_numpy()
    final = (camps["cost_base"].to_numpy() + size * camps["cost_per_k"].to_numpy() / 1000 * 25).round(2)
    estimate = np.round(final / 50) * 50 + 50
    return estimate, final


def write_campaign_files(esp_root: Path, run: CampaignRun, period: Period) -> int:
    camps = run.campaigns
    (esp_root / "campaigns").mkdir(parents=True, exist_ok=True)
    estimate, final = _cost(camps)
    files = 0
    for d in snapshot_dates(period):
        t = period.start_ts + (d - period.start).days * DAY
        m = camps["created_ts"].to_numpy() < t
        sent = camps["send_ts"].to_numpy() < t
        draft = camps["draft_name"].to_numpy() & (camps["send_ts"].to_numpy() - 2 * DAY >= t)
        name = np.where(draft, "[Draft] " + camps["name"].astype(str), camps["name"].astype(str))
        snap = pd.DataFrame(
            {
                "campaign_id": camps["campaign_id"],
                "name": name,
                "subject": camps["subject"],
                "send_at": iso_z(camps["send_ts"].to_numpy()),
                "target_segment": camps["segment"].map(SEGMENTS),
                "holdout_pct": [f"{v:g}" for v in camps["holdout_pct"]],
                "cost": [f"{v:.2f}" for v in np.where(sent, final, estimate)],
                "cost_currency": camps["cost_currency"],
            }
        )[m]
        write_csv(snap.reset_index(drop=True), esp_root / "campaigns" / f"campaigns_{d:%Y%m%d}.csv")
        files += 1
    aud_dir = esp_root / "audiences"
    aud_dir.mkdir(parents=True, exist_ok=True)
    if not len(run.audiences):
        return files
    for cid, a in run.audiences.groupby("campaign_id", sort=True):
        write_csv(a[["email", "group"]].reset_index(drop=True), aud_dir / f"{cid}.csv")
    return files
