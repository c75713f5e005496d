"""Plain-language names and definitions shown beside the numbers (the reader is a marketer, not an analyst).

Values are English messages marked with `N_` for extraction; `translated()` gives them in a language.
Keys are the values the marts hold (segment names, lifecycle stages, email statuses, verdicts).
"""

from __future__ import annotations

from rapport.reports.i18n import N_, Language

# The RFM segment names of contracts/marts.md. Marketers search for these English names, so the report
# shows each translated name with the English one beside it where the segments are introduced.
SEGMENT_NAMES = {
    "Champions": N_("Champions"),
    "Loyal Customers": N_("Loyal Customers"),
    "Potential Loyalists": N_("Potential Loyalists"),
    "New Customers": N_("New Customers"),
    "Promising": N_("Promising"),
    "Need Attention": N_("Need Attention"),
    "About to Sleep": N_("About to Sleep"),
    "At Risk": N_("At Risk"),
    "Cannot Lose Them": N_("Cannot Lose Them"),
    "Hibernating": N_("Hibernating"),
    "No Purchases": N_("No Purchases"),
}

# Paraphrases of the RFM rules in contracts/marts.md, in words a reader can act on.
SEGMENT_DESCRIPTIONS = {
    "Champions": N_("Bought very recently and often (4+ orders). Your best customers."),
    "Loyal Customers": N_("Buy often (4+ orders) and fairly recently."),
    "Potential Loyalists": N_("Recent buyers with 2–3 orders: could become loyal."),
    "New Customers": N_("Bought for the first time very recently."),
    "Promising": N_("Recent buyers with a single order."),
    "Need Attention": N_("3 orders, but not very recently."),
    "About to Sleep": N_("1–2 orders, not very recently. Will drift away without a nudge."),
    "At Risk": N_("Used to buy (3–5 orders) but not for a long while."),
    "Cannot Lose Them": N_("Bought often (6+ orders) but not for a long while. Win them back."),
    "Hibernating": N_("Few orders, long ago."),
    "No Purchases": N_("Known to us (newsletter, support) but never placed a paid order."),
}

LIFECYCLE_DESCRIPTIONS = {
    "prospect": N_("never placed a paid order"),
    "new": N_("first paid order within the last 30 days"),
    "active": N_("last paid order within the last 90 days"),
    "reactivated": N_("ordered again in the last 90 days after a gap of more than 180 days"),
    "at_risk": N_("last paid order 91 to 180 days ago"),
    "churned": N_("last paid order more than 180 days ago"),
}
LIFECYCLE_NAMES = {
    "prospect": N_("Prospects"),
    "new": N_("New"),
    "active": N_("Active"),
    "reactivated": N_("Reactivated"),
    "at_risk": N_("Slipping away"),
    "churned": N_("Lapsed"),
}

CAMPAIGN_TERMS = {
    "Emailed": N_("Emailed"),
    "Open rate": N_("Open rate"),
    "Click rate": N_("Click rate"),
    "Conversion": N_("Conversion"),
    "Revenue after email": N_("Revenue after email"),
    "Lift": N_("Lift"),
    "95% range": N_("95%% range"),
    "ROI": N_("ROI"),
}
CAMPAIGN_DEFINITIONS = {
    "Emailed": N_("people in the campaign's send group (the held-out group is not counted here)."),
    "Open rate": N_("share of delivered emails opened by a person (opens by mail privacy robots are left out)."),
    "Click rate": N_("share of delivered emails in which someone clicked a link."),
    "Conversion": N_("share of the send group who placed a paid order within 7 days of the send."),
    "Revenue after email": N_(
        "revenue of orders placed within 5 days of opening or clicking this campaign's email, when it was the "
        "last email the customer touched. It shows activity, not proof the email caused it."
    ),
    "Lift": N_(
        "extra conversions per 100 people emailed compared with a held-out group that got nothing. This is the "
        "fair test of whether the email made people buy."
    ),
    "95% range": N_(
        "the range the true lift very likely lies in. If it includes zero, the campaign may have made no difference."
    ),
    "ROI": N_(
        "extra revenue the campaign caused (from the holdout comparison) minus its cost, divided by its cost. "
        "+100%% means every dollar spent came back twice."
    ),
}

# The verdicts of contracts/marts.md ("Campaign decisions"), by the report's keys (data.MART_VERDICTS).
VERDICT_LABELS = {
    "increased": N_("increased sales"),
    "decreased": N_("decreased sales"),
    "no_effect": N_("no detectable effect"),
    "too_small": N_("too small to tell"),
    "no_holdout": N_("no holdout group"),
}

# "How to read this", beside the campaign decisions: each verdict, then the statistics behind them.
# Definitions take %(target)s (the meaningful lift) and %(buyers)s (decisions.MIN_BUYERS): decision_text.
DECISION_TERMS = {
    "increased": N_("Increased or decreased sales"),
    "no_effect": N_("No detectable effect"),
    "too_small": N_("Too small to tell"),
    "mde": N_("Smallest detectable lift (minimum detectable effect)"),
    "q_value": N_("q-value"),
    "revenue": N_("Revenue and ROI ranges"),
}
DECISION_DEFINITIONS = {
    "increased": N_(
        "the whole 95%% range of the lift lies above zero (or below it): the email clearly changed how many "
        "people bought."
    ),
    "no_effect": N_(
        "the range includes zero, and the test was big enough to see a lift of %(target)s: if the email did "
        "anything, it was smaller than that."
    ),
    "too_small": N_(
        "the range includes zero, but the groups were too small to see a lift of %(target)s: the test says "
        "nothing either way. Where holding out more of the same audience would tell, the table names the share; "
        "otherwise only a larger audience would."
    ),
    "mde": N_(
        "the smallest lift a test of this size would have spotted 8 times out of 10. Smaller effects may be "
        "real but go unseen."
    ),
    "q_value": N_(
        "with many campaigns tested, a few look like wins by luck alone. The q-value allows for the number "
        "tested: among results with a q-value below 0.05, at most about 1 in 20 is luck."
    ),
    "revenue": N_(
        "extra revenue and ROI come from the same comparison, but their ranges are wider than the lift's: a "
        "few large orders move revenue far more than they move the number of buyers. With fewer than %(buyers)s "
        "buyers in a group the range itself is unreliable and is marked so."
    ),
}

EMAIL_STATUS = {
    "subscribed": N_("can email"),
    "unsubscribed": N_("unsubscribed"),
    "cleaned": N_("address bounced"),
    "none": N_("not on the list"),
}

RUN_STATUS = {
    "success": N_("success"),
    "failed": N_("failed"),
    "running": N_("running"),
}


def translated(lang: Language, messages: dict[str, str]) -> dict[str, str]:
    return {key: lang.gettext(message) for key, message in messages.items()}


def segment_name(lang: Language, segment: str) -> str:
    """A segment's name in the language; a name the contract does not list is shown as the data has it."""
    message = SEGMENT_NAMES.get(segment)
    return lang.gettext(message) if message is not None else segment
