"""The customer predictions in the report (issue #22): what is read from marts.customer_predictions, and the
page "Who to act on: predictions" in English, Korean and Thai, fitted or not. Expected values are the
hand-computed ones of conftest.py (PREDICTIONS)."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import duckdb
import pytest
from report_text import parse, untranslated_words

from rapport.predictions.score import INSUFFICIENT, NOT_CONVERGED, PredictionConfig
from rapport.reports import prediction_data
from rapport.reports.data import relation_columns
from rapport.reports.prediction_data import load_predictions
from rapport.reports.render import environment, render_report

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2025, 6, 30)


def _load(db: Path, **kwargs):
    with duckdb.connect(str(db), read_only=True) as con:
        return load_predictions(con, relation_columns(con), **kwargs)


def _page(html: str) -> str:
    """The predictions page of a rendered report."""
    return html[
        html.index('<section class="page" id="predictions">') : html.index('<section class="page" id="audiences">')
    ]


def _section(db: Path, out: Path, language: str = "en") -> str:
    paths = render_report(db, out, run_id="run_cur", as_of=AS_OF, pdf=False, language=language)
    return _page(paths.html.read_text(encoding="utf-8"))


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_outlook_lists_and_revenue_at_risk_by_hand(published_db: Path) -> None:
    p = _load(published_db)
    assert (p.model.status, p.model.buyers, p.model.fitted_on) == ("fitted", 10, 10)
    assert p.outlook is not None
    assert p.outlook.orders_90d == pytest.approx(3.81)
    assert p.outlook.revenue_90d_usd == pytest.approx(1081.0)
    # high value and high churn risk: c02 alone (c04 is mid tier; c09, c10 low tier)
    assert [r["customer_id"] for r in p.churn.rows] == ["c02"] and p.churn.total == 1
    assert p.churn.value_usd == pytest.approx(480.0)  # 120 x (1 - 0.2) / 0.2
    assert p.churn.rows[0]["email"] == "e***@example.com"  # masked like every list
    # p_order_90d >= 0.5, likeliest first; c07 sits on the boundary
    assert [r["customer_id"] for r in p.likely.rows] == ["c01", "c03", "c07"] and p.likely.total == 3
    assert p.likely.value_usd == pytest.approx(820.0)


def test_churn_list_ranks_by_revenue_at_risk_and_keeps_totals_beyond_the_limit(make_published_db, facts) -> None:
    people = [(*p[:14], "high", p[15]) if p[0] in ("c04", "c09") else p for p in facts.people]
    predictions = [(*r[:1], 0.0, *r[2:]) if r[0] == "c09" else r for r in facts.predictions]  # p_alive 0: no division
    p = _load(make_published_db(people=people, predictions=predictions))
    # c02 480; c04 80 x 0.75 / 0.25 = 240; c09 0 (its chance of still buying is 0)
    assert [(r["customer_id"], r["revenue_at_risk_usd"]) for r in p.churn.rows] == [
        ("c02", pytest.approx(480.0)),
        ("c04", pytest.approx(240.0)),
        ("c09", 0.0),
    ]
    assert p.churn.value_usd == pytest.approx(720.0)
    capped = _load(make_published_db("capped.duckdb", people=people, predictions=predictions), limit=1)
    assert [r["customer_id"] for r in capped.churn.rows] == ["c02"] and capped.churn.total == 3
    assert capped.likely.total == 3 and len(capped.likely.rows) == 1


UNFITTED = {
    "insufficient": "No predictions yet: only 10 customers have bought so far, and the model needs the purchase "
    "histories of at least 200 customers to be trusted.",
    "not converged": "No predictions this time: the model could not be fitted to this data (the fit did not "
    "converge), so this page shows no numbers rather than wrong ones.",
    "none": "No predictions yet: nobody has bought so far",
    "absent": "Predictions are not available: this warehouse does not publish marts.customer_predictions .",
}


def _unfitted_db(make_published_db, facts, rows: str) -> Path:
    predictions = {
        "insufficient": facts.unfitted(INSUFFICIENT),
        "not converged": facts.unfitted(NOT_CONVERGED),
        "none": [],
        "absent": None,
    }[rows]
    return make_published_db(f"{rows}.duckdb", people=[] if rows == "none" else facts.people, predictions=predictions)


@pytest.mark.parametrize(
    ("rows", "status", "buyers"),
    [
        ("insufficient", INSUFFICIENT, 10),
        ("not converged", NOT_CONVERGED, 10),
        ("none", INSUFFICIENT, 0),
        ("absent", "absent", 0),
    ],
)
def test_model_states(make_published_db, facts, rows: str, status: str, buyers: int) -> None:
    p = _load(_unfitted_db(make_published_db, facts, rows))
    assert (p.model.status, p.model.buyers, p.model.fitted) == (status, buyers, False)
    assert p.outlook is None and p.churn.total == p.likely.total == 0


def test_a_sampled_fit_is_said_so(published_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prediction_data, "load_config", lambda: PredictionConfig(max_fit_customers=4))
    assert _load(published_db).model.fitted_on == 4
    text = _text(_section(published_db, tmp_path))
    assert "The model learned from a sample of 4 of the 10 customers who bought up to 30 June 2025" in text


def test_the_page_in_english(full_report) -> None:
    html = full_report.html
    text = _text(_page(html))
    for expected in (
        "Expected orders, next 90 days 4 ",
        "Expected revenue, next 90 days $1,081 ",
        "Revenue at risk $480 ",
        "The model learned from the purchase histories of the 10 customers who bought up to 30 June 2025.",
        "Tested on the past of the demo shop (100,000 people), its 90-day totals were off by 5.7% for orders and "
        "6.5% for revenue; how it works and when not to trust it: docs/predictions.md .",
        "whose chance of still buying is below 30% (churn risk: high), the most revenue at risk first. "
        "1 person, with $480 of revenue at risk.",
        "chance of an order in the next 90 days is 50% or more",
        "3 people, expected to spend $820 together in the next 90 days.",
        "e***@example.com $2,000 120 20% $120 $480 unsubscribed",  # c02: spent, days, chance, value, at risk
        "a***@gmail.com 62% 1.2 $450 $3,000 Champions can email",  # c01 first by its chance of an order
    ):
        assert expected in text, expected
    assert text.index("a***@gmail.com 62%") < text.index("m***@naver.com 55%") < text.index("w***@qq.com 50%")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
    # "At a glance" says it too
    assert (
        "1 high-value customer is likely to churn, with $480 of revenue at risk over the next 365 days: see "
        "“Who to act on: predictions”."
    ) in _text(html)


def test_without_a_fit_the_report_says_why_and_shows_no_numbers(make_published_db, facts, tmp_path: Path) -> None:
    section = _section(_unfitted_db(make_published_db, facts, "insufficient"), tmp_path)
    assert 'class="card"' not in section and "<table" not in section and "$" not in section
    assert UNFITTED["insufficient"] in _text(section)


@pytest.mark.parametrize("language", ["en", "ko", "th"])
@pytest.mark.parametrize("rows", list(UNFITTED))
def test_every_state_without_a_fit_in_every_language(make_published_db, facts, rows: str, language: str) -> None:
    """The page alone (the report's own template and loader; a whole report per case would take a second)."""
    predictions = _load(_unfitted_db(make_published_db, facts, rows))
    section = (
        environment(language).get_template("customer_predictions.html.j2").render(predictions=predictions, as_of=AS_OF)
    )
    assert 'class="card"' not in section and "<table" not in section
    assert "$" not in section and "%" not in section
    if language == "en":
        assert UNFITTED[rows] in _text(section)
    else:
        assert untranslated_words(parse(section), set()) == []


@pytest.mark.parametrize("language", ["ko", "th"])
def test_the_page_in_korean_and_thai(intl_reports, language: str) -> None:
    section = _page(intl_reports[language].html)
    assert untranslated_words(parse(section), set()) == []
    text = _text(section)
    for expected in {
        "ko": [
            "향후 90일",
            "이탈 위험 매출",
            "US$480",
            "US$1,081",
            "재구매 가능성이 높은 고객",
            "2025년 6월 30일까지",
            "5.7%",
            "6.5%",
            "계속 구매할 확률이 30% 미만",
        ],
        "th": [
            "90 วันข้างหน้า",
            "รายได้ที่เสี่ยงสูญเสีย",
            "US$480",
            "US$1,081",
            "ลูกค้าที่มีแนวโน้มจะซื้ออีก",
            "30 มิถุนายน ค.ศ. 2025",
            "5.7%",
            "6.5%",
            "ต่ำกว่า 30%",
        ],
    }[language]:
        assert expected in text, expected


def test_backtest_figures_are_the_docs() -> None:
    """The report quotes the backtest of docs/predictions.md: the constants must follow the docs' table."""
    docs = (ROOT / "docs" / "predictions.md").read_text(encoding="utf-8")
    section = docs[docs.index(f"**{prediction_data.BACKTEST_PEOPLE:,} people**") :]
    row = next(line for line in section.splitlines() if line.startswith("| Pareto/NBD + Gamma-Gamma"))
    errors = re.findall(r"/ ([+-]\d+\.\d)%", row)
    assert [float(e) / 100 for e in errors] == [
        prediction_data.BACKTEST_ORDERS_ERROR,
        prediction_data.BACKTEST_REVENUE_ERROR,
    ]
