"""Render the marketer report: one self-contained HTML file (charts inline as SVG) and a PDF of it.

    from rapport.reports.render import render_report
    paths = render_report(published_db, settings.reports_dir, run_id=..., as_of=..., audiences_dir=...)

Writes `rapport_report_<as_of>.html` and `.pdf` into `out_dir`, then replaces `latest.html` and
`latest.pdf` atomically. `language` (en, ko, th: RAPPORT_REPORT_LANGUAGE) picks the message catalog and the
locale of numbers and dates (reports/i18n.py, docs/report.md "Languages"). The PDF needs Chromium
(scripts/install_chromium.sh); without it the run goes on with the HTML alone and a warning. See
docs/report.md for what the report shows.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from rapport.reports import charts
from rapport.reports.audience_files import AudienceFile, list_audience_files
from rapport.reports.data import (
    AT_RISK_HIGH_VALUE,
    BAD_SUPPORT,
    ActionList,
    CustomerBase,
    check_required,
    load_action_list,
    load_campaigns,
    load_customer_base,
    load_run_info,
    relation_columns,
)
from rapport.reports.decision_text import decision_rows, holdout_summary, reading_notes, verdict_labels
from rapport.reports.decisions import Decision, decide, learned_order
from rapport.reports.files import copy_atomic, remove_stale_temp_files, write_atomic
from rapport.reports.fonts import css_font_family
from rapport.reports.formatting import Formats, formats
from rapport.reports.glossary import (
    CAMPAIGN_DEFINITIONS,
    CAMPAIGN_TERMS,
    EMAIL_STATUS,
    LIFECYCLE_DESCRIPTIONS,
    LIFECYCLE_NAMES,
    RUN_STATUS,
    SEGMENT_DESCRIPTIONS,
    translated,
)
from rapport.reports.headline import (
    Baseline,
    baseline_from_db,
    baseline_from_history,
    cards,
    headline_values,
    load_history,
    record_history,
)
from rapport.reports.i18n import DEFAULT_LANGUAGE, check_language
from rapport.reports.markup import page_margins_css, template_helpers
from rapport.reports.migrations import load_migrations, load_segment_history
from rapport.reports.pdf import ChromiumUnavailable, PdfPrinter
from rapport.reports.prediction_data import (
    BACKTEST_ORDERS_ERROR,
    BACKTEST_PEOPLE,
    BACKTEST_REVENUE_ERROR,
    LIKELY_TO_BUY_MIN,
    PREDICTION_LIST_LIMIT,
    Predictions,
    load_predictions,
)
from rapport.reports.segment_sizes import CACHE_FILE as SIZES_CACHE

log = logging.getLogger("rapport.reports")

LEADERBOARD_SIZE = charts.MAX_CAMPAIGNS
DECISIONS_SHOWN = 30  # campaigns in the decisions table (the first by what was learned): two printed pages


@dataclass(frozen=True)
class ReportPaths:
    html: Path
    pdf: Path | None  # None when pdf=False or Chromium could not print


@cache
def environment(code: str = DEFAULT_LANGUAGE) -> Environment:
    """The Jinja environment of one report language: its gettext catalog and its formatting filters."""
    fmt = formats(code)
    # Autoescape on for everything: customer and campaign names are untrusted input.
    env = Environment(
        loader=PackageLoader("rapport.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # Whitespace inside {% trans %} is collapsed, as reports/babel.cfg extracts it.
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(fmt.lang.translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters.update(fmt.filters())
    env.filters.update(template_helpers(fmt))
    return env


def render_report(
    published_db: Path,
    out_dir: Path,
    *,
    run_id: str,
    as_of: date,
    audiences_dir: Path | None = None,
    previous_db: Path | None = None,
    pdf: bool = True,
    language: str = DEFAULT_LANGUAGE,
) -> ReportPaths:
    """`language`: en, ko or th (RAPPORT_REPORT_LANGUAGE); amounts stay US dollars in every language."""
    started = time.monotonic()
    code = check_language(language, "language")
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(out_dir)
    # Chromium starts now and prints once the HTML is written: its start overlaps the reading and the charts
    with PdfPrinter() if pdf else nullcontext() as printer:
        html_path, values, history = _write_html(
            published_db,
            out_dir,
            code,
            run_id=run_id,
            as_of=as_of,
            audiences_dir=audiences_dir,
            previous_db=previous_db,
        )
        record_history(out_dir, history, run_id=run_id, as_of=as_of, values=values)
        log.info("marketer report (%s) written to %s in %.1f s", code, html_path, time.monotonic() - started)

        pdf_path: Path | None = None
        if printer is not None:
            try:
                printer.print(html_path, html_path.with_suffix(".pdf"))
                pdf_path = html_path.with_suffix(".pdf")
                copy_atomic(pdf_path, out_dir / "latest.pdf")
                log.info("marketer report PDF written to %s", pdf_path)
            except ChromiumUnavailable as exc:
                log.warning("marketer report: NO PDF this run, the HTML report is complete at %s. %s", html_path, exc)
                pdf_path = None
    if pdf_path is None:
        # An older PDF beside a newer HTML would show different numbers under the same name.
        html_path.with_suffix(".pdf").unlink(missing_ok=True)
        (out_dir / "latest.pdf").unlink(missing_ok=True)
    return ReportPaths(html_path, pdf_path)


def _write_html(
    published_db: Path,
    out_dir: Path,
    code: str,
    *,
    run_id: str,
    as_of: date,
    audiences_dir: Path | None,
    previous_db: Path | None,
) -> tuple[Path, dict[str, float | None], list[dict[str, Any]]]:
    """Read the published file, draw the charts and write the HTML report (and latest.html); return its path,
    the headline values and the report history, for `record_history`."""
    fmt = formats(code)
    con = duckdb.connect(str(published_db), read_only=True)
    try:
        columns = relation_columns(con)
        check_required(columns)
        values = headline_values(con)
        base = load_customer_base(con)
        campaigns = load_campaigns(con)
        migrations = load_migrations(con, columns, previous_db)
        # the sizes of earlier dates are kept beside the reports: a day reads the day's changes of the log
        segment_history = load_segment_history(con, columns, out_dir / SIZES_CACHE)
        run = load_run_info(con, columns, run_id)
        # What the charts do not need is read meanwhile: DuckDB and file reads release the GIL that matplotlib
        # holds (at 1M people the lists and the audience files took 1.3 s, the charts 1.5 s, one after the other).
        # The connection is the worker's alone from here on; it is closed once the worker is done.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rapport-report") as pool:
            lists = pool.submit(_lists_and_files, con, columns, audiences_dir)
            history = load_history(out_dir)
            baseline = baseline_from_db(previous_db) if previous_db is not None and previous_db.exists() else None
            if baseline is None:
                baseline = baseline_from_history(history, run_id=run_id, as_of=as_of)
            decisions = decide(campaigns.campaigns)
            by_learning = learned_order(campaigns.campaigns)
            figures = {
                c.name: c
                for c in (
                    charts.segments_chart(base.segments, fmt),
                    charts.concentration_chart(base.top_20pct_revenue_share, fmt),
                    charts.lifecycle_chart(base.lifecycle, fmt),
                    charts.migrations_chart(migrations, fmt) if migrations else None,
                    charts.segment_history_chart(segment_history, fmt) if segment_history else None,
                    charts.campaign_rates_chart(campaigns.campaigns, fmt),
                    charts.lift_chart(by_learning, fmt),
                    charts.segment_lift_chart(campaigns.segment_lifts, by_learning, fmt),
                )
                if c is not None
            }
            at_risk, support, predictions, audience_files = lists.result()
    finally:
        con.close()
    env = environment(code)
    lang = fmt.lang
    html = env.get_template(
        "report.html.j2"
    ).render(
        css=Markup(env.loader.get_source(env, "report.css")[0]),  # type: ignore[union-attr]  # read as is
        lang=code,
        fonts={c: Markup(css_font_family(c)) for c in (code, "zh")},  # our constants, CSS not HTML
        as_of=as_of,
        run=run,
        generated_at=datetime.now(UTC),
        baseline=baseline,
        cards=cards(values, baseline),
        highlights=highlights(values, base, decisions, at_risk, support, baseline, fmt, predictions),
        base=base,
        campaigns=campaigns.campaigns,
        leaderboard=campaigns.campaigns[:LEADERBOARD_SIZE],
        decisions=decision_rows(decisions, fmt)[:DECISIONS_SHOWN],
        decisions_total=len(decisions),
        decisions_summary=holdout_summary(decisions, verdict_labels(fmt), fmt),
        reading_notes=reading_notes(fmt),
        untested=[c for c in campaigns.campaigns if not c.has_holdout],
        migrations=migrations,
        at_risk=at_risk,
        support=support,
        predictions=predictions,
        likely_min=LIKELY_TO_BUY_MIN,
        list_limit=PREDICTION_LIST_LIMIT,
        backtest={
            "people": BACKTEST_PEOPLE,
            "orders_error": abs(BACKTEST_ORDERS_ERROR),
            "revenue_error": abs(BACKTEST_REVENUE_ERROR),
        },
        audience_files=audience_files,
        audiences_dir=audiences_dir,
        charts=figures,
        segment_descriptions=translated(lang, SEGMENT_DESCRIPTIONS),
        lifecycle_names=translated(lang, LIFECYCLE_NAMES),
        lifecycle_descriptions=translated(lang, LIFECYCLE_DESCRIPTIONS),
        campaign_terms=translated(lang, CAMPAIGN_TERMS),
        campaign_definitions=translated(lang, CAMPAIGN_DEFINITIONS),
        email_status=translated(lang, EMAIL_STATUS),
        verdict_labels=verdict_labels(fmt),
        run_status=translated(lang, RUN_STATUS),
        page_margins=page_margins_css(fmt, css_font_family(code)),
    )

    html_path = out_dir / f"rapport_report_{as_of.isoformat()}.html"
    write_atomic(html_path, html.encode("utf-8"))
    copy_atomic(html_path, out_dir / "latest.html")
    return html_path, values, history


def _lists_and_files(
    con: duckdb.DuckDBPyConnection, columns: dict[str, set[str]], audiences_dir: Path | None
) -> tuple[ActionList, ActionList, Predictions, list[AudienceFile] | None]:
    """The report's lists of people (who to act on, the predictions') and the audience files beside it."""
    at_risk = load_action_list(con, AT_RISK_HIGH_VALUE)
    support = load_action_list(con, BAD_SUPPORT)
    return at_risk, support, load_predictions(con, columns), list_audience_files(audiences_dir)


def highlights(
    values: dict[str, float | None],
    base: CustomerBase,
    decisions: list[Decision],
    at_risk: ActionList,
    support: ActionList,
    baseline: Baseline | None,
    fmt: Formats | None = None,
    predictions: Predictions | None = None,
) -> list[str]:
    """The few sentences a reader should take away, in plain words: strings (escaped by the template), or
    Markup where a sentence holds a name marked as data."""
    fmt = fmt or formats()
    _, ngettext = fmt.lang.gettext, fmt.lang.ngettext
    out: list[str] = []
    now, before = values.get("revenue_usd"), baseline.values.get("revenue_usd") if baseline else None
    if baseline is not None and now is not None and before is not None:
        added = now - before
        if baseline.as_of:
            since = _("the report of %(date)s", date=fmt.longdate(baseline.as_of))
        else:
            since = _("the previous report")
        if added > 0:
            out.append(_("Revenue to date grew by %(amount)s since %(since)s.", amount=fmt.money(added), since=since))
        elif added < 0:
            out.append(_("Revenue to date fell by %(amount)s since %(since)s.", amount=fmt.money(-added), since=since))
        else:
            out.append(_("Revenue to date did not change since %(since)s.", since=since))
    if base.top_20pct_revenue_share is not None:
        out.append(
            ngettext(
                "Your top 20%% of customers (%(people)s person) bring in %(share)s of all revenue.",
                "Your top 20%% of customers (%(people)s people) bring in %(share)s of all revenue.",
                base.high_tier_customers,
                people=fmt.count(base.high_tier_customers),
                share=fmt.pct(base.top_20pct_revenue_share, 0),
            )
        )
    if at_risk.total:
        out.append(
            ngettext(
                "%(people)s of your highest-value customers is slipping away, with %(amount)s spent so far: "
                "see “Who to act on”.",
                "%(people)s of your highest-value customers are slipping away, with %(amount)s spent so far: "
                "see “Who to act on”.",
                at_risk.total,
                people=fmt.count(at_risk.total),
                amount=fmt.money(at_risk.total_revenue_usd),
            )
        )
    if predictions is not None and predictions.churn.total:
        churn = predictions.churn
        out.append(
            ngettext(
                "%(people)s high-value customer is likely to churn, with %(amount)s of revenue at risk over the next "
                "365 days: see “Who to act on: predictions”.",
                "%(people)s high-value customers are likely to churn, with %(amount)s of revenue at risk over the next "
                "365 days: see “Who to act on: predictions”.",
                churn.total,
                people=fmt.count(churn.total),
                amount=fmt.money(churn.value_usd),
            )
        )
    summary = holdout_summary(decisions, verdict_labels(fmt), fmt)
    if summary:
        out.append(summary)
    if support.total:
        out.append(
            ngettext(
                "%(people)s customer had a poor support experience recently: worth a personal follow-up.",
                "%(people)s customers had a poor support experience recently: worth a personal follow-up.",
                support.total,
                people=fmt.count(support.total),
            )
        )
    return out
