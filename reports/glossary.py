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
        "the range the true lift very likely lies in. If it includes zero, the campaign may have made no "
        "difference: we call that not significant."
    ),
    "ROI": N_(
        "extra revenue the campaign caused (from the holdout comparison) minus its cost, divided by its cost. "
        "+100%% means every dollar spent came back twice."
    ),
}

VERDICT_TEXT = {
    "positive": N_("Worked: clearly more sales than the held-out group."),
    "negative": N_("Backfired: clearly fewer sales than the held-out group."),
    "not_significant": N_("Not significant: the difference could be chance."),
    "no_holdout": N_("No holdout group: lift cannot be measured."),
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
