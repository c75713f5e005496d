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
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rapport.demo.common import DAY, HOUR, gz_bytes, random_tokens, rng_for

P_RETRY = 0.01
P_LATE_PARTITION = 0.02
P_MALFORMED = 0.0005
MAX_LINES_PER_FILE = 50_000
GARBAGE = ["<html><body><h1>502 Bad Gateway</h1></body></html>", "\x00\x00\x00\x00", "null,", '{"email":"', "]"]
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
SPILL_PREFIX = ".esp-events-spill-"  # under the output directory: on its disk, never in tmpfs memory
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
            '{"email":',
            _json_str(ev["email"][idx]),
            ',"timestamp":',
            pc.cast(pa.array(ev["timestamp"][idx]), pa.string()),
            f',"event":"{event_type}","sg_event_id":"',
            pa.array(ev["sg_event_id"][idx], type=pa.string()),
            '","sg_message_id":"',
            msg_i,
            '","campaign_id":"',
            pa.array(ev["campaign_id"][idx], type=pa.string()),
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
    """Turns each campaign's event rows into JSON lines as soon as they exist, adding sg_event_ids, receive
    times and webhook retries (a second delivery of the same line, minutes to hours later).

    Memory stays bounded at any scale: the JSON lines go to a spill directory on disk (one Arrow IPC file per
    campaign, one record batch per receive day) and only the receive times stay in memory (8 bytes a line).
    `write_event_files` then reads one receive day at a time. Line i of the spill is line i of the
    concatenation [lines of add 1, its retries, lines of add 2, its retries, ...], so the output is exactly
    what sorting that concatenation in memory would give. Call `close()` (or use `write_event_files`, which
    does) to remove the spill.
    """

    def __init__(self, seed: int, spill_dir: Path | None = None) -> None:
        self.rng = rng_for(seed, "esp-event-encoding")
        self.recv: list[np.ndarray] = []
        self.events = 0
        self.retries = 0
        self.lines = 0  # lines encoded so far, retries included (the next line's sequence number)
        self._spill_dir = spill_dir
        self._tmp: Path | None = None
        self._days: dict[int, list[tuple[Path, int]]] = {}  # receive day -> (spill file, record batch)

    def add(self, events: dict[str, np.ndarray]) -> None:
        n = len(events["timestamp"]) if events else 0
        if n == 0:
            return
        ev = dict(events, sg_event_id=random_tokens(self.rng, n, 22))
        recv = ev["timestamp"] + self.rng.integers(0, 90, size=n)
        retry = self.rng.random(n) < P_RETRY
        retry_recv = recv[retry] + self.rng.integers(300, 12 * HOUR, size=int(retry.sum()))
        lines = event_lines(ev)
        self._spill(np.concatenate([lines, lines[retry]]), np.concatenate([recv, retry_recv]))
        self.recv += [recv, retry_recv]
        self.events += n
        self.retries += int(retry.sum())

    def _spill(self, lines: np.ndarray, recv: np.ndarray) -> None:
        if self._tmp is None:
            base = self._spill_dir or Path(tempfile.gettempdir())
            base.mkdir(parents=True, exist_ok=True)
            self._tmp = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=base))
        seq = np.arange(self.lines, self.lines + len(lines), dtype="int64")
        day = recv // DAY
        by_day = np.argsort(day, kind="stable")
        day, seq = day[by_day], seq[by_day]
        text = pa.array(lines, type=pa.string()).take(pa.array(by_day))
        cuts = np.flatnonzero(np.concatenate([[True], day[1:] != day[:-1], [True]]))
        path = self._tmp / f"add-{len(self.recv) // 2:05d}.arrow"
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, _SPILL_SCHEMA) as writer:
            for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
                writer.write_batch(pa.record_batch([pa.array(seq[a:b]), text.slice(a, b - a)], schema=_SPILL_SCHEMA))
                self._days.setdefault(int(day[a]), []).append((path, i))
        self.lines += len(lines)

    def read_day(self, day: int) -> tuple[np.ndarray, pa.Array]:
        """(sequence numbers ascending, lines) of every line received on `day` (unix days)."""
        seqs, texts = [], []
        for path, i in self._days.get(day, []):
            with pa.OSFile(str(path)) as source:  # read, not memory-mapped: pages don't stay in this process
                batch = pa.ipc.open_file(source).get_batch(i)
            seqs.append(batch.column(0).to_numpy())
            texts.append(batch.column(1))
        if not seqs:
            return np.zeros(0, dtype="int64"), pa.array([], type=pa.string())
        seq = np.concatenate(seqs)
        order = np.argsort(seq, kind="stable")
        return seq[order], pa.concat_arrays(texts).take(pa.array(order))

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._days.clear()


