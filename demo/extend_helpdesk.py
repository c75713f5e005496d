"""One continued day of the helpdesk: new tickets by existing end-users and the next versions of tickets
still open, appended to `helpdesk/tickets.jsonl.gz` as a new gzip member (the demo server reads them all).

New tickets are built by the base's own ticket timeline (helpdesk_data._tickets), with every later version
scheduled at once; tickets the base left open get the rest of their timeline drawn from the same shapes
(reply, hold, solve, rating, close), conditionally on where they stand.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import DAY, HOUR, Period
from rapport.demo.helpdesk_data import AGENT_BASE_ID, COMMENTS, LOCALE, TOPICS, _apply, _iso, _tickets
from rapport.demo.helpdesk_server import iso_to_unix

OPEN = ("new", "open", "pending", "hold")
COUNTRY_OF_LOCALE = {v: k for k, v in LOCALE.items()}
P_RATED = 0.55
P_BAD = 0.22


def read_items(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def latest(items: list[dict]) -> dict[int, dict]:
    out: dict[int, dict] = {}
    for it in items:  # files are in (updated_at, id) order: the last version of an id wins
        out[int(it["id"])] = it
    return out


def end_users(helpdesk_dir: Path, before: str) -> pd.DataFrame:
    """End-users created before the day: id, country (from the locale), whether they have no email."""
    users = [
        u
        for u in latest(read_items(helpdesk_dir / "users.jsonl.gz")).values()
        if u.get("role") == "end-user" and u["created_at"][:10] < before
    ]
    return pd.DataFrame(
        {
            "id": np.asarray([u["id"] for u in users], dtype="int64"),
            "country": [COUNTRY_OF_LOCALE.get(u.get("locale"), "US") for u in users],
            "no_email": [u.get("email") is None for u in users],
        }
    )


def _with_drift(item: dict, drift_ts: int, ts: int) -> dict:
    if ts >= drift_ts and "brand_id" not in item:  # fields the API sends since its drift (as the base adds them)
        topic = next((t for t in item.get("tags", []) if t in TOPICS), TOPICS[0])
        item = dict(item, custom_fields=[{"id": 360001, "value": topic}], brand_id=360000123)
    return item


def _versions(state: dict, t_created: int, steps: list[tuple[int, dict]], drift_ts: int) -> list[tuple[int, dict]]:
    out = []
    for ts, change in steps:
        state = _apply(state, change, t_created)
        out.append((ts, _with_drift(dict(state, updated_at=_iso(ts)), drift_ts, ts)))
    return out


def schedule_open_tickets(
    helpdesk_dir: Path, rng: np.random.Generator, start_ts: int, drift_ts: int
) -> tuple[pd.DataFrame, int]:
    """Later versions of the tickets the base left unfinished at `start_ts`, and the largest ticket id."""
    tickets = latest(read_items(helpdesk_dir / "tickets.jsonl.gz"))
    rows: list[tuple[int, int, str]] = []
    for tid, it in sorted(tickets.items()):
        status = it["status"]
        if status in ("closed", "deleted"):
            continue
        t_created = iso_to_unix(it["created_at"])
        t = max(start_ts, iso_to_unix(it["updated_at"]) + 60)
        steps: list[tuple[int, dict]] = []
        if status == "new":
            t += int(rng.exponential(6 * HOUR)) + 300
            steps.append(
                (
                    t,
                    {
                        "status": "open",
                        "assignee_id": int(AGENT_BASE_ID + 1 + rng.integers(0, 8)),
                        "metric_set.reply": (t - t_created) // 60,
                    },
                )
            )
        if status in OPEN:
            wait = rng.exponential(25 * DAY) if status == "hold" else 0.0
            t += int(wait + rng.exponential(2 * DAY)) + HOUR
            steps.append((t, {"status": "solved", "solved": t, "sat": "offered"}))
            solved = t
        else:  # solved, not yet closed
            solved = iso_to_unix(it["metric_set"]["solved_at"]) if it["metric_set"].get("solved_at") else t
        rated = it["satisfaction_rating"]["score"] in ("unoffered", "offered") and rng.random() < P_RATED
        if rated:
            t = max(t, solved) + int(rng.exponential(DAY)) + 60
            score = "bad" if rng.random() < P_BAD else "good"
            steps.append((t, {"sat": score, "comment": COMMENTS[score][int(rng.integers(0, 4))]}))
        steps.append((max(solved + 4 * DAY, t + 60, start_ts + 60), {"status": "closed"}))
        steps.sort(key=lambda s: s[0])
        for ts, item in _versions(it, t_created, steps, drift_ts):
            rows.append((ts, tid, json.dumps(item, ensure_ascii=False, separators=(",", ":"))))
    steps_df = pd.DataFrame(rows, columns=["ts", "key", "payload"])
    steps_df.insert(0, "kind", "ticket")
    return steps_df, max(tickets, default=0)


def new_tickets(
    rng: np.random.Generator, users: pd.DataFrame, k: int, t0: int, first_id: int, drift_ts: int
) -> pd.DataFrame:
    """k new tickets created in [t0, t0 + 1 day) by random end-users, every version of their timeline."""
    if k == 0 or users.empty:
        return pd.DataFrame(columns=["kind", "ts", "key", "payload"])
    req = users.iloc[rng.integers(0, len(users), size=k)]
    key = req["id"].to_numpy()
    created = t0 + rng.integers(0, DAY - HOUR, size=k)
    by_user = users.drop_duplicates("id").set_index("id")
    day = datetime.fromtimestamp(t0, UTC).date()
    horizon = Period(start=day, end=day + timedelta(days=400))  # every step of the timeline, scheduled now
    items = _tickets(
        rng,
        key,
        created,
        pd.Series(by_user.index, index=by_user.index),
        by_user,
        by_user["no_email"],
        horizon,
        drift_ts,
    )
    rows = []
    for it in items:
        it["id"] = first_id + it["id"] - 1
        rows.append(
            (
                "ticket",
                iso_to_unix(it["updated_at"]),
                it["id"],
                json.dumps(it, ensure_ascii=False, separators=(",", ":")),
            )
        )
    return pd.DataFrame(rows, columns=["kind", "ts", "key", "payload"])


def append_versions(path: Path, steps: pd.DataFrame) -> None:
    """Append the versions (sorted by updated_at, id, like the file) as one more gzip member."""
    if steps.empty:
        return
    steps = steps.sort_values(["ts", "key"], kind="stable")
    text = "".join(p + "\n" for p in steps["payload"])
    with open(path, "ab") as fh:
        fh.write(gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0))
