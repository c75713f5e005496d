"""One continued day of the ESP exports: the contacts snapshot and the campaigns snapshot dated the next
day, and the day's webhook events.

No new campaign is sent on a continued day (the campaigns snapshot stays as the base left it). What goes
on is the long tail of engagement with the campaigns of the last LATE_OPEN_DAYS: members who received one
open it now and then (a power-law decay with the days since the send), some click, a few unsubscribe
through it. New contacts: new customers who accept marketing (synced under their account's address) and
newsletter sign-ups of new people (names as the base's form sign-ups); a few contacts unsubscribe on
their own.
"""

from __future__ import annotations

import gzip
import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, gz_bytes, iso_z, pick, random_tokens
from rapport.demo.contact_points import type_emails
from rapport.demo.esp_contacts import _dash, _hex32, write_csv
from rapport.demo.esp_events import event_lines
from rapport.demo.extend_people import new_people, typed_identity
from rapport.demo.messages import PATHS, USERAGENTS, _ips

LATE_OPEN_DAYS = 90  # campaigns older than this get no more opens
LATE_OPEN_SCALE = 0.5  # P(open on day k after the send) = scale * k ** -1.5, per delivered member
P_CLICK, P_UNSUB_ON_OPEN = 0.25, 0.012
P_SPONTANEOUS_UNSUB = 1 / 1200  # per subscribed contact and day (the base's mean time to unsubscribe)
P_NO_NAME = 0.15  # newsletter forms often ask for the address only (as in the base)
P_HELD_BACK = 0.1  # events whose file reaches the export a day late (a late file in the day's partition)
PART = "part-0100"  # file names of continued days: never one the base wrote
CONTACT_COLUMNS = ["contact_id", "email", "first_name", "last_name", "status", "created_at", "updated_at"]


def _ymd(d: date) -> str:
    return f"{d:%Y%m%d}"


def read_snapshot(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])


