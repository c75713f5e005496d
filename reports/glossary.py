"""Plain-language definitions shown beside the numbers (the reader is a marketer, not an analyst)."""

from __future__ import annotations

# Paraphrases of the RFM rules in contracts/marts.md, in words a reader can act on.
SEGMENT_DESCRIPTIONS = {
    "Champions": "Bought very recently and often (4+ orders). Your best customers.",
    "Loyal Customers": "Buy often (4+ orders) and fairly recently.",
    "Potential Loyalists": "Recent buyers with 2–3 orders: could become loyal.",
    "New Customers": "Bought for the first time very recently.",
    "Promising": "Recent buyers with a single order.",
    "Need Attention": "3 orders, but not very recently.",
    "About to Sleep": "1–2 orders, not very recently. Will drift away without a nudge.",
    "At Risk": "Used to buy (3–5 orders) but not for a long while.",
    "Cannot Lose Them": "Bought often (6+ orders) but not for a long while. Win them back.",
    "Hibernating": "Few orders, long ago.",
    "No Purchases": "Known to us (newsletter, support) but never placed a paid order.",
}

LIFECYCLE_DESCRIPTIONS = {
    "prospect": "never placed a paid order",
    "new": "first paid order within the last 30 days",
    "active": "last paid order within the last 90 days",
    "reactivated": "ordered again in the last 90 days after a gap of more than 180 days",
    "at_risk": "last paid order 91 to 180 days ago",
    "churned": "last paid order more than 180 days ago",
}
LIFECYCLE_NAMES = {
    "prospect": "Prospects",
    "new": "New",
    "active": "Active",
    "reactivated": "Reactivated",
    "at_risk": "Slipping away",
    "churned": "Lapsed",
}

CAMPAIGN_TERMS = {
    "Emailed": "people in the campaign's send group (the held-out group is not counted here).",
    "Open rate": "share of delivered emails opened by a person (opens by mail privacy robots are left out).",
    "Click rate": "share of delivered emails in which someone clicked a link.",
    "Conversion": "share of the send group who placed a paid order within 7 days of the send.",
    "Revenue after email": "revenue of orders placed within 5 days of opening or clicking this campaign's "
    "email, when it was the last email the customer touched. It shows activity, not proof the email "
    "caused it.",
    "Lift": "extra conversions per 100 people emailed compared with a held-out group that got nothing. "
    "This is the fair test of whether the email made people buy.",
    "95% range": "the range the true lift very likely lies in. If it includes zero, the campaign may have "
    "made no difference: we call that not significant.",
    "ROI": "extra revenue the campaign caused (from the holdout comparison) minus its cost, divided by its "
    "cost. +100% means every dollar spent came back twice.",
}

VERDICT_TEXT = {
    "positive": "Worked: clearly more sales than the held-out group.",
    "negative": "Backfired: clearly fewer sales than the held-out group.",
    "not_significant": "Not significant: the difference could be chance.",
    "no_holdout": "No holdout group: lift cannot be measured.",
}

EMAIL_STATUS = {
    "subscribed": "can email",
    "unsubscribed": "unsubscribed",
    "cleaned": "address bounced",
    "none": "not on the list",
}
