"""New people for a continued demo: who signs up on a later day, with names, addresses and phones that are
as realistic as the base's and never collide with anyone already in the sources.

Continued days type addresses more simply than the base (no typos, no shared inboxes, no second
accounts): see docs/identity.md. Helpers and constants come from the base generator's modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from rapport.demo.contact_points import e164, make_phones, normalize_emails, type_emails, type_phones
from rapport.demo.people import named_people

LATIN = ["US", "GB", "DE", "FR"]
_NOT_DIGIT = re.compile(r"\D")


def taken_keys(emails: Iterable[object]) -> set[str]:
    """Normalised form of every address already in the sources: a new person's address must be none of them."""
    s = pd.Series([e for e in emails if isinstance(e, str) and e.count("@") == 1], dtype="str")
    return set(normalize_emails(s)) if len(s) else set()


def phone_tails(phones: Iterable[object]) -> set[str]:
    """Last 8 digits of every phone already in the sources, however it was typed."""
    out = set()
    for p in phones:
        if isinstance(p, str):
            d = _NOT_DIGIT.sub("", p)
            if len(d) >= 8:
                out.add(d[-8:])
    return out


def new_people(rng: np.random.Generator, n: int, first_id: int, taken: set[str], tails: set[str]) -> pd.DataFrame:
    """n new people (person_id from first_id): country, names (native and romanised), a personal address
    unique after normalisation, a phone number nobody else has (E.164 and its national digits)."""
    p, country = named_people(rng, n, first_id, taken)
    taken |= set(normalize_emails(p["email_local"] + "@" + p["email_domain"]))
    nsn = make_phones(rng, country, np.zeros(n, dtype=bool))
    for i in range(n):  # the rare clash with a number already in the sources: redraw its last digits
        while nsn.iat[i][-8:] in tails:
            v = nsn.iat[i]
            nsn.iat[i] = v[:-4] + f"{int(rng.integers(0, 10_000)):04d}"
        tails.add(nsn.iat[i][-8:])
    p["phone_nsn"] = nsn
    p["phone_e164"] = e164(country, nsn)
    return p


def typed_identity(rng: np.random.Generator, p: pd.DataFrame, *, p_phone: float, p_native: float) -> pd.DataFrame:
    """email, phone, first_name, last_name as a person types them on a sign-up form (the base's styles)."""
    n = len(p)
    country = p["country"].to_numpy().astype(str)
    email = type_emails(
        rng, p["email_local"], p["email_domain"], p_caps=0.12, p_space=0.04, p_plus=0.05, p_dots=0.03, p_googlemail=0.01
    )
    phone = type_phones(rng, country, p["phone_nsn"].reset_index(drop=True), rng.random(n) < 0.25)
    phone[rng.random(n) >= p_phone] = None
    native = ~np.isin(country, LATIN) & (rng.random(n) < p_native)
    first = p["given_roman"].str.capitalize().where(~native, p["given"]).reset_index(drop=True)
    last = p["family_roman"].str.capitalize().where(~native, p["family"]).reset_index(drop=True)
    latin = np.isin(country, LATIN)
    first[latin] = p["given"].reset_index(drop=True)[latin]
    last[latin] = p["family"].reset_index(drop=True)[latin]
    return pd.DataFrame({"email": email, "phone": phone, "first_name": first, "last_name": last})
