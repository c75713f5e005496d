"""The demo generator: seeded, deterministic source systems for rapport, with ground truth kept apart.

`generate(out_dir, people=3000, seed=7, end=None, months=15)` writes

    out_dir/shop.db                                   orders database (SQLite, sources.md section 1)
    out_dir/helpdesk/users.jsonl.gz, tickets.jsonl.gz  helpdesk item versions (serve with helpdesk_server)
    out_dir/esp/contacts/contacts_YYYYMMDD.csv         ESP exports (sources.md section 3)
    out_dir/esp/campaigns/campaigns_YYYYMMDD.csv
    out_dir/esp/audiences/{campaign_id}.csv
    out_dir/esp/events/dt=YYYY-MM-DD/hour=HH/part-NNNN[-late].jsonl.gz
    out_dir/ground_truth/identities.parquet, campaigns.parquet, summary.json

The output is a pure function of (people, seed, end, months, large_holdout_share): same inputs,
byte-identical files. `large_holdout_share` (default 0.3) is the share of campaigns with a control group
that hold out 30-50% of their audience rather than 5-20%: 1.0 gives every test an adequately large
control group (the campaign statistics' coverage test uses that). `extend.extend` continues such a demo
to a later day (what `rapport demo` does on a later day).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from rapport.demo.campaigns import LARGE_HOLDOUT_SHARE, plan_campaigns, run_campaigns, write_campaign_files
from rapport.demo.common import make_period, seasonality
from rapport.demo.esp_contacts import build_contacts, initial_log, write_contact_snapshots
from rapport.demo.esp_events import SPILL_PREFIX, EventEncoder, write_event_files
from rapport.demo.extend import STATE_DIR, STATE_FILE
from rapport.demo.helpdesk_data import build_helpdesk, write_helpdesk
from rapport.demo.orders import build_orders, natural_orders
from rapport.demo.people import build_people, true_address_keys
from rapport.demo.shop import build_customers, build_fx, write_shop_db
from rapport.demo.truth import campaign_truth, identities, write_parquet, write_summary


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    shop_db: Path
    helpdesk_dir: Path
    esp_dir: Path
    ground_truth_dir: Path
    people: int
    seed: int
    start: date
    end: date
    months: int
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def generate(
    out_dir: Path,
    *,
    people: int = 3000,
    seed: int = 7,
    end: date | None = None,
    months: int = 15,
    large_holdout_share: float = LARGE_HOLDOUT_SHARE,
    progress: Callable[[str], None] | None = None,
) -> GenerationSummary:
    if people < 1 or months < 1:
        raise ValueError("people and months must be at least 1")
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    end = end or datetime.now(UTC).date()
    out_dir = Path(out_dir)
    period = make_period(end, months)
    season = seasonality(period)
    shop_db, helpdesk_dir = out_dir / "shop.db", out_dir / "helpdesk"
    esp_dir, truth_dir = out_dir / "esp", out_dir / "ground_truth"
    out_dir.mkdir(parents=True, exist_ok=True)
    for d in (helpdesk_dir, esp_dir, truth_dir):  # only what we write: stale files would break determinism
        if d.exists():
            shutil.rmtree(d)
    for d in out_dir.glob(f"{SPILL_PREFIX}*"):  # left behind by a generator that was killed
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(out_dir / STATE_DIR, ignore_errors=True)  # a fresh base: no continuation of an older one
    (out_dir / STATE_FILE).unlink(missing_ok=True)

    say(f"people: {people}")
    pop = build_people(people, seed, period)
    taken = true_address_keys(pop)
    say("shop customers")
    customers = build_customers(pop, seed, period, taken)
    natural = natural_orders(pop, seed, period, season)
    say("esp contacts")
    contacts = build_contacts(pop, seed, period, taken)
    log = initial_log(contacts, seed, period)
    say("campaigns")
    plan = plan_campaigns(seed, period, large_holdout_share)
    # event lines are spilled to disk as campaigns run (bounded memory at any scale)
    encoder = EventEncoder(seed, spill_dir=out_dir)
    try:
        fx = build_fx(seed, period)
        run = run_campaigns(pop, contacts, log, natural, plan, seed, period, season, fx, on_events=encoder.add)
        del log  # run.log continues it
        say("orders")
        orders, items = build_orders(pop, customers, natural, run.caused_orders, run.clicks, seed, period, taken)
        say("writing shop.db")
        write_shop_db(shop_db, customers, orders, items, fx)
        n_items, n_fx = len(items), len(fx)
        del natural, items  # what is no longer needed is let go: memory matters at a million people
        say("helpdesk")
        users, tickets, hd_people = build_helpdesk(pop, customers, seed, period, taken)
        write_helpdesk(helpdesk_dir, users, tickets)
        hd_counts = {
            "helpdesk_user_versions": len(users),
            "helpdesk_end_users": len(hd_people),
            "helpdesk_ticket_versions": len(tickets),
            "helpdesk_tickets": len({t["id"] for t in tickets}),
        }
        del users, tickets
        say("writing esp exports")
        contact_files = write_contact_snapshots(esp_dir, contacts, run.log, period)
        campaign_files = write_campaign_files(esp_dir, run, period)
        ev_stats = write_event_files(esp_dir, encoder, seed)
    finally:
        encoder.close()

    say("ground truth")
    ident = identities(customers, orders, hd_people, contacts, run.audiences)
    write_parquet(ident, truth_dir / "identities.parquet")
    camp_truth = campaign_truth(run.campaigns, orders, fx)
    write_parquet(camp_truth, truth_dir / "campaigns.parquet")
    counts = {
        "people": people,
        "customers": len(customers),
        "orders": len(orders),
        "guest_orders": int((orders["customer_id"] < 0).sum()),
        "valid_orders": int(orders["status"].isin(["paid", "fulfilled", "partially_refunded"]).sum()),
        "campaign_caused_orders": len(run.caused_orders),
        "order_items": n_items,
        "fx_rates": n_fx,
        **hd_counts,
        "esp_contacts": len(contacts),
        "esp_contact_snapshots": contact_files,
        "esp_campaign_snapshots": campaign_files,
        "campaigns": len(run.campaigns),
        "audience_rows": len(run.audiences),
        "esp_events": ev_stats["events"],
        "esp_event_lines": ev_stats["lines"],
        "esp_event_files": ev_stats["files"],
        "esp_event_retries": ev_stats["retries"],
        "esp_event_late_files": ev_stats["late_files"],
        "esp_event_malformed_lines": ev_stats["malformed_lines"],
        "identity_records": len(ident),
        "people_with_records": int(ident["person_id"].nunique()),
    }
    counts.update({f"identity_records.{k}": int(v) for k, v in ident["source"].value_counts().sort_index().items()})
    write_summary(
        truth_dir / "summary.json",
        {
            "parameters": {
                "people": people,
                "seed": seed,
                "end": end.isoformat(),
                "months": months,
                "start": period.start.isoformat(),
                "large_holdout_share": large_holdout_share,
            },
            "counts": counts,
            "notes": "ESP contact and campaign snapshots are daily for the last 14 days (through `end`) and on "
            "the 1st of each earlier month; all events and orders are before `end` 00:00 UTC.",
        },
    )
    say("done")
    return GenerationSummary(
        out_dir=out_dir,
        shop_db=shop_db,
        helpdesk_dir=helpdesk_dir,
        esp_dir=esp_dir,
        ground_truth_dir=truth_dir,
        people=people,
        seed=seed,
        start=period.start,
        end=end,
        months=months,
        counts=counts,
        seconds=time.perf_counter() - t_start,
    )


__all__ = ["GenerationSummary", "generate"]