def delivered_messages(esp_dir: Path, start: date) -> pd.DataFrame:
    """Every message delivered by a campaign sent in the LATE_OPEN_DAYS before `start`: campaign_id, send_ts,
    email (as the campaign's events write it) and sg_message_id."""
    camps = read_snapshot(esp_dir / "campaigns" / f"campaigns_{_ymd(start)}.csv")
    send = pd.to_datetime(camps["send_at"], format="ISO8601", utc=True)
    lo = pd.Timestamp(start - timedelta(days=LATE_OPEN_DAYS), tz="UTC")
    camps = camps[(send >= lo) & (send < pd.Timestamp(start, tz="UTC"))]
    unix = send[camps.index].dt.tz_localize(None).to_numpy().astype("datetime64[s]").astype("int64")
    send_ts = dict(zip(camps["campaign_id"], unix.tolist(), strict=True))
    rows: dict[str, tuple[str, int, str]] = {}
    days = sorted({date.fromisoformat(s[:10]) + timedelta(days=k) for s in camps["send_at"] for k in (0, 1)})
    for d in days:
        for path in sorted((esp_dir / "events" / f"dt={d.isoformat()}").glob("hour=*/*.jsonl.gz")):
            with gzip.open(path, "rt", encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue  # the malformed lines the base plants
                    if isinstance(ev, dict) and ev.get("event") == "delivered" and ev.get("campaign_id") in send_ts:
                        rows[ev["sg_message_id"]] = (ev["campaign_id"], send_ts[ev["campaign_id"]], ev["email"])
    out = pd.DataFrame(
        [(m, *v) for m, v in sorted(rows.items())], columns=["sg_message_id", "campaign_id", "send_ts", "email"]
    )
    return out.astype({"send_ts": "int64"})


def late_engagement(rng: np.random.Generator, messages: pd.DataFrame, t0: int) -> dict[str, np.ndarray]:
    """The day's opens, clicks and unsubscribes of recently delivered messages (event-line columns)."""
    age = (t0 - messages["send_ts"].to_numpy()) / DAY
    live = (age >= 1) & (age <= LATE_OPEN_DAYS)
    p = np.where(live, LATE_OPEN_SCALE * np.maximum(age, 1) ** -1.5, 0.0)
    m = messages[rng.random(len(messages)) < p].reset_index(drop=True)
    n = len(m)
    open_ts = t0 + rng.integers(0, DAY - 2 * HOUR, size=n)
    click = rng.random(n) < P_CLICK
    click_ts = open_ts + rng.exponential(15 * 60, size=n).astype("int64") + 5
    unsub = rng.random(n) < P_UNSUB_ON_OPEN
    unsub_ts = open_ts + rng.integers(10, 600, size=n)
    ua = pick(rng, USERAGENTS, [30, 25, 20, 15, 10], n)
    ip = _ips(rng, n)
    url = (
        "https://maru-shop.com/"
        + pd.Series(pick(rng, PATHS, [1] * len(PATHS), n), dtype="str")
        + "?utm_source=esp&utm_medium=email&utm_campaign="
        + m["campaign_id"].astype("str")
    ).to_numpy(dtype=object)
    parts = [(np.ones(n, dtype=bool), open_ts, "open"), (click, click_ts, "click"), (unsub, unsub_ts, "unsubscribe")]
    cols: dict[str, list[np.ndarray]] = {
        k: []
        for k in (
            "email",
            "timestamp",
            "event",
            "sg_message_id",
            "campaign_id",
            "useragent",
            "ip",
            "url",
            "sg_machine_open",
        )
    }
    for mask, ts, event in parts:
        k = int(mask.sum())
        cols["email"].append(m["email"].to_numpy(dtype=object)[mask])
        cols["timestamp"].append(ts[mask].astype("int64"))
        cols["event"].append(np.full(k, event, dtype=object))
        cols["sg_message_id"].append(m["sg_message_id"].to_numpy(dtype=object)[mask])
        cols["campaign_id"].append(m["campaign_id"].to_numpy(dtype=object)[mask])
        cols["useragent"].append(ua[mask])
        cols["ip"].append(ip[mask])
        cols["url"].append(url[mask])
        cols["sg_machine_open"].append(np.zeros(k, dtype=bool))
    ev = {k: np.concatenate(v) for k, v in cols.items()}
    order = np.argsort(ev["timestamp"], kind="stable")
    ev = {k: v[order] for k, v in ev.items()}
    ev["sg_event_id"] = random_tokens(rng, len(order), 22)
    return ev


def write_events(
    esp_dir: Path, rng: np.random.Generator, ev: dict[str, np.ndarray], held: pd.DataFrame, day: date
) -> tuple[pd.DataFrame, int]:
    """The day's event files by receive hour; yesterday's held-back lines as late files in their partitions.
    Returns the lines held back today (for tomorrow) and the number of lines written."""
    lines = event_lines(ev) if len(ev["timestamp"]) else np.zeros(0, dtype=object)
    recv = ev["timestamp"] + rng.integers(0, 90, size=len(lines))
    late = rng.random(len(lines)) < P_HELD_BACK
    files: dict[str, list[str]] = {}
    for at, line, is_late in zip(recv.tolist(), lines.tolist(), late.tolist(), strict=True):
        if not is_late:
            files.setdefault(_hour_dir(at) + f"/{PART}.jsonl.gz", []).append(line)
    for rel, line in zip(held["path"], held["line"], strict=True):
        files.setdefault(rel, []).append(line)
    for rel, file_lines in files.items():
        path = esp_dir / "events" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_bytes("\n".join(file_lines) + "\n", level=3))
    keep = pd.DataFrame(
        {"path": [_hour_dir(a) + f"/{PART}-late.jsonl.gz" for a in recv[late].tolist()], "line": lines[late].tolist()}
    )
    return keep, sum(len(v) for v in files.values())


def _hour_dir(ts: int) -> str:
    t = np.datetime64(int(ts), "s").astype(object)
    return f"dt={t:%Y-%m-%d}/hour={t:%H}"


