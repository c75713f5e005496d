"""The campaign decisions in the report (issue #20): order by what was learned, the words of each verdict,
the holdout that would tell, the flag on revenue ranges resting on few buyers, the honest headline.

Expected sentences are written by hand; the suggested holdout is checked against statsmodels' power
calculation; numbers come from the fixture of conftest.py (statsmodels' values for its counts).
"""

from __future__ import annotations

import re
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.power import NormalIndPower

from rapport.reports.data import Campaign
from rapport.reports.decision_text import decision_rows, holdout_summary, verdict_labels
from rapport.reports.decisions import MIN_BUYERS, VERDICT_ORDER, decide, few_buyers, learned_order
from rapport.reports.formatting import formats


def _campaign(cid: str, verdict: str | None, *, q: float | None = 0.5, mde: float | None = 0.03,
              lift: tuple[float, float, float] | None = (0.01, -0.01, 0.03), treatment: int = 1000,
              control: int = 1000, buyers: tuple[int, int] = (50, 40), revenue: float = 0.0) -> Campaign:  # fmt: skip
    held_out = lift is not None
    return Campaign(
        campaign_id=cid,
        name=cid,
        send_at=datetime(2025, 6, 1),
        treatment_size=treatment,
        control_size=control if held_out else 0,
        open_rate=0.4,
        click_rate=0.1,
        conversion_rate=buyers[0] / treatment,
        control_conversion_rate=buyers[1] / control if held_out else None,
        attributed_revenue_usd=revenue,
        lift_abs=lift[0] if lift else None,
        lift_ci_low=lift[1] if lift else None,
        lift_ci_high=lift[2] if lift else None,
        incremental_revenue_usd=None,
        cost_usd=None,
        roi=None,
        treatment_buyers=buyers[0],
        control_buyers=buyers[1] if held_out else None,
        mde_abs=mde if held_out else None,
        q_value=q if held_out else None,
        published_verdict=verdict,
    )


def _table(html: str) -> list[tuple[str, str, str, str]]:
    """(verdict, campaign name, finding in plain text, the rest of the row in plain text) per row."""
    rows = re.findall(
        r'<tr class="verdict (\w+)">\s*<td class="campaign"><span class="name"[^>]*>(.*?)</span>.*?'
        r'<td class="finding">(.*?)</td>(.*?)</tr>',
        html,
        flags=re.S,
    )
    plain = lambda t: re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", t)).replace(" :", ":").strip()  # noqa: E731
    return [(v, name, plain(finding), plain(rest)) for v, name, finding, rest in rows]


def test_learned_order_puts_what_was_learned_first() -> None:
    campaigns = [
        _campaign("no holdout, most revenue", None, lift=None, revenue=9000),
        _campaign("small, q .3", "too small to tell", q=0.3, mde=0.05),
        _campaign("small, q .3, smaller mde", "too small to tell", q=0.3, mde=0.04),
        _campaign("none seen", "no detectable effect", q=0.9),
        _campaign("down", "decreased", q=0.01, lift=(-0.02, -0.03, -0.01)),
        _campaign("up, q .2", "increased", q=0.2, lift=(0.02, 0.001, 0.04)),
        _campaign("up, q .01", "increased", q=0.01, lift=(0.03, 0.02, 0.04)),
        _campaign("no holdout, less revenue", None, lift=None, revenue=10),
    ]
    assert [c.campaign_id for c in learned_order(campaigns)] == [
        "up, q .01",
        "up, q .2",
        "down",
        "none seen",
        "small, q .3, smaller mde",
        "small, q .3",
        "no holdout, most revenue",
        "no holdout, less revenue",
    ]
    assert [d.campaign.campaign_id for d in decide(campaigns)][-1] == "small, q .3"  # only tested ones


verdicts = st.sampled_from(["increased", "decreased", "no detectable effect", "too small to tell", None])
maybe = st.none() | st.floats(0, 1)


@given(st.lists(st.tuples(verdicts, maybe, maybe), max_size=12))
def test_learned_order_property(specs: list[tuple[str | None, float | None, float | None]]) -> None:
    """A permutation; tested campaigns first in verdict order, then by q-value (missing last); the untested
    keep the order given."""
    campaigns = [_campaign(f"c{i}", v, q=q, mde=m, lift=None if v is None else (0.0, -0.01, 0.01))
                 for i, (v, q, m) in enumerate(specs)]  # fmt: skip
    ordered = learned_order(campaigns)
    assert sorted(c.campaign_id for c in ordered) == sorted(c.campaign_id for c in campaigns)
    tested = [c for c in ordered if c.has_holdout]
    assert ordered[: len(tested)] == tested
    assert ordered[len(tested) :] == [c for c in campaigns if not c.has_holdout]
    keys = [(VERDICT_ORDER.index(c.verdict), 2.0 if c.q_value is None else c.q_value) for c in tested]
    assert keys == sorted(keys)


