"""The campaign decisions in a marketer's words, in the report's language (issue #20).

Every sentence is a catalog message (docs/report.md, "Languages"); numbers go in formatted by the
language's `Formats`. The verdict's name is shown beside these sentences (glossary.VERDICT_LABELS).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from babel.lists import format_list
from markupsafe import Markup

from rapport.experiments.planning import DEFAULT_MDE
from rapport.reports.data import Campaign
from rapport.reports.decisions import MIN_BUYERS, Decision
from rapport.reports.formatting import Formats
from rapport.reports.glossary import DECISION_DEFINITIONS, DECISION_TERMS, VERDICT_LABELS


def verdict_labels(fmt: Formats) -> dict[str, str]:
    return {key: fmt.lang.gettext(label) for key, label in VERDICT_LABELS.items()}


def reading_notes(fmt: Formats) -> list[tuple[str, str]]:
    """ "How to read this": (term, definition), in the language."""
    values = {"target": fmt.size_points(DEFAULT_MDE), "buyers": fmt.count(MIN_BUYERS)}
    return [
        (fmt.lang.gettext(DECISION_TERMS[key]), fmt.lang.gettext(DECISION_DEFINITIONS[key], **values))
        for key in DECISION_TERMS
    ]


def explanation(d: Decision, tested: int, fmt: Formats) -> str:
    """Why the verdict is what it is, and what to do about a test too small to tell.

    `tested`: the campaigns with a holdout group, the number the q-values allow for."""
    lang, c = fmt.lang, d.campaign
    if d.verdict in ("increased", "decreased"):
        text = lang.gettext(
            "%(emailed)s of those emailed bought, against %(held_out)s of those held out (q = %(q)s).",
            emailed=fmt.pct(c.conversion_rate),
            held_out=fmt.pct(c.control_conversion_rate),
            q=fmt.q_value(c.q_value),
        )
        if d.maybe_luck and d.verdict == "increased":
            text += " " + lang.ngettext(
                "Allowing for the %(tested)s campaign tested, this win may be luck: its q-value is above 0.05.",
                "Allowing for the %(tested)s campaigns tested, this win may be luck: its q-value is above 0.05.",
                tested,
                tested=fmt.count(tested),
            )
        elif d.maybe_luck:
            text += " " + lang.ngettext(
                "Allowing for the %(tested)s campaign tested, this drop may be luck: its q-value is above 0.05.",
                "Allowing for the %(tested)s campaigns tested, this drop may be luck: its q-value is above 0.05.",
                tested,
                tested=fmt.count(tested),
            )
        return text
    if d.verdict == "no_effect":
        return lang.gettext(
            "this test could have detected a lift of %(mde)s or more and saw none.", mde=fmt.size_points(c.mde_abs)
        )
    if c.mde_abs is None:
        return lang.gettext("nobody in either group bought within the 7 days, so this test could detect nothing.")
    if d.suggested_share is None:
        return lang.gettext("this test could only have detected a lift above %(mde)s.", mde=fmt.size_points(c.mde_abs))
    return lang.gettext(
        "this test could only have detected a lift above %(mde)s; holding out %(share)s of the same audience "
        "would detect %(target)s.",
        mde=fmt.size_points(c.mde_abs),
        share=fmt.pct(d.suggested_share, 0),
        target=fmt.size_points(DEFAULT_MDE),
    )


def few_buyers_note(d: Decision, fmt: Formats) -> str | None:
    """Beside a revenue interval that rests on too few buyers (decisions.MIN_BUYERS)."""
    few = d.few_buyers
    if few is None:
        return None
    if few.group == "control":
        return fmt.lang.ngettext(
            "unreliable: only %(number)s buyer among those held out",
            "unreliable: only %(number)s buyers among those held out",
            few.buyers,
            number=fmt.count(few.buyers),
        )
    return fmt.lang.ngettext(
        "unreliable: only %(number)s buyer among those emailed",
        "unreliable: only %(number)s buyers among those emailed",
        few.buyers,
        number=fmt.count(few.buyers),
    )


def _others(counts: Counter[str], fmt: Formats) -> str:
    """ "1 decreased sales, 5 showed no detectable effect and 15 were too small to tell", the locale's way."""
    ngettext = fmt.lang.ngettext
    parts = []
    if counts["decreased"]:
        n = counts["decreased"]
        parts.append(ngettext("%(number)s decreased sales", "%(number)s decreased sales", n, number=fmt.count(n)))
    if counts["no_effect"]:
        n = counts["no_effect"]
        parts.append(
            ngettext(
                "%(number)s showed no detectable effect",
                "%(number)s showed no detectable effect",
                n,
                number=fmt.count(n),
            )
        )
    if counts["too_small"]:
        n = counts["too_small"]
        parts.append(
            ngettext("%(number)s was too small to tell", "%(number)s were too small to tell", n, number=fmt.count(n))
        )
    return format_list(parts, locale=fmt.locale)


