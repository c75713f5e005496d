"""Helpdesk users and tickets, as the Zendesk-style export returns them (sources.md section 2).

Items are *versions*: a ticket appears again each time it changes (new -> open -> pending -> solved ->
rated -> closed, some reopened, a few deleted), a user again when their profile is edited. Versions that
would happen after the export time are not written, so recent tickets are still open. Ticket timelines
are computed with numpy; only the final dict building loops in Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, Period, iso_z, pick, rng_for, write_gz_chunks
from rapport.demo.contact_points import e164, type_emails, type_phones, typo_emails
from rapport.demo.names import FAMILY_FIRST
from rapport.demo.shop import P_TYPO

AGENT_NAMES = [
    ("Hana Seo", "agent"),
    ("Daniel Park", "agent"),
    ("Ploy Srisuk", "agent"),
    ("Li Na", "agent"),
    ("Emma Clarke", "agent"),
    ("Jonas Weber", "agent"),
    ("Camille Petit", "agent"),
    ("Ji-ho Lim", "agent"),
    ("Grace Kim", "admin"),
    ("Tom Hughes", "admin"),
]
AGENT_BASE_ID, USER_BASE_ID = 361_000_000_000, 362_000_000_000
LOCALE = {"KR": "ko", "TH": "th", "CN": "zh-cn", "US": "en-US", "GB": "en-GB", "DE": "de", "FR": "fr"}
TOPICS = ["shipping", "refund", "product_question", "damaged"]
SUBJECTS = {
    "KR": ["배송 언제 오나요?", "환불 요청합니다", "제품 문의", "파손된 상품이 도착했어요"],
    "TH": ["สอบถามการจัดส่ง", "ขอคืนเงิน", "สอบถามสินค้า", "สินค้าชำรุด"],
    "CN": ["物流查询", "申请退款", "产品咨询", "收到的商品破损"],
    "EN": ["Where is my order?", "Refund request", "Question about a product", "Item arrived damaged"],
}
COMMENTS = {
    "good": ["Thanks, quick help!", "감사합니다", None, None],
    "bad": ["Still no refund.", "너무 느려요", "ไม่พอใจ", None],
}


def _display_name(pp: pd.DataFrame, native: np.ndarray) -> pd.Series:
    country = pp["country"].to_numpy().astype(str)
    fam_first = np.isin(country, list(FAMILY_FIRST))
    roman = pp["given_roman"].str.capitalize() + " " + pp["family_roman"].str.capitalize()
    nat = (pp["given"] + " " + pp["family"]).where(~fam_first, pp["family"] + pp["given"])
    latin = np.isin(country, ["US", "GB", "DE", "FR"])
    return roman.where(~(native & ~latin), nat).where(~latin, pp["given"] + " " + pp["family"])


def build_helpdesk(
    people: pd.DataFrame, customers: pd.DataFrame, seed: int, period: Period, taken: set[str]
) -> tuple[list[dict], list[dict], pd.DataFrame]:
    """Returns (user versions, ticket versions, one row per end-user: user_id, person_id)."""
    rng = rng_for(seed, "helpdesk")
    hp = people[people["helpdesk"]].reset_index(drop=True)
    # tickets per person: the first some time after they became active, then more now and then
    k = 1 + rng.poisson(0.6, size=len(hp))
    t_pid = np.repeat(hp["person_id"].to_numpy(), k)
    gaps = rng.exponential(60 * DAY, size=len(t_pid)).astype("int64") + HOUR
    start = np.repeat(hp["active_from"].to_numpy(), k)
    order_in = np.concatenate([np.arange(x) for x in k]) if len(k) else np.zeros(0, "int64")
    cum = pd.Series(gaps).groupby(np.repeat(np.arange(len(hp)), k)).cumsum().to_numpy()
    t_created = start + cum
    keep = t_created < period.end_ts - HOUR
    t_pid, t_created, order_in = t_pid[keep], t_created[keep], order_in[keep]
    first_ticket = pd.Series(t_created).groupby(t_pid).min()

    main = customers[~customers["second"]].set_index("person_id")
    synced = hp["person_id"].isin(main.index).to_numpy() & (rng.random(len(hp)) < 0.75)
    sync_at = np.where(
        synced,
        hp["person_id"].map(main["created_ts"]).fillna(0).to_numpy().astype("int64")
        + rng.exponential(2 * DAY, size=len(hp)).astype("int64"),
        0,
    )
    ft = hp["person_id"].map(first_ticket).to_numpy()
    has_ticket = ~np.isnan(ft)
    created = np.where(
        synced,
        np.minimum(sync_at, np.where(has_ticket, ft, np.inf)),
        np.where(has_ticket, ft, np.inf) - rng.integers(1, 60, size=len(hp)),
    )
    ok = np.isfinite(created) & (created < period.end_ts - HOUR)
    hp, synced, created = hp[ok].reset_index(drop=True), synced[ok], created[ok].astype("int64")
    order = np.lexsort((hp["person_id"].to_numpy(), created))
    hp, synced, created = hp.iloc[order].reset_index(drop=True), synced[order], created[order]
    n = len(hp)
    user_id = USER_BASE_ID + np.arange(n, dtype="int64") * 17 + rng.integers(0, 17, size=n)

    local, domain = hp["email_local"].copy(), hp["email_domain"].copy()
    has2 = hp["email2_local"].notna().to_numpy()
    work = has2 & (rng.random(n) < 0.12)
    local[work], domain[work] = hp["email2_local"][work], hp["email2_domain"][work]
    email = type_emails(rng, local, domain, p_caps=0.1, p_space=0.02, p_plus=0.04, p_dots=0.02, p_googlemail=0.01)
    has_phone_nsn = hp["phone_nsn"].notna().to_numpy()
    no_email = has_phone_nsn & (rng.random(n) < 0.07)
    typo = ~no_email & (rng.random(n) < P_TYPO)
    email[typo] = typo_emails(rng, local[typo], domain[typo], taken).to_numpy()
    email[no_email] = None
    country = hp["country"].to_numpy().astype(str)
    phone = type_phones(rng, country, hp["phone_nsn"].fillna(""), rng.random(n) < 0.6)
    # users without an email are caller profiles: the helpdesk's phone channel creates them from the caller
    # ID, which it stores in E.164 (Zendesk Talk does); numbers typed into profiles stay free text
    phone[no_email] = e164(country[no_email], hp["phone_nsn"][no_email].reset_index(drop=True)).to_numpy()
    with_phone = has_phone_nsn & ~typo & (no_email | (rng.random(n) < 0.35))
    phone[~with_phone] = None
    ext = np.where(synced, hp["person_id"].map(main["id"]).fillna(-1).to_numpy().astype("int64"), -1)
    name = _display_name(hp, rng.random(n) < 0.6)
    edit = created + rng.exponential(120 * DAY, size=n).astype("int64") + 60
    edited = (rng.random(n) < 0.25) & (edit < period.end_ts)
    phone_added = type_phones(rng, country, hp["phone_nsn"].fillna(""), np.ones(n, dtype=bool))
    drift_ts = period.start_ts + int(0.6 * (period.end_ts - period.start_ts))

    users: list[dict] = []
    for i, (nm, role) in enumerate(AGENT_NAMES):
        at = iso_z(np.array([period.start_ts + i * 3_600]))[0]
        users.append(
            {
                "id": AGENT_BASE_ID + i + 1,
                "name": nm,
                "email": nm.split()[0].lower() + "@maru-shop.com",
                "phone": None,
                "role": role,
                "external_id": None,
                "created_at": at,
                "updated_at": at,
            }
        )
    created_s, edit_s = iso_z(created), iso_z(edit)
    for i in range(n):
        base = {
            "id": int(user_id[i]),
            "name": name.iat[i],
            "email": _none(email.iat[i]),
            "phone": _none(phone.iat[i]),
            "role": "end-user",
            "external_id": str(ext[i]) if ext[i] >= 0 else None,
            "created_at": created_s[i],
            "updated_at": created_s[i],
            "locale": LOCALE[country[i]],
        }
        users.append(base)
        if edited[i]:
            v2 = dict(base, updated_at=edit_s[i])
            if v2["phone"] is None and has_phone_nsn[i] and not typo[i]:
                v2["phone"] = phone_added.iat[i]
            if edit[i] >= drift_ts:  # fields the API started sending without notice
                v2["user_fields"] = {"vip": bool(rng.random() < 0.1)}
                v2["time_zone"] = {"KR": "Asia/Seoul", "TH": "Asia/Bangkok", "CN": "Asia/Shanghai"}.get(
                    country[i], "UTC"
                )
            users.append(v2)

    person_to_user = pd.Series(user_id, index=hp["person_id"].to_numpy())
    has_user = np.isin(t_pid, hp["person_id"].to_numpy())
    t_pid, t_created = t_pid[has_user], t_created[has_user]
    user_created = pd.Series(created, index=hp["person_id"].to_numpy())
    t_created = np.maximum(t_created, user_created.reindex(t_pid).to_numpy() + 60)
    keep = t_created < period.end_ts - HOUR
    t_pid, t_created = t_pid[keep], t_created[keep]
    tickets = _tickets(
        rng,
        t_pid,
        t_created,
        person_to_user,
        hp.set_index("person_id"),
        pd.Series(no_email, index=hp["person_id"].to_numpy()),
        period,
        drift_ts,
    )
    ident = pd.DataFrame({"user_id": user_id, "person_id": hp["person_id"].to_numpy()})
    return users, tickets, ident


def _none(v: object) -> object:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


def _tickets(
    rng: np.random.Generator,
    t_pid: np.ndarray,
    t_created: np.ndarray,
    person_to_user: pd.Series,
    hp: pd.DataFrame,
    no_email: pd.Series,
    period: Period,
    drift_ts: int,
) -> list[dict]:
    order = np.lexsort((t_pid, t_created))
    t_pid, t_created = t_pid[order], t_created[order]
    m = len(t_pid)
    end = period.end_ts
    reply = rng.exponential(6 * HOUR, size=m).astype("int64") + 300
    priority = pick(rng, [None, "low", "normal", "high", "urgent"], [30, 15, 40, 11, 4], m)
    # escalations wait on hold (urgent ones more often), which keeps some urgent tickets open for weeks
    hold = rng.random(m) < np.where(priority == "urgent", 0.5, 0.06)
    hold_len = np.where(hold, rng.exponential(25 * DAY, size=m), 0).astype("int64")
    pending = ~hold & (rng.random(m) < 0.3)
    solve = t_created + reply + hold_len + rng.exponential(2 * DAY, size=m).astype("int64") + HOUR
    reopen = rng.random(m) < 0.06
    resolve = solve + DAY + rng.exponential(DAY, size=m).astype("int64")
    final_solve = np.where(reopen, resolve, solve)
    rated = rng.random(m) < 0.55
    rate_ts = final_solve + rng.exponential(DAY, size=m).astype("int64") + 60
    score = np.where(rng.random(m) < 0.22, "bad", "good")
    closed = final_solve + 4 * DAY
    deleted = rng.random(m) < 0.015
    delete_ts = t_created + rng.integers(HOUR, 3 * DAY, size=m)
    topic = rng.integers(0, len(TOPICS), size=m)
    agent = AGENT_BASE_ID + 1 + rng.integers(0, 8, size=m)
    country = hp["country"].reindex(t_pid).to_numpy().astype(str)
    requester = person_to_user.reindex(t_pid).to_numpy()
    voice_only = no_email.reindex(t_pid).to_numpy()
    channel = np.where(
        voice_only,
        pick(rng, ["voice", "chat"], [7, 3], m),
        pick(rng, ["email", "web", "chat", "api", "voice"], [40, 30, 20, 5, 5], m),
    )
    vip = rng.random(m) < 0.05
    comment = rng.integers(0, 4, size=m)
    out: list[dict] = []
    for i in range(m):
        lang = country[i] if country[i] in SUBJECTS else "EN"
        tags = [TOPICS[topic[i]]] + (["vip"] if vip[i] else [])
        t0 = int(t_created[i])
        base = {
            "id": i + 1,
            "requester_id": int(requester[i]),
            "assignee_id": None,
            "subject": SUBJECTS[lang][topic[i]],
            "status": "new",
            "priority": priority[i],
            "via": {"channel": channel[i]},
            "tags": tags,
            "satisfaction_rating": {"score": "unoffered", "comment": None},
            "metric_set": {
                "reply_time_in_minutes": {"calendar": None},
                "full_resolution_time_in_minutes": {"calendar": None},
                "solved_at": None,
                "reopens": 0,
            },
            "created_at": None,
            "updated_at": None,
        }
        steps: list[tuple[int, dict]] = [(t0, {})]
        if deleted[i]:
            steps.append((int(delete_ts[i]), {"status": "deleted"}))
        else:
            t_open = t0 + int(reply[i])
            open_ = {"status": "open", "assignee_id": int(agent[i]), "metric_set.reply": int(reply[i]) // 60}
            steps.append((t_open, open_))
            if hold[i]:
                steps.append((t_open + 60, {"status": "hold"}))
            if pending[i]:
                steps.append((t_open + (int(solve[i]) - t_open) // 2, {"status": "pending"}))
            steps.append((int(solve[i]), {"status": "solved", "solved": int(solve[i]), "sat": "offered"}))
            if reopen[i]:
                steps.append((int(solve[i]) + 3_600 * 12, {"status": "open", "reopens": 1, "solved": None}))
                steps.append((int(resolve[i]), {"status": "solved", "solved": int(resolve[i])}))
            if rated[i]:
                steps.append((int(rate_ts[i]), {"sat": str(score[i]), "comment": COMMENTS[str(score[i])][comment[i]]}))
            steps.append((max(int(closed[i]), int(rate_ts[i]) + 60 if rated[i] else 0), {"status": "closed"}))
        state = base
        created_s = _iso(t0)
        for ts, change in steps:
            if ts >= end:
                break
            state = _apply(state, change, t0)
            item = dict(state, created_at=created_s, updated_at=_iso(ts))
            if ts >= drift_ts:
                item["custom_fields"] = [{"id": 360001, "value": TOPICS[topic[i]]}]
                item["brand_id"] = 360000123
            out.append(item)
    return out


def _apply(state: dict, change: dict, t0: int) -> dict:
    s = dict(state)
    metric = {k: (dict(v) if isinstance(v, dict) else v) for k, v in state["metric_set"].items()}
    for k, v in change.items():
        if k == "metric_set.reply":
            metric["reply_time_in_minutes"] = {"calendar": v}
        elif k == "solved":
            metric["solved_at"] = _iso(v) if v is not None else None
            metric["full_resolution_time_in_minutes"] = {"calendar": (v - t0) // 60 if v is not None else None}
        elif k == "reopens":
            metric["reopens"] = v
        elif k == "sat":
            s["satisfaction_rating"] = {"score": v, "comment": None}
        elif k == "comment":
            s["satisfaction_rating"] = dict(s["satisfaction_rating"], comment=v)
        else:
            s[k] = v
    s["metric_set"] = metric
    return s


def _iso(ts: int) -> str:
    return str(np.datetime_as_string(np.datetime64(int(ts), "s"), unit="s")) + "Z"


def write_helpdesk(helpdesk_dir: Path, users: list[dict], tickets: list[dict]) -> None:
    helpdesk_dir.mkdir(parents=True, exist_ok=True)
    for name, items in (("users", users), ("tickets", tickets)):
        items = sorted(items, key=lambda it: (it["updated_at"], it["id"]))
        # serialised and compressed 50k items at a time: the whole text of 1M+ versions never is in memory
        chunks = (
            "".join(json.dumps(it, ensure_ascii=False, separators=(",", ":")) + "\n" for it in items[i : i + 50_000])
            for i in range(0, len(items), 50_000)
        )
        write_gz_chunks(helpdesk_dir / f"{name}.jsonl.gz", chunks)