def test_the_decisions_table_in_words(full_report) -> None:
    rows = _table(full_report.html)
    assert [(v, name) for v, name, _, _ in rows] == [
        ("increased", "Spring Sale"),
        ("decreased", "Winback $5 off, save $$"),
        ("no_effect", "Summer Newsletter"),
        ("too_small", "Flash Sale"),  # q 0.333 before 0.837
        ("too_small", "&lt;script&gt;alert(1)&lt;/script&gt; &amp; =HYPERLINK(&#34;http://x&#34;)"),
    ]
    findings = [finding for _, _, finding, _ in rows]
    assert findings == [
        "increased sales: 6.0% of those emailed bought, against 2.7% of those held out (q = 0.057). Allowing for "
        "the 5 campaigns tested, this win may be luck: its q-value is above 0.05.",
        "decreased sales: 1.0% of those emailed bought, against 4.0% of those held out (q = 0.012).",
        "no detectable effect: this test could have detected a lift of 1.4 pts or more and saw none.",
        "too small to tell: this test could only have detected a lift above 4.4 pts; holding out 25% of the same "
        "audience would detect 2.0 pts.",
        # 550 people: even a 50/50 split detects only about 5.2 points, so no holdout is suggested
        "too small to tell: this test could only have detected a lift above 9.0 pts.",
    ]
    spring, winback, summer, flash, hostile = (rest for _, _, _, rest in rows)
    # lift, then extra revenue and ROI, each with its 95% range (ROI = (revenue - cost) / cost)
    assert spring == "+3.3 pts +0.5 pts to +5.4 pts $2,500 $300 to $4,700 +400% -40% to +840%"
    assert winback == "-3.0 pts -6.7 pts to -0.8 pts -$300 -$560 to -$40.00 -250% -380% to -120%"
    assert summer == "+0.1 pts -0.9 pts to +1.1 pts $400 -$2,600 to $3,400 +33% -967% to +1,033%"
    assert "unreliable" not in flash  # 6 buyers held out: enough
    # 2 buyers held out: the revenue range is shown, flagged; no cost, so no ROI
    assert hostile == (
        "+1.0 pts -8.6 pts to +4.7 pts $150 -$900 to $1,200 unreliable: only 2 buyers among those held out cost unknown"
    )
    assert '<span class="sub unreliable">' in full_report.html
    assert "1 campaign had no holdout group, so what it caused cannot be measured." in full_report.html


def test_the_suggested_holdout_is_the_smallest_whole_percent_with_80_percent_power() -> None:
    """Flash Sale: 4800 emailed, 200 held out, 246 buyers in all. At their rate p = 0.0492 a lift of 2 points
    is d = 0.02 / sqrt(p (1 - p)) standard deviations; statsmodels' power of the two-sided 5% test is below
    80% holding out 24% of the 5000 and reaches it at 25%, the share the report names."""
    flash = _campaign("flash", "too small to tell", mde=0.04373, lift=(0.02, -0.0144, 0.0374), treatment=4800,
                      control=200, buyers=(240, 6))  # fmt: skip
    (decision,) = decide([flash])
    assert decision.suggested_share == 0.25
    p = 246 / 5000
    effect = 0.02 / (p * (1 - p)) ** 0.5

    def power(share: float) -> float:
        control = share * 5000
        return float(NormalIndPower().power(effect, nobs1=control, alpha=0.05, ratio=(5000 - control) / control))

    assert power(0.24) < 0.8 <= power(0.25)
    assert 0.2422 < decision.plan.control_share <= 0.2424  # type: ignore[union-attr]  # (1 - sqrt(1 - 4c)) / 2


def test_a_control_group_without_buyers_still_gets_a_suggestion() -> None:
    """The MDE beside the suggestion is computed at both groups' rate; so is the suggestion, which also keeps
    a control group that bought nothing from leaving the planner without a baseline."""
    c = _campaign("c", "too small to tell", mde=0.025, lift=(0.05, -0.01, 0.06), treatment=5400, control=600,
                  buyers=(300, 0))  # fmt: skip
    (decision,) = decide([c])
    assert decision.plan is not None and decision.plan.baseline_rate == pytest.approx(300 / 6000)
    # c = 2.8016^2 * 0.05 * 0.95 / (6000 * 0.02^2) = 0.1553: share (1 - sqrt(1 - 4c)) / 2 = 0.1922
    assert decision.suggested_share == 0.2


def test_nobody_bought_and_no_mde() -> None:
    c = _campaign("c", "too small to tell", mde=None, lift=(0.0, -0.3, 0.08), treatment=40, control=8, buyers=(0, 0))
    (row,) = decision_rows(decide([c]), formats("en"))
    assert row.explanation == "nobody in either group bought within the 7 days, so this test could detect nothing."
    assert row.decision.plan is None
    assert row.unreliable == "unreliable: only 0 buyers among those held out"


