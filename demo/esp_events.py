"""Webhook event files: `events/dt=YYYY-MM-DD/hour=HH/part-NNNN.jsonl.gz`, partitioned by the time the
receiver got each POST, with the dirt a real webhook pipeline collects:

- retries: ~1% of events are delivered again minutes to hours later (same sg_event_id, another file);
- late files: a few hour partitions get an extra `part-NNNN-late.jsonl.gz` holding some of their events;
- malformed lines: ~0.05% extra lines that are cut mid-JSON or are not JSON at all.
Lines are built with vectorised string operations; no per-event Python.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from rapport.demo.common import HOUR, gz_bytes, random_tokens, rng_for

P_RETRY = 0.01
P_LATE_PARTITION = 0.02
P_MALFORMED = 0.0005
MAX_LINES_PER_FILE = 50_000
GARBAGE = ["<html><body><h1>502 Bad Gateway</h1></body></html>", "\x00\x00\x00\x00", "null,",
           '{"email":"', "]"]
FIELDS = {  # fields after the common ones, by event type (SendGrid Event Webhook)
    "processed": ["smtp-id"],
    "dropped": ["smtp-id", "reason"],
    "delivered": ["response", "tls"],
    "deferred": ["response", "attempt"],
    "bounce": ["type", "reason", "status"],
    "open": ["useragent", "ip", "sg_machine_open"],
    "click": ["url", "useragent", "ip"],
    "spamreport": [],
    "unsubscribe": [],
    "group_unsubscribe": ["asm_group_id", "useragent", "ip"],
    "group_resubscribe": ["asm_group_id", "useragent", "ip"],
}
NUMERIC = {"tls", "asm_group_id"}
BOOLEAN = {"sg_machine_open"}


_NEEDS_ESCAPE = r'["\\\x00-\x1f]'


def _json_str(s: pd.Series) -> pd.Series:
    """JSON string literals: plain quoting where nothing needs escaping (the usual case), else json.dumps."""
    s = s.astype("str")
    out = '"' + s + '"'
    special = s.str.contains(_NEEDS_ESCAPE, regex=True).fillna(False).to_numpy(dtype=bool)
    if special.any():
        out[special] = [json.dumps(v, ensure_ascii=False) for v in s[special]]
    return out


def event_lines(ev: pd.DataFrame) -> pd.Series:
    """One JSON object per row, holding only the fields its event type carries."""
    out = pd.Series([""] * len(ev), index=ev.index, dtype="str")
    ev = ev.copy()
    ev["smtp-id"] = "<" + ev["sg_message_id"].astype("str").str.slice(0, 22) + "@maru-shop.com>"
    ev["category"] = '["newsletter"]'
    base = ('{"email":' + _json_str(ev["email"]) + ',"timestamp":' + ev["timestamp"].astype("int64").astype("str")
            + ',"event":"' + ev["event"].astype("str") + '","sg_event_id":"' + ev["sg_event_id"].astype("str")
            + '","sg_message_id":"' + ev["sg_message_id"].astype("str") + '","campaign_id":"'
            + ev["campaign_id"].astype("str") + '","category":["newsletter"]')
    for event, fields in FIELDS.items():
        m = (ev["event"] == event).to_numpy()
        if not m.any():
            continue
        line = base[m]
        for f in fields:
            col = ev.loc[m, f]
            if f in NUMERIC:
                val = col.astype("int64").astype("str")
            elif f in BOOLEAN:
                val = col.map({True: "true", False: "false"}).astype("str")
            else:
                val = _json_str(col)
            line = line + f',"{f}":' + val
        out[m] = line + "}"
    return out


def write_event_files(esp_root: Path, events: pd.DataFrame, seed: int) -> dict[str, int]:
    """Write the events tree; returns counts of events, lines, files, retries, late files, malformed lines."""
    rng = rng_for(seed, "esp-event-files")
    n = len(events)
    stats = {"events": n, "retries": 0, "late_files": 0, "malformed_lines": 0, "files": 0, "lines": 0}
    if n == 0:
        return stats
    ev = events.reset_index(drop=True).copy()
    ev["sg_event_id"] = random_tokens(rng, n, 22)
    ev["recv_ts"] = ev["timestamp"].to_numpy() + rng.integers(0, 90, size=n)
    retry = rng.random(n) < P_RETRY
    again = ev[retry].copy()
    again["recv_ts"] = again["recv_ts"].to_numpy() + rng.integers(300, 12 * HOUR, size=len(again))
    stats["retries"] = len(again)
    ev = pd.concat([ev, again], ignore_index=True)
    ev["line"] = event_lines(ev)
    recv = ev["recv_ts"].to_numpy()
    ev["hour_key"] = recv // HOUR
    ev = ev.iloc[np.lexsort((np.arange(len(ev)), recv))].reset_index(drop=True)  # by receive time, stable

    # partition -> files: part-0000, part-0001 ... (big hours split), plus late files in a few partitions
    hour_key = ev["hour_key"].to_numpy()
    rank = ev.groupby("hour_key").cumcount().to_numpy()
    part = rank // MAX_LINES_PER_FILE
    keys, sizes = np.unique(hour_key, return_counts=True)
    keys = keys[sizes >= 5]  # late files go to partitions that also had files on time
    late_keys = keys[rng.random(len(keys)) < P_LATE_PARTITION]
    if len(late_keys) == 0 and len(keys) >= 20:
        late_keys = keys[rng.choice(len(keys), size=2, replace=False)]
    late = np.isin(hour_key, late_keys) & (rank > 0) & (rng.random(len(ev)) < 0.4)
    n_parts = pd.Series(part).groupby(hour_key).transform("max").to_numpy() + 1
    dt = pd.to_datetime(hour_key * HOUR, unit="s")
    prefix = ("dt=" + pd.Series(dt.strftime("%Y-%m-%d"), dtype="str") + "/hour="
              + pd.Series(dt.strftime("%H"), dtype="str") + "/part-")
    part_no = np.where(late, n_parts, part)
    name = prefix + pd.Series(part_no).map("{:04d}".format).astype("str") + pd.Series(
        np.where(late, "-late.jsonl.gz", ".jsonl.gz"), dtype="str")
    ev["file"] = name.to_numpy()
    stats["late_files"] = int(pd.Series(ev["file"][late]).nunique())

    # malformed extra lines, each placed right after a real line of the same file
    k = max(3, int(round(len(ev) * P_MALFORMED)))
    after = np.sort(rng.choice(len(ev), size=min(k, len(ev)), replace=False))
    src = ev["line"].to_numpy()[after]
    cut = [s[: max(5, int(len(s) * f))] for s, f in zip(src, rng.uniform(0.2, 0.9, size=len(after)), strict=True)]
    garbage = np.asarray(GARBAGE, dtype=object)[rng.integers(0, len(GARBAGE), size=len(after))]
    bad = np.where(rng.random(len(after)) < 0.7, np.asarray(cut, dtype=object), garbage)
    extra = pd.DataFrame({"file": ev["file"].to_numpy()[after], "line": bad, "order": after + 0.5})
    stats["malformed_lines"] = len(extra)
    lines = pd.concat([pd.DataFrame({"file": ev["file"], "line": ev["line"], "order": np.arange(len(ev), dtype="float64")}),
                       extra], ignore_index=True).sort_values(["file", "order"], kind="stable")
    root = esp_root / "events"
    for fname, grp in lines.groupby("file", sort=True):
        path = root / fname
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_bytes("\n".join(grp["line"].tolist()) + "\n", level=3))
        stats["files"] += 1
    stats["lines"] = len(lines)
    return stats
