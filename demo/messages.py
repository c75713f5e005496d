"""One campaign send: what happens to each treatment member's message (SendGrid event webhook rows),
which contacts change status because of it, and which orders the email causes.

Delivery model (used exactly by truth.py): a member whose address is misspelt hard-bounces and one who
group-unsubscribed earlier is dropped (P(delivered) = 0); everyone else is dropped with P_DROP, blocked
with P_BLOCK, else delivered (P(delivered) = P_DELIVER_OK). A delivered member gets one extra valid
order inside [send_at, send_at + 7 days) with probability equal to the campaign's uplift; such an order is
partially refunded with probability 1 - P_CAUSED_OK (its value: orders.expected_net_total).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, pick, random_tokens
from rapport.demo.orders import ATTRIBUTION_HOURS, OK, PARTIAL

P_DROP, P_BLOCK, P_DEFER = 0.002, 0.006, 0.03
P_DELIVER_OK = 1 - P_DROP - P_BLOCK
ASM_GROUP_ID = 4821  # the "Promotions" unsubscribe group
HOLDOUT_DAYS = 7
P_CAUSED_OK = 0.97  # a campaign-caused order is paid/fulfilled, else partially refunded

USERAGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile "
    "Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)",
]
PROXY_USERAGENT = "Mozilla/5.0"
PATHS = ["collections/new", "collections/best-sellers", "products/vitamin-c-serum", "pages/sale", "blogs/routine"]
BOUNCE_REASON = "550 5.1.1 The email account that you tried to reach does not exist."
BLOCK_REASON = "554 5.7.1 Message rejected: listed on a spam block list"
DEFER_RESPONSE = "451 4.7.650 The mail server has been temporarily rate limited."


def _ips(rng: np.random.Generator, n: int, first: int | None = None) -> np.ndarray:
    octets = rng.integers(1, 255, size=(n, 4)).astype(str)
    if first is not None:
        octets[:, 0] = str(first)
    s = pd.Series(octets[:, 0], dtype="str")
    for k in (1, 2, 3):
        s = s + "." + octets[:, k]
    return s.to_numpy(dtype=object)


def simulate_send(
    rng: np.random.Generator,
    members: pd.DataFrame,
    campaign_id: str,
    send_ts: int,
    uplift: float,
    lowercase_events: bool,
    end_ts: int,
) -> dict[str, pd.DataFrame]:
    """members: treatment rows with contact_idx, person_id, email, bad, suppressed, p_open, p_click, mpp."""
    n = len(members)
    email = members["email"].astype("str")
    if lowercase_events:  # this campaign's webhook reports addresses lowercased and trimmed
        email = email.str.strip().str.lower()
    email = email.to_numpy(dtype=object)
    cidx = members["contact_idx"].to_numpy()
    pid = members["person_id"].to_numpy()
    msg = (
        pd.Series(random_tokens(rng, n, 22), dtype="str")
        + ".filterdrecv-"
        + pd.Series(random_tokens(rng, n, 10, "0123456789abcdef"), dtype="str")
        + "-1-"
        + f"{send_ts:X}"
        + "-0.0"
    ).to_numpy(dtype=object)
    events: list[dict[str, np.ndarray]] = []  # column arrays; one DataFrame is built at the end

    def emit(mask: np.ndarray, event: str, ts: np.ndarray, **cols: object) -> None:
        k = int(mask.sum())
        if not k:
            return
        frame = {
            "person_id": pid[mask],
            "contact_idx": cidx[mask],
            "email": email[mask],
            "timestamp": np.asarray(ts)[mask],
            "event": np.full(k, event, dtype=object),
            "sg_message_id": msg[mask],
        }
        for name, v in cols.items():
            if isinstance(v, np.ndarray):
                frame[name] = v.astype(object)[mask]
            else:
                frame[name] = np.full(k, v, dtype=object)
        events.append(frame)

    processed_ts = send_ts + rng.integers(0, 1_800, size=n)
    u = rng.random((3, n))
    bad = members["bad"].to_numpy()
    suppressed = members["suppressed"].to_numpy() & ~bad
    dropped = suppressed | (~bad & (u[0] < P_DROP))
    blocked = ~bad & ~dropped & (u[0] >= P_DROP) & (u[0] < P_DROP + P_BLOCK)
    delivered = ~bad & ~dropped & ~blocked
    deferred = delivered & (u[1] < P_DEFER)
    emit(dropped, "dropped", processed_ts, reason=np.where(suppressed, "Unsubscribed Address", "Invalid"))
    emit(~dropped, "processed", processed_ts)
    bounce_ts = processed_ts + rng.integers(2, 120, size=n)
    emit(bad, "bounce", bounce_ts, type="bounce", reason=BOUNCE_REASON, status="5.1.1")
    emit(blocked, "bounce", bounce_ts, type="blocked", reason=BLOCK_REASON, status="5.7.1")
    defer_ts = processed_ts + rng.integers(60, 900, size=n)
    emit(deferred, "deferred", defer_ts, response=DEFER_RESPONSE, attempt="1")
    twice = deferred & (u[2] < 0.3)
    emit(twice, "deferred", defer_ts + rng.integers(600, 3_600, size=n), response=DEFER_RESPONSE, attempt="2")
    delivered_ts = np.where(
        deferred, defer_ts + rng.integers(3_600, 4 * 3_600, size=n), processed_ts + rng.integers(1, 60, size=n)
    )
    emit(delivered, "delivered", delivered_ts, response="250 2.0.0 OK", tls=1)

    # opens: privacy proxies prefetch on delivery (machine opens); people open later, some click
    mpp = delivered & members["mpp"].to_numpy() & (rng.random(n) < 0.9)
    emit(
        mpp,
        "open",
        delivered_ts + rng.integers(30, 2 * 3_600, size=n),
        sg_machine_open=True,
        useragent=PROXY_USERAGENT,
        ip=_ips(rng, n, first=17),
    )
    human = delivered & (rng.random(n) < members["p_open"].to_numpy())
    open_ts = delivered_ts + rng.exponential(10 * HOUR, size=n).astype("int64")
    clicked = human & (rng.random(n) < members["p_click"].to_numpy())
    click_ts = open_ts + rng.exponential(15 * 60, size=n).astype("int64") + 5

    # campaign-caused orders: the touch (a click, else a human open) precedes the order
    caused = delivered & (rng.random(n) < uplift)
    human |= caused
    clicked |= caused & (rng.random(n) < 0.75)
    window_end = send_ts + HOLDOUT_DAYS * DAY
    open_ts = np.where(caused, np.minimum(open_ts, send_ts + 5 * DAY), open_ts)
    click_ts = np.where(caused, np.minimum(click_ts, send_ts + 5 * DAY + HOUR), click_ts)
    touch = np.where(clicked, click_ts, open_ts)
    cap = np.minimum(touch + ATTRIBUTION_HOURS * HOUR, window_end) - touch - 1
    order_ts = touch + np.minimum(rng.exponential(8 * HOUR, size=n).astype("int64") + 60, cap)

    ua = pick(rng, USERAGENTS, [30, 25, 20, 15, 10], n)
    ip = _ips(rng, n)
    emit(human, "open", open_ts, sg_machine_open=False, useragent=ua, ip=ip)
    again = human & (rng.random(n) < 0.3)
    emit(
        again,
        "open",
        open_ts + rng.exponential(24 * HOUR, size=n).astype("int64") + 60,
        sg_machine_open=False,
        useragent=ua,
        ip=ip,
    )
    url = (
        "https://maru-shop.com/"
        + pd.Series(pick(rng, PATHS, [1] * len(PATHS), n), dtype="str")
        + "?utm_source=esp&utm_medium=email&utm_campaign="
        + campaign_id
    ).to_numpy(dtype=object)
    emit(clicked, "click", click_ts, url=url, useragent=ua, ip=ip)
    click2 = clicked & (rng.random(n) < 0.2)
    emit(click2, "click", click_ts + rng.integers(20, 600, size=n), url=url, useragent=ua, ip=ip)

    unsub = human & (rng.random(n) < 0.012)
    unsub_ts = open_ts + rng.integers(10, 600, size=n)
    emit(unsub, "unsubscribe", unsub_ts)
    group = human & ~unsub & (rng.random(n) < 0.006)
    group_ts = open_ts + rng.integers(10, 600, size=n)
    emit(group, "group_unsubscribe", group_ts, asm_group_id=ASM_GROUP_ID, useragent=ua, ip=ip)
    resub = group & (rng.random(n) < 0.1)
    resub_ts = group_ts + rng.exponential(20 * DAY, size=n).astype("int64") + HOUR
    emit(resub, "group_resubscribe", resub_ts, asm_group_id=ASM_GROUP_ID, useragent=ua, ip=ip)
    spam = delivered & ~unsub & (rng.random(n) < 0.0008)
    spam_ts = delivered_ts + rng.exponential(12 * HOUR, size=n).astype("int64")
    emit(spam, "spamreport", spam_ts)

    ev = concat_columns(events)
    if ev:
        ev["campaign_id"] = np.full(len(ev["timestamp"]), campaign_id, dtype=object)
        keep = ev["timestamp"] < end_ts
        ev = {k: v[keep] for k, v in ev.items()}
    log = pd.concat(
        [
            pd.DataFrame({"contact_idx": cidx[unsub], "ts": unsub_ts[unsub], "status": "unsubscribed"}),
            pd.DataFrame({"contact_idx": cidx[spam], "ts": spam_ts[spam], "status": "unsubscribed"}),
            pd.DataFrame({"contact_idx": cidx[bad], "ts": bounce_ts[bad], "status": "cleaned"}),
        ],
        ignore_index=True,
    )
    groups = pd.concat(
        [
            pd.DataFrame({"contact_idx": cidx[group], "ts": group_ts[group], "suppressed": True}),
            pd.DataFrame({"contact_idx": cidx[resub], "ts": resub_ts[resub], "suppressed": False}),
        ],
        ignore_index=True,
    )
    orders = pd.DataFrame(
        {
            "person_id": pid[caused],
            "created_ts": order_ts[caused],
            "destiny": np.where(rng.random(n) < P_CAUSED_OK, OK, PARTIAL)[caused],
            "campaign_id": campaign_id,
            "utm": (clicked & (rng.random(n) < 0.6))[caused],
        }
    )
    return {
        "events": ev,
        "log": log[log["ts"] < end_ts],
        "groups": groups[groups["ts"] < end_ts],
        "orders": orders,
        "delivered": pd.DataFrame({"contact_idx": cidx, "delivered": delivered}),
    }


def concat_columns(frames: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Concatenate column dicts; a column missing from a frame is None there."""
    if not frames:
        return {}
    names = list(dict.fromkeys(k for f in frames for k in f))
    out = {}
    for name in names:
        parts = []
        for f in frames:
            n = len(f["timestamp"])
            parts.append(f[name] if name in f else np.full(n, None, dtype=object))
        out[name] = (
            np.concatenate(parts)
            if all(p.dtype != object for p in parts)
            else np.concatenate([p.astype(object) for p in parts])
        )
    return out