def holdout_summary(decisions: Sequence[Decision], labels: dict[str, str], fmt: Formats) -> str | None:
    """How many campaigns with a holdout group clearly increased sales, and what became of the others:
    honest about the tests too small to tell. `labels`: the verdicts' names in the language."""
    lang = fmt.lang
    tested = len(decisions)
    if not tested:
        return None
    counts = Counter(d.verdict for d in decisions)
    worked = [d for d in decisions if d.verdict == "increased"]
    rest = tested - len(worked)
    if worked:
        best = max(worked, key=lambda d: d.campaign.lift_abs or 0.0).campaign
        text = lang.ngettext(
            "%(worked)s of %(tested)s campaign with a holdout group clearly increased sales; "
            "the strongest was “%(name)s” (%(lift)s).",
            "%(worked)s of %(tested)s campaigns with a holdout group clearly increased sales; "
            "the strongest was “%(name)s” (%(lift)s).",
            tested,
            worked=fmt.count(len(worked)),
            tested=fmt.count(tested),
            name=Markup('<span class="name" translate="no">{}</span>').format(best.name),
            lift=fmt.points(best.lift_abs),
        )
        if rest:
            text += " " + lang.gettext("Of the others, %(list)s.", list=_others(counts, fmt))
        lucky = sum(d.maybe_luck for d in worked)
        if lucky:
            text += " " + lang.ngettext(
                "%(number)s of these wins may be luck once the number of campaigns tested is allowed for "
                "(q-value above 0.05).",
                "%(number)s of these wins may be luck once the number of campaigns tested is allowed for "
                "(q-value above 0.05).",
                lucky,
                number=fmt.count(lucky),
            )
        return text
    text = lang.ngettext(
        "The campaign with a holdout group did not clearly increase sales.",
        "None of the %(tested)s campaigns with a holdout group clearly increased sales.",
        tested,
        tested=fmt.count(tested),
    )
    if tested == 1:
        return text + " " + lang.gettext("Its verdict: %(verdict)s.", verdict=labels[decisions[0].verdict])
    return text + " " + lang.gettext("Of them, %(list)s.", list=_others(counts, fmt))


@dataclass(frozen=True)
class DecisionRow:
    """One campaign's line of the decisions table, its words ready."""

    decision: Decision
    label: str  # the verdict's name
    explanation: str
    unreliable: str | None  # the flag beside the revenue and ROI ranges, when they rest on too few buyers

    @property
    def campaign(self) -> Campaign:
        return self.decision.campaign


def decision_rows(decisions: Sequence[Decision], fmt: Formats) -> list[DecisionRow]:
    labels = verdict_labels(fmt)
    return [
        DecisionRow(d, labels[d.verdict], explanation(d, len(decisions), fmt), few_buyers_note(d, fmt))
        for d in decisions
    ]
