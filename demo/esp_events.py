"""Webhook event files: `events/dt=YYYY-MM-DD/hour=HH/part-NNNN.jsonl.gz`, partitioned by the time the
receiver got each POST, with the dirt a real webhook pipeline collects:

- retries: ~1% of events are delivered again minutes to hours later (same sg_event_id, another file);
- late files: a few hour partitions get an extra `part-NNNN-late.jsonl.gz` holding some of their events;
- malformed lines: ~0.05% extra lines that are cut mid-JSON or are not JSON at all.
Lines are built with pyarrow's element-wise string functions and files are cut with numpy; no per-event
Python beyond joining each file's lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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


def _json_str(values: np.ndarray) -> pa.Array:
    """JSON string literals: plain quoting where nothing needs escaping (the usual case), else json.dumps."""
    arr = pa.array(values, type=pa.string())
    out = pc.binary_join_element_wise('"', arr, '"', "")
    special = pc.match_substring_regex(arr, _NEEDS_ESCAPE).to_numpy(zero_copy_only=False)
    if special.any():
        fixed = out.to_numpy(zero_copy_only=False).astype(object)
        fixed[special] = [json.dumps(v, ensure_ascii=False) for v in values[special]]
        out = pa.array(fixed, type=pa.string())
    return out


def _column(values: np.ndarray, name: str) -> pa.Array:
    if name in NUMERIC:
        return pc.cast(pa.array(values.astype("int64")), pa.string())
    if name in BOOLEAN:
        return pa.array(np.where(values.astype(bool), "true", "false"), type=pa.string())
    return _json_str(values)


def event_lines(ev: dict[str, np.ndarray]) -> np.ndarray:
    """One JSON object per row (in row order), holding only the fields its event type carries.
    `ev` holds one numpy array per column (object arrays for text)."""
    n = len(ev["timestamp"])
    event = ev["event"]
    msg = ev["sg_message_id"]
    chunks, positions = [], []
    for event_type, fields in FIELDS.items():
        idx = np.flatnonzero(event == event_type)
        if not len(idx):
            continue
        msg_i = pa.array(msg[idx], type=pa.string())
        parts: list[pa.Array | str] = [
            '{"email":', _json_str(ev["email"][idx]),
            ',"timestamp":', pc.cast(pa.array(ev["timestamp"][idx]), pa.string()),
            f',"event":"{event_type}","sg_event_id":"', pa.array(ev["sg_event_id"][idx], type=pa.string()),
            '","sg_message_id":"', msg_i,
            '","campaign_id":"', pa.array(ev["campaign_id"][idx], type=pa.string()),
            '","category":["newsletter"]',
        ]
        for f in fields:
            if f == "smtp-id":
                parts += [',"smtp-id":"<', pc.utf8_slice_codeunits(msg_i, 0, 22), '@maru-shop.com>"']
            else:
                parts += [f',"{f}":', _column(ev[f][idx], f)]
        parts.append("}")
        chunks.append(pc.binary_join_element_wise(*parts, ""))
        positions.append(idx)
    lines = pa.concat_arrays(chunks).to_numpy(zero_copy_only=False)
    out = np.empty(n, dtype=object)
    out[np.concatenate(positions)] = lines
    return out


class EventEncoder:
    """Turns each campaign's event rows into JSON lines as soon as they exist (the wide per-event frame of
    all campaigns never has to be in memory at once), adding sg_event_ids, receive times and webhook
    retries (a second delivery of the same line, minutes to hours later)."""

    def __init__(self, seed: int) -> None:
        self.rng = rng_for(seed, "esp-event-encoding")
        self.recv: list[np.ndarray] = []
        self.lines: list[np.ndarray] = []
        self.events = 0
        self.retries = 0

    def add(self, events: dict[str, np.ndarray]) -> None:
        n = len(events["timestamp"]) if events else 0
        if n == 0:
            return
        ev = dict(events, sg_event_id=random_tokens(self.rng, n, 22))
        recv = ev["timestamp"] + self.rng.integers(0, 90, size=n)
        retry = self.rng.random(n) < P_RETRY
        retry_recv = recv[retry] + self.rng.integers(300, 12 * HOUR, size=int(retry.sum()))
        lines = event_lines(ev)
        self.recv += [recv, retry_recv]
        self.lines += [lines, lines[retry]]
        self.events += n
        self.retries += int(retry.sum())


def write_event_files(esp_root: Path, encoded: EventEncoder, seed: int) -> dict[str, int]:
    """Write the events tree; returns counts of events, lines, files, retries, late files, malformed lines."""
    rng = rng_for(seed, "esp-event-files")
    stats = {"events": encoded.events, "retries": encoded.retries, "late_files": 0, "malformed_lines": 0,
             "files": 0, "lines": 0}
    if not encoded.lines:
        return stats
    recv = np.concatenate(encoded.recv)
    lines = np.concatenate(encoded.lines)
    encoded.recv.clear()
    encoded.lines.clear()
    order = np.argsort(recv, kind="stable")  # by receive time
    recv, lines = recv[order], lines[order]
    n = len(lines)

    # partition -> files: part-0000, part-0001 ... (big hours split), plus late files in a few partitions
    hour_key = recv // HOUR
    first_of_hour = np.concatenate([[True], hour_key[1:] != hour_key[:-1]])
    start = np.maximum.accumulate(np.where(first_of_hour, np.arange(n), 0))
    rank = np.arange(n) - start
    part = rank // MAX_LINES_PER_FILE
    keys, sizes = np.unique(hour_key, return_counts=True)
    n_parts = dict(zip(keys.tolist(), ((sizes - 1) // MAX_LINES_PER_FILE + 1).tolist(), strict=True))
    candidates = keys[sizes >= 5]  # late files go to partitions that also had files on time
    late_keys = candidates[rng.random(len(candidates)) < P_LATE_PARTITION]
    if len(late_keys) == 0 and len(candidates) >= 20:
        late_keys = candidates[rng.choice(len(candidates), size=2, replace=False)]
    late = np.isin(hour_key, late_keys) & (rank > 0) & (rng.random(n) < 0.4)
    part_no = np.where(late, pd.Series(hour_key).map(n_parts).to_numpy(), part)
    file_code = hour_key * 10_000 + part_no * 2 + late  # one integer per output file

    # malformed extra lines, each placed right after a real line of the same file
    k = min(n, max(3, int(round(n * P_MALFORMED))))
    after = np.sort(rng.choice(n, size=k, replace=False))
    cut = [s[: max(5, int(len(s) * f))] for s, f in zip(lines[after], rng.uniform(0.2, 0.9, size=k), strict=True)]
    garbage = np.asarray(GARBAGE, dtype=object)[rng.integers(0, len(GARBAGE), size=k)]
    bad = np.where(rng.random(k) < 0.7, np.asarray(cut, dtype=object), garbage)
    all_lines = np.concatenate([lines, bad])
    all_code = np.concatenate([file_code, file_code[after]])
    all_order = np.concatenate([np.arange(n, dtype="float64"), after + 0.5])
    sort = np.lexsort((all_order, all_code))
    all_lines, all_code = all_lines[sort], all_code[sort]
    stats["malformed_lines"] = k
    stats["late_files"] = len(np.unique(file_code[late]))

    root = esp_root / "events"
    bounds = np.flatnonzero(np.concatenate([[True], all_code[1:] != all_code[:-1], [True]]))
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        code = int(all_code[a])
        hour, rest = divmod(code, 10_000)
        pno, is_late = divmod(rest, 2)
        dt = np.datetime64(hour * HOUR, "s").astype(object)
        path = root / f"dt={dt:%Y-%m-%d}" / f"hour={dt:%H}" / f"part-{pno:04d}{'-late' if is_late else ''}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_bytes("\n".join(all_lines[a:b].tolist()) + "\n", level=3))
        stats["files"] += 1
    stats["lines"] = len(all_lines)
    return stats
