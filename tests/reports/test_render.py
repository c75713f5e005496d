"""render_report end to end without a browser (pdf=False or Chromium made unavailable)."""

from __future__ import annotations

import json
import logging
import re
from datetime import date
from pathlib import Path

import pytest

from rapport.reports.render import render_report

ALL_CHARTS = {
    "segments",
    "concentration",
    "lifecycle",
    "migrations",
    "segment_history",
    "campaign_rates",
    "campaign_lift",
    "segment_lift",
}


def _render(db: Path, out: Path, **kwargs) -> tuple[Path, str]:
    kwargs.setdefault("run_id", "run_cur")
    kwargs.setdefault("as_of", date(2025, 6, 30))
    kwargs.setdefault("pdf", False)
    paths = render_report(db, out, **kwargs)
    return paths.html, paths.html.read_text(encoding="utf-8")


def test_writes_dated_and_latest_html(full_report) -> None:
    out, paths, html = full_report.out_dir, full_report.paths, full_report.html
    assert paths.html == out / "rapport_report_2025-06-30.html"
    assert paths.pdf is None
    assert (out / "latest.html").read_bytes() == paths.html.read_bytes()
    assert json.loads((out / "history.json").read_text())["entries"][0]["run_id"] == "run_cur"
    assert not list(out.glob(".*"))  # no temporaries left behind
    assert "Since 31 May 2025, 10 customers moved to another segment, 5 are new to the list" in html
    assert set(re.findall(r'data-chart="([a-z_]+)"', html)) == ALL_CHARTS
    assert html.count('<svg class="chart-svg"') == len(ALL_CHARTS)
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    # audience files with their full paths and people counts; hidden temporaries are not listed
    assert str((full_report.audiences_dir / "champions.csv").resolve()) in html
    assert ".at_risk.csv.tmp" not in html


def test_untrusted_names_are_escaped_everywhere(full_report) -> None:
    html = full_report.html
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # tables, verdicts and charts
    assert "=HYPERLINK(&#34;http://evil.example&#34;,&#34;click me&#34;)" in html
    # nothing reaches the network: no remote sources, and a policy that forbids them anyway
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "@import" not in html and "url(http" not in html
    assert "default-src 'none'" in html


def test_full_emails_never_appear(full_report, facts) -> None:
    for person in facts.people:
        if person[2]:
            assert person[2] not in full_report.html, person[2]
    assert "e***@example.com" in full_report.html and "b***@example.net" in full_report.html