_SPILL_SCHEMA = pa.schema([("seq", pa.int64()), ("line", pa.string())])


def write_event_files(esp_root: Path, encoded: EventEncoder, seed: int) -> dict[str, int]:
    """Write the events tree; returns counts of events, lines, files, retries, late files, malformed lines."""
    try:
        return _write_event_files(esp_root, encoded, seed)
    finally:
        encoded.close()


def _write_event_files(esp_root: Path, encoded: EventEncoder, seed: int) -> dict[str, int]:
    rng = rng_for(seed, "esp-event-files")
    stats = {
        "events": encoded.events,
        "retries": encoded.retries,
        "late_files": 0,
        "malformed_lines": 0,
        "files": 0,
        "lines": 0,
    }
    if not encoded.lines:
        return stats
    recv = np.concatenate(encoded.recv)
    encoded.recv.clear()
    order = np.argsort(recv, kind="stable")  # by receive time; order[p] is the sequence number of line p
    recv = recv[order]
    n = len(recv)

    # partition -> files: part-0000, part-0001 ... (big hours split), plus late files in a few partitions
    hour_key = recv // HOUR
    del recv
    first_of_hour = np.concatenate([[True], hour_key[1:] != hour_key[:-1]])
    start = np.maximum.accumulate(np.where(first_of_hour, np.arange(n), 0))
    del first_of_hour
    rank = np.arange(n) - start
    del start
    part = rank // MAX_LINES_PER_FILE
    keys, sizes = np.unique(hour_key, return_counts=True)
    n_parts = dict(zip(keys.tolist(), ((sizes - 1) // MAX_LINES_PER_FILE + 1).tolist(), strict=True))
    candidates = keys[sizes >= 5]  # late files go to partitions that also had files on time
    late_keys = candidates[rng.random(len(candidates)) < P_LATE_PARTITION]
    if len(late_keys) == 0 and len(candidates) >= 20:
        late_keys = candidates[rng.choice(len(candidates), size=2, replace=False)]
    late = np.isin(hour_key, late_keys) & (rank > 0) & (rng.random(n) < 0.4)
    del rank
    part_no = np.where(late, pd.Series(hour_key).map(n_parts).to_numpy(), part)
    del part
    file_code = hour_key * 10_000 + part_no * 2 + late  # one integer per output file
    del hour_key, part_no

    # malformed extra lines, each placed right after a real line of the same file (the random draws are
    # made here, in the order the in-memory version made them; the lines they cut are read with their day)
    k = min(n, max(3, int(round(n * P_MALFORMED))))
    after = np.sort(rng.choice(n, size=k, replace=False))
    cut_share = rng.uniform(0.2, 0.9, size=k)
    garbage = np.asarray(GARBAGE, dtype=object)[rng.integers(0, len(GARBAGE), size=k)]
    is_cut = rng.random(k) < 0.7
    all_code = np.concatenate([file_code, file_code[after]])
    all_order = np.concatenate([np.arange(n, dtype="float64"), after + 0.5])
    sort = np.lexsort((all_order, all_code))  # entry e of the output: line p = sort[e] (< n) or bad line sort[e]-n
    del all_order
    all_code = all_code[sort]
    stats["malformed_lines"] = k
    stats["late_files"] = len(np.unique(file_code[late]))
    del file_code, late

    root = esp_root / "events"
    bounds = np.flatnonzero(np.concatenate([[True], all_code[1:] != all_code[:-1], [True]]))
    day_loaded, day_seq, day_text = -1, np.zeros(0, dtype="int64"), pa.array([], type=pa.string())
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        code = int(all_code[a])
        hour, rest = divmod(code, 10_000)
        pno, is_late = divmod(rest, 2)
        if hour // 24 != day_loaded:  # files come in hour order: each receive day is read once
            day_loaded = hour // 24
            day_seq, day_text = encoded.read_day(day_loaded)
        entries = sort[a:b]
        bad = entries >= n
        pos = np.where(bad, after[np.where(bad, entries - n, 0)], entries)
        idx = np.searchsorted(day_seq, order[pos])
        lines = day_text.take(pa.array(idx)).to_pylist()
        for e in np.flatnonzero(bad):
            j = int(entries[e] - n)
            s = lines[e]
            lines[e] = s[: max(5, int(len(s) * cut_share[j]))] if is_cut[j] else garbage[j]
        dt = np.datetime64(hour * HOUR, "s").astype(object)
        path = root / f"dt={dt:%Y-%m-%d}" / f"hour={dt:%H}" / f"part-{pno:04d}{'-late' if is_late else ''}.jsonl.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(gz_bytes("\n".join(lines) + "\n", level=3))
        stats["files"] += 1
    stats["lines"] = len(all_code)
    return stats
