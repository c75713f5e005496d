"""Ground truth, written apart from the sources (`ground_truth/`) and never read by the pipeline.

- identities.parquet: every source record that names a person -> the person (marts.customer_identities'
  record set: shop customers, guest orders, helpdesk end-users, ESP contacts, audience rows).
- campaigns.parquet: per campaign, the expected intent-to-treat uplift from the generating model.
  With P0_i = P(no natural valid order in [send_at, send_at + 7 d)) for member i's person (a Poisson
  probability, exp(-P_VALID * rate * integral of seasonality over the person's active part of the
  window)), d_i = P(delivered) and u the campaign's effect (an extra valid order in the window for a
  delivered treatment member, with probability u):
      P(convert | control) = 1 - P0_i,  P(convert | treatment) = 1 - P0_i * (1 - d_i * u)
  so true_uplift_abs = mean over the whole audience of P0_i * d_i * u (the randomisation estimand:
  group assignment is random, so this is the expected treatment-minus-control difference).
  true_incremental_revenue_per_recipient_usd = mean over the whole audience of d_i * u * V_i, V_i the
  expected net USD of a caused order for i's country and currency (Monte Carlo through the generator's
  money model, orders.expected_net_total, at the send date's rate): the expected treatment-minus-control
  difference in revenue per recipient over the holdout window (every caused order adds revenue, bought
  anyway or not). incremental_revenue_usd estimates it times treatment_size. caused_revenue_usd is what
  the caused orders actually came to (net USD at their own dates), for comparison.
- summary.json: parameters and counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def identities(
    customers: pd.DataFrame,
    orders: pd.DataFrame,
    helpdesk_users: pd.DataFrame,
    contacts: pd.DataFrame,
    audiences: pd.DataFrame,
) -> pd.DataFrame:
    guest = orders[orders["customer_id"].to_numpy() < 0]
    parts = [
        ("orders.customer", customers["id"].astype("int64").astype(str), customers["person_id"]),
        ("orders.guest_order", guest["id"].astype("int64").astype(str), guest["person_id"]),
        ("helpdesk.user", helpdesk_users["user_id"].astype("int64").astype(str), helpdesk_users["person_id"]),
        ("esp.contact", contacts["contact_id"].astype(str), contacts["person_id"]),
    ]
    if len(audiences):
        member = audiences["campaign_id"].astype(str) + ":" + audiences["email"].astype(str)
        parts.append(("esp.audience_member", member, audiences["person_id"]))
    return pd.concat(
        [
            pd.DataFrame(
                {"source": s, "source_id": np.asarray(i, dtype=object), "person_id": np.asarray(p, dtype="int64")}
            )
            for s, i, p in parts
        ],
        ignore_index=True,
    )


def caused_revenue_usd(orders: pd.DataFrame, fx: pd.DataFrame) -> pd.Series:
    """Net USD of each campaign's caused valid orders (total - refunded at the order date's rate, the latest
    earlier rate when the day has none, as the pipeline converts), by campaign_id."""
    caused = orders[orders["campaign_id"].notna() & orders["status"].isin(["paid", "fulfilled", "partially_refunded"])]
    if not len(caused):
        return pd.Series(dtype="float64")
    left = pd.DataFrame(
        {
            "campaign_id": caused["campaign_id"].astype(str).to_numpy(),
            "currency": caused["currency"].astype(str).to_numpy(),
            "day": pd.to_datetime(caused["created_ts"].to_numpy(), unit="s").normalize(),
            "net": (caused["total"] - caused["refunded_total"]).to_numpy() / 100,
        }
    )
    rates = pd.DataFrame(
        {
            "currency": fx["currency"].astype(str),
            "day": pd.to_datetime(fx["rate_date"]),
            "usd_per_unit": fx["usd_per_unit"].astype("float64"),
        }
    )
    priced = pd.merge_asof(left.sort_values("day"), rates.sort_values("day"), on="day", by="currency")
    return (priced["net"] * priced["usd_per_unit"]).groupby(priced["campaign_id"]).sum()


def campaign_truth(campaigns: pd.DataFrame, orders: pd.DataFrame, fx: pd.DataFrame) -> pd.DataFrame:
    if not len(campaigns):
        return pd.DataFrame(
            columns=["campaign_id", "has_control", "true_uplift_abs", "true_incremental_revenue_per_recipient_usd"]
        )
    realised = caused_revenue_usd(orders, fx)
    return pd.DataFrame(
        {
            "campaign_id": campaigns["campaign_id"].astype(str),
            "has_control": campaigns["control_size"].fillna(0).to_numpy() > 0,
            "true_uplift_abs": campaigns["true_uplift_abs"].astype("float64"),
            "uplift_if_delivered": campaigns["uplift"].astype("float64"),
            "holdout_pct": campaigns["holdout_pct"].astype("float64"),
            "treatment_size": campaigns["treatment_size"].astype("int64"),
            "control_size": campaigns["control_size"].astype("int64"),
            "expected_treatment_rate": campaigns["expected_treatment_rate"].astype("float64"),
            "expected_control_rate": campaigns["expected_control_rate"].astype("float64"),
            "send_at": pd.to_datetime(campaigns["send_ts"], unit="s"),
            "caused_orders": campaigns["caused_orders"].astype("int64"),
            "true_incremental_revenue_per_recipient_usd": campaigns[
                "true_incremental_revenue_per_recipient_usd"
            ].astype("float64"),
            "caused_revenue_usd": campaigns["campaign_id"].astype(str).map(realised).fillna(0.0).astype("float64"),
        }
    )


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path, compression="zstd")


def write_summary(path: Path, summary: dict) -> None:
    path.write_text(json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