def contacts_day(
    esp_dir: Path,
    rng: np.random.Generator,
    day: date,
    t0: int,
    *,
    new_customers: pd.DataFrame,
    newsletter_rate: float,
    unsubscribed: np.ndarray,
    first_person: int,
    taken: set[str],
    tails: set[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Write contacts_{day+1}.csv (and campaigns_{day+1}.csv); returns (truth rows, new newsletter people)."""
    src = esp_dir / "contacts" / f"contacts_{_ymd(day)}.csv"
    snap = read_snapshot(src)
    t1 = t0 + DAY
    # new customers who accept marketing reach the ESP through the shop's sync; new people sign up on a form
    synced = new_customers[new_customers["accepts_marketing"].to_numpy() == 1]
    k_news = int(rng.poisson(newsletter_rate))
    people = new_people(rng, k_news, first_person, taken, tails)
    names = typed_identity(rng, people, p_phone=0.0, p_native=0.5)
    blank = rng.random(k_news) < P_NO_NAME
    names.loc[blank, ["first_name", "last_name"]] = None
    who = pd.concat(
        [
            pd.DataFrame(
                {
                    "person_id": synced["person_id"].to_numpy(),
                    "email_local": synced["email_local"].to_numpy(),
                    "email_domain": synced["email_domain"].to_numpy(),
                    "first_name": synced["first_name"].to_numpy(),
                    "last_name": synced["last_name"].to_numpy(),
                    "created_ts": np.minimum(
                        synced["created_ts"].to_numpy() + rng.integers(60, 2 * HOUR, size=len(synced)), t1 - 1
                    ),
                }
            ),
            pd.DataFrame(
                {
                    "person_id": people["person_id"].to_numpy(),
                    "email_local": people["email_local"].to_numpy(),
                    "email_domain": people["email_domain"].to_numpy(),
                    "first_name": names["first_name"].to_numpy(),
                    "last_name": names["last_name"].to_numpy(),
                    "created_ts": t0 + rng.integers(0, DAY, size=k_news),
                }
            ),
        ],
        ignore_index=True,
    )
    email = type_emails(
        rng, who["email_local"], who["email_domain"], p_caps=0.08, p_plus=0.06, p_dots=0.02, p_googlemail=0.005
    )
    created = iso_z(who["created_ts"].to_numpy())
    new = pd.DataFrame(
        {
            "contact_id": _dash(_hex32(rng, len(who))),
            "email": email.to_numpy(dtype=object),
            "first_name": who["first_name"].to_numpy(dtype=object),
            "last_name": who["last_name"].to_numpy(dtype=object),
            "status": "subscribed",
            "created_at": created,
            "updated_at": created,
        }
    )
    # unsubscribes: through a link in an email today, or on their own
    sub = snap["status"].to_numpy() == "subscribed"
    key = snap["email"].fillna("").str.strip().str.lower().to_numpy()
    by_link = np.isin(key, np.asarray([str(e).strip().lower() for e in unsubscribed], dtype=object))
    leave = sub & (by_link | (rng.random(len(snap)) < P_SPONTANEOUS_UNSUB))
    snap.loc[leave, "status"] = "unsubscribed"
    snap.loc[leave, "updated_at"] = iso_z(np.sort(t0 + rng.integers(0, DAY, size=int(leave.sum()))))
    out = pd.concat([snap, new], ignore_index=True)[CONTACT_COLUMNS]
    nxt = day + timedelta(days=1)
    write_csv(out, esp_dir / "contacts" / f"contacts_{_ymd(nxt)}.csv")
    shutil.copyfile(
        esp_dir / "campaigns" / f"campaigns_{_ymd(day)}.csv", esp_dir / "campaigns" / f"campaigns_{_ymd(nxt)}.csv"
    )
    truth = pd.DataFrame(
        {
            "source": "esp.contact",
            "source_id": new["contact_id"].astype(str),
            "person_id": who["person_id"].astype("int64"),
        }
    )
    return truth, people