def test_revenue_ranges_with_fewer_than_five_buyers_are_flagged() -> None:
    assert MIN_BUYERS == 5
    assert few_buyers(_campaign("c", "increased", buyers=(5, 5))) is None
    low = few_buyers(_campaign("c", "increased", buyers=(4, 30)))
    assert low is not None and (low.group, low.buyers) == ("treatment", 4)
    row = decision_rows(decide([_campaign("c", "increased", buyers=(1, 30))]), formats("en"))[0]
    assert row.unreliable == "unreliable: only 1 buyer among those emailed"
    both = few_buyers(_campaign("c", "increased", buyers=(3, 3)))
    assert both is not None and both.group == "control"


def _summary(campaigns: list[Campaign], code: str = "en") -> str:
    fmt = formats(code)
    return str(holdout_summary(decide(campaigns), verdict_labels(fmt), fmt))


def test_the_headline_is_honest_about_the_campaigns_that_did_not_clearly_work(full_report) -> None:
    assert (
        "1 of 5 campaigns with a holdout group clearly increased sales; the strongest was “"
        '<span class="name" translate="no">Spring Sale</span>” (+3.3 pts). Of the others, 1 decreased sales, '
        "1 showed no detectable effect, and 2 were too small to tell. 1 of these wins may be luck once the number "
        "of campaigns tested is allowed for (q-value above 0.05)."
    ) in full_report.html
    small = [_campaign(f"s{i}", "too small to tell") for i in range(3)]
    assert _summary(small) == (
        "None of the 3 campaigns with a holdout group clearly increased sales. Of them, 3 were too small to tell."
    )
    assert _summary(small[:1]) == (
        "The campaign with a holdout group did not clearly increase sales. Its verdict: too small to tell."
    )
    sure_win = _campaign("w", "increased", q=0.01, lift=(0.03, 0.01, 0.05))
    assert _summary([sure_win, _campaign("n", "no detectable effect")]) == (
        "1 of 2 campaigns with a holdout group clearly increased sales; the strongest was "
        '“<span class="name" translate="no">w</span>” (+3.0 pts). Of the others, 1 showed no detectable effect.'
    )
    assert _summary([]) == "None"


def test_korean_and_thai_say_the_same(intl_reports) -> None:
    """Hand-written: what a Korean and a Thai reader see for Flash Sale, the hostile campaign's flag and the
    headline (reports/locale/GLOSSARY.md's terms)."""
    ko, th = (_table(intl_reports[code].html) for code in ("ko", "th"))
    assert ko[3][2] == (
        "표본이 작아 판단 불가: 이 테스트로는 4.4%p보다 큰 리프트만 탐지할 수 있었습니다. 같은 대상자의 25%를 "
        "대조군으로 두면 2.0%p의 리프트를 탐지할 수 있습니다."
    )
    assert th[3][2] == (
        "กลุ่มเล็กเกินกว่าจะสรุปได้: การทดสอบนี้ตรวจจับได้เฉพาะส่วนเพิ่มที่มากกว่า 4.4 จุด หากกันกลุ่มควบคุมไว้ 25% "
        "ของกลุ่มเป้าหมายเดียวกัน จะตรวจจับส่วนเพิ่ม 2.0 จุด ได้"
    )
    assert "신뢰하기 어려움: 대조군 구매자가 2명뿐임" in ko[4][3]
    assert "US$300 ถึง US$4,700" in th[0][3] and "เชื่อถือได้น้อย: มีผู้ซื้อในกลุ่มควบคุมเพียง 2 คน" in th[4][3]
    assert ("나머지는 구매 감소 1개, 탐지된 효과 없음 1개 및 표본이 작아 판단 불가 2개입니다."
            in intl_reports["ko"].html)  # fmt: skip
    assert ("ส่วนที่เหลือ: ยอดขายลดลง 1 แคมเปญ ไม่พบผลที่ตรวจจับได้ 1 แคมเปญ และกลุ่มเล็กเกินกว่าจะสรุปได้ 2 แคมเปญ"
            in intl_reports["th"].html)  # fmt: skip


def test_q_values_are_never_rounded_onto_the_level() -> None:
    fmt = formats("en")
    assert [fmt.q_value(q) for q in (0.0573, 0.0504, 0.0496, 0.05, 0.0004, None)] == [
        "0.057",
        "0.0504",
        "0.0496",
        "0.050",
        "< 0.001",
        "–",
    ]


def test_a_decrease_that_may_be_luck_says_so() -> None:
    down = _campaign("d", "decreased", q=0.2, lift=(-0.02, -0.03, -0.001))
    (row,) = decision_rows(decide([down]), formats("en"))
    assert row.explanation.endswith(
        "Allowing for the 1 campaign tested, this drop may be luck: its q-value is above 0.05."
    )