def test_leaderboard_shows_each_verdict_by_name(full_report) -> None:
    board = full_report.html.split('<table class="leaderboard">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="(\w+)">.*?<span class="name"[^>]*>([^<]*)</span>', board, flags=re.S)
    assert rows == [  # by revenue after the email
        ("increased", "Spring Sale"),
        ("too_small", "Flash Sale"),
        ("no_effect", "Summer Newsletter"),
        ("no_holdout", "VIP Newsletter"),
        ("too_small", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; =HYPERLINK(&#34;http://x&#34;)"),
        ("decreased", "Winback $5 off, save $$"),
    ]
    assert '<span class="badge green">increased sales</span>' in board
    assert '<span class="badge red">decreased sales</span>' in board
    assert board.count('<span class="badge grey">too small to tell</span>') == 2
    assert '<span class="badge grey">no holdout group</span>' in board


@pytest.mark.slow  # three renders
def test_change_against_the_previous_report(make_published_db, tmp_path: Path, facts) -> None:
    out = tmp_path / "reports"
    previous = make_published_db("previous.duckdb", people=[p for p in facts.people if p[0] != "c07"])
    current = make_published_db("current.duckdb")
    _, first = _render(previous, out, run_id="run_prev", as_of=date(2025, 5, 31))
    assert "This is the first report" in first
    _, html = _render(current, out)
    assert "against the previous report, of 31 May 2025" in html
    # revenue 8300 -> 8600, buyers 9 -> 10, new customers 0 -> 1 (c07 is the difference)
    assert "Revenue to date grew by $300 since the report of 31 May 2025." in html
    assert re.search(r"\$8,600</div>\s*<div class=\"change good\">▲\s*\+\$300\s*\(\+3\.6%\)", html)
    assert re.search(r">10</div>\s*<div class=\"change good\">▲\s*\+1\s*\(\+11\.1%\)", html)
    # rendering the same run again compares with the previous run, never with itself
    _, again = _render(current, out)
    assert "Revenue to date grew by $300" in again
    history = json.loads((out / "history.json").read_text())["entries"]
    assert [e["run_id"] for e in history] == ["run_prev", "run_cur"]


def test_previous_published_file_gives_changes_and_migrations(make_published_db, tmp_path: Path, facts) -> None:
    previous = make_published_db("previous.duckdb", people=[p for p in facts.people if p[0] != "c07"])
    current = make_published_db("current.duckdb")
    _, html = _render(current, tmp_path / "reports", previous_db=previous)
    assert "Revenue to date grew by $300" in html
    assert "from the previous published file" in html
    assert "source: the previous published file" in html
    assert 'data-chart="migrations"' in html


def test_first_run_migrations_say_there_is_nothing_to_compare(make_published_db, tmp_path: Path) -> None:
    db = make_published_db(migrations=[("(absent)", "Champions", 3)], migration_dates=(None, date(2025, 6, 30)))
    _, html = _render(db, tmp_path)
    assert "This is the first snapshot of customer segments" in html
    assert 'data-chart="migrations"' not in html


def test_optional_relations_absent_are_explained(make_published_db, tmp_path: Path) -> None:
    _, html = _render(make_published_db(), tmp_path)
    assert "Segment migrations are not available yet" in html
    assert 'data-chart="migrations"' not in html and 'data-chart="segment_history"' not in html


def test_empty_warehouse_still_renders(make_published_db, tmp_path: Path) -> None:
    _, html = _render(make_published_db(people=[], campaigns=[]), tmp_path)
    assert "No campaigns were sent yet" in html
    assert "No high-value customer is slipping away right now." in html
    assert 'data-chart="campaign_lift"' not in html


def test_no_chromium_keeps_the_html_and_warns(
    published_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    (out / "latest.pdf").write_bytes(b"%PDF- an older report")
    monkeypatch.setenv("RAPPORT_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with caplog.at_level(logging.WARNING, logger="rapport.reports"):
        paths = render_report(published_db, out, run_id="run_cur", as_of=date(2025, 6, 30), pdf=True)
    assert paths.pdf is None and paths.html.exists()
    assert "NO PDF" in caplog.text and "install_chromium.sh" in caplog.text
    assert not (out / "latest.pdf").exists()  # a stale PDF would not match latest.html


def test_thousands_of_customers_keep_the_long_lists_capped(make_published_db, tmp_path: Path) -> None:
    """5,000 customers and 32 campaigns: the long lists stay capped and say so (the report's speed is
    measured by bench/run.py's report stage, not here)."""
    import duckdb

    path = make_published_db(people=[])
    segments = ["Champions", "Loyal Customers", "At Risk", "Cannot Lose Them", "Hibernating", "No Purchases"]
    with duckdb.connect(str(path)) as con:
        con.execute(
            """
            insert into marts.customers
            select 'p' || i, 'person' || i || '@example.com', null, 'Person ' || i, 'US', timestamp '2024-01-01',
                   1 + i % 7, 10 + (i * 37) % 990, 50, null, null, i % 4, i % 2, 0, (i % 3 = 0)::int, 60.0,
                   'subscribed', 0, 0, 0, null
            from range(5000) t(i)
            """
        )
        con.execute(
            f"""
            insert into marts.customer_segments
            select 'p' || i, date '2025-06-30', i % 400, 1 + i % 7, 10 + (i * 37) % 990, null, null, null,
                   {segments}[1 + i % 6], ['active', 'at_risk', 'churned'][1 + i % 3],
                   case when i % 5 = 0 then 'high' when i % 2 = 0 then 'mid' else 'low' end,
                   'dormant', case when i % 3 = 0 then 'at_risk' else 'healthy' end
            from range(5000) t(i)
            """
        )
        con.execute(
            "insert into marts.campaign_performance select p.* replace ('bulk_' || n as campaign_id, "
            "'Bulk campaign ' || n as name) from marts.campaign_performance p, range(26) t(n) "
            "where p.campaign_id = 'cmp_spring'"
        )
        con.execute(
            "insert into marts.segment_summary select s.rfm_segment, count(*), sum(c.lifetime_revenue_usd), "
            "sum(c.lifetime_revenue_usd) / 2000000, avg(c.avg_order_value_usd) from marts.customer_segments s "
            "join marts.customers c using (customer_id) group by all"
        )
    _, html = _render(path, tmp_path / "reports")
    assert "the 15 who spent most are shown" in html
    assert "32 campaigns, ranked by revenue after the email; the top 12 are shown." in html
    board = html.split('<table class="leaderboard">', 1)[1].split("</table>", 1)[0]
    assert board.count("<tr class=") == 12
    # 31 with a holdout group: the decisions table shows the first 30 and says so
    assert html.count('<tr class="verdict ') == 30
    assert "These are the first 30 of 31 campaigns with a holdout group, by what was learned" in html
