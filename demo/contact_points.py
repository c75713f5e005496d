"""Email addresses and phone numbers: each person's true ones, and how people type them on a form.

All vectorised over pandas string Series. Phone numbers are drawn from number ranges that
`phonenumbers` accepts as valid for their region (checked by tests/demo), and are unique per person
except where a household deliberately shares one.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rapport.demo.common import pick

PLUS_PROVIDERS = {
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "fastmail.com",
    "proton.me",
}
PROVIDERS = {
    "KR": (["naver.com", "gmail.com", "daum.net", "hanmail.net", "kakao.com"], [40, 30, 12, 10, 8]),
    "CN": (["qq.com", "163.com", "126.com", "gmail.com", "outlook.com", "sina.com"], [45, 22, 10, 12, 6, 5]),
    "TH": (["gmail.com", "hotmail.com", "yahoo.com", "outlook.com", "icloud.com"], [55, 20, 10, 10, 5]),
    "US": (
        ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "fastmail.com", "proton.me"],
        [48, 12, 10, 8, 13, 3, 2, 4],
    ),
    "GB": (
        ["gmail.com", "hotmail.co.uk", "outlook.com", "yahoo.co.uk", "icloud.com", "btinternet.com", "proton.me"],
        [40, 14, 12, 10, 13, 6, 5],
    ),
    "DE": (["gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.com", "proton.me"], [30, 25, 25, 10, 5, 5]),
    "FR": (["gmail.com", "orange.fr", "free.fr", "hotmail.fr", "laposte.net", "outlook.com"], [40, 20, 10, 15, 10, 5]),
}
DOMAIN_TYPOS = {
    "gmail.com": "gmial.com",
    "naver.com": "naver.con",
    "hotmail.com": "hotmial.com",
    "yahoo.com": "yaho.com",
    "outlook.com": "outlok.com",
    "qq.com": "qq.cm",
    "icloud.com": "iclod.com",
    "daum.net": "duam.net",
    "163.com": "163.cm",
    "gmx.de": "gmx.d",
}

# National significant number prefixes that phonenumbers accepts as valid in full (checked exhaustively
# by sampling); the rest of the number is random digits.
PHONE_PLAN: dict[str, tuple[str, list[str], int]] = {  # country -> (calling code, mobile prefixes, nsn length)
    "KR": ("82", ["102", "103", "104", "106", "107", "108", "109"], 10),
    "US": (
        "1",
        [
            a + e
            for a in (
                "212",
                "213",
                "310",
                "312",
                "347",
                "404",
                "415",
                "425",
                "503",
                "512",
                "617",
                "646",
                "702",
                "713",
                "718",
                "773",
                "805",
                "818",
                "917",
                "206",
                "303",
                "305",
                "408",
                "510",
                "602",
                "619",
                "650",
                "704",
                "720",
                "832",
                "858",
                "949",
            )
            for e in "23456789"
        ],
        10,
    ),
    "GB": (
        "44",
        ["74" + d for d in "0123456789"]
        + ["75" + d for d in "0123456789"]
        + ["77" + d for d in "123456789"]
        + ["78" + d for d in "0123456789"]
        + ["79" + d for d in "023456789"],
        10,
    ),
    "CN": (
        "86",
        [
            "130",
            "131",
            "132",
            "133",
            "135",
            "136",
            "137",
            "138",
            "139",
            "150",
            "151",
            "152",
            "155",
            "156",
            "157",
            "158",
            "159",
            "176",
            "177",
            "180",
            "181",
            "182",
            "185",
            "186",
            "187",
            "188",
            "189",
            "199",
        ],
        11,
    ),
    "TH": (
        "66",
        [
            "61",
            "62",
            "63",
            "64",
            "65",
            "80",
            "81",
            "82",
            "83",
            "84",
            "85",
            "86",
            "87",
            "88",
            "89",
            "90",
            "91",
            "92",
            "93",
            "94",
            "95",
            "96",
            "97",
            "98",
            "99",
        ],
        9,
    ),
    "DE": (
        "49",
        ["151", "152", "157", "160", "162", "170", "171", "172", "173", "175", "176", "177", "178", "179"],
        11,
    ),
    "FR": ("33", ["60", "61", "62", "64", "65", "66", "67", "68", "73", "74", "75", "76", "77", "78"], 9),
}
# landlines for households: (prefix, nsn length)
LANDLINE_PLAN = {"KR": ("2", 9), "TH": ("2", 8), "US": None}

# Typed formats: "{a:b}" is nsn[a:b]. National formats parse only with the record's country;
# international ones parse anywhere.
NATIONAL = {
    ("KR", 10): (["0{0:2}-{2:6}-{6:10}", "0{0:10}", "0{0:2} {2:6} {6:10}"], [70, 20, 10]),
    ("KR", 9): (["0{0:1}-{1:5}-{5:9}", "0{0:1}{1:9}"], [85, 15]),
    ("US", 10): (["({0:3}) {3:6}-{6:10}", "{0:3}-{3:6}-{6:10}", "{0:3}.{3:6}.{6:10}", "{0:10}"], [45, 30, 10, 15]),
    ("GB", 10): (["0{0:4} {4:10}", "0{0:10}", "0{0:4}-{4:10}"], [70, 20, 10]),
    ("CN", 11): (["{0:3} {3:7} {7:11}", "{0:11}", "{0:3}-{3:7}-{7:11}"], [40, 50, 10]),
    ("TH", 9): (["0{0:2} {2:5} {5:9}", "0{0:2}-{2:5}-{5:9}", "0{0:9}"], [45, 35, 20]),
    ("TH", 8): (["0{0:1} {1:4} {4:8}", "0{0:1}-{1:4}-{4:8}"], [60, 40]),
    ("DE", 11): (["0{0:3} {3:11}", "0{0:3}/{3:11}", "0{0:11}"], [60, 25, 15]),
    ("FR", 9): (["0{0:1} {1:3} {3:5} {5:7} {7:9}", "0{0:9}", "0{0:1}.{1:3}.{3:5}.{5:7}.{7:9}"], [70, 20, 10]),
}
INTERNATIONAL = {
    ("KR", 10): (
        ["+82 {0:2}-{2:6}-{6:10}", "+82 {0:2} {2:6} {6:10}", "+82{0:10}", "+82-{0:2}-{2:6}-{6:10}"],
        [40, 30, 20, 10],
    ),
    ("KR", 9): (["+82 {0:1}-{1:5}-{5:9}", "+82{0:9}"], [70, 30]),
    ("US", 10): (["+1 {0:3}-{3:6}-{6:10}", "+1 ({0:3}) {3:6}-{6:10}", "+1{0:10}"], [50, 25, 25]),
    ("GB", 10): (["+44 {0:4} {4:10}", "+44{0:10}", "+44 (0){0:4} {4:10}"], [60, 25, 15]),
    ("CN", 11): (["+86 {0:3} {3:7} {7:11}", "+86{0:11}", "+86-{0:11}"], [50, 35, 15]),
    ("TH", 9): (["+66 {0:2} {2:5} {5:9}", "+66{0:9}"], [70, 30]),
    ("TH", 8): (["+66 {0:1} {1:4} {4:8}", "+66{0:8}"], [70, 30]),
    ("DE", 11): (["+49 {0:3} {3:11}", "+49{0:11}"], [70, 30]),
    ("FR", 9): (["+33 {0:1} {1:3} {3:5} {5:7} {7:9}", "+33{0:9}"], [70, 30]),
}
_SLICE = re.compile(r"\{(\d+):(\d+)\}")


def normalize_email(value: object) -> str | None:
    """The matching key marts.md defines (reference implementation for tests and uniqueness checks)."""
    if not isinstance(value, str):
        return None
    s = value.strip().lower()
    if s.count("@") != 1:
        return None
    local, domain = s.split("@")
    if not local or "." not in domain or domain.startswith(".") or domain.endswith("."):
        return None
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    if domain in PLUS_PROVIDERS and "+" in local:
        local = local.split("+", 1)[0]
    return f"{local}@{domain}"


def normalize_emails(s: pd.Series) -> pd.Series:
    """Vectorised `normalize_email` (pyarrow compute) for addresses the generator built (one '@')."""
    arr = pc.utf8_lower(pc.utf8_trim_whitespace(pa.array(s.astype("str"), type=pa.string())))
    parts = pc.split_pattern(arr, "@", max_splits=1)
    local, domain = pc.list_element(parts, 0), pc.list_element(parts, 1)
    gmail = pc.is_in(domain, value_set=pa.array(["gmail.com", "googlemail.com"]))
    local = pc.if_else(gmail, pc.replace_substring(local, ".", ""), local)
    domain = pc.if_else(gmail, pa.scalar("gmail.com"), domain)
    plus = pc.is_in(domain, value_set=pa.array(sorted(PLUS_PROVIDERS)))
    local = pc.if_else(plus, pc.list_element(pc.split_pattern(local, "+", max_splits=1), 0), local)
    out = pc.binary_join_element_wise(local, domain, "@")
    return pd.Series(out.to_numpy(zero_copy_only=False), index=s.index, dtype="str")


def is_taken(keys: pd.Series, taken: set[str]) -> np.ndarray:
    if not taken or len(keys) == 0:
        return np.zeros(len(keys), dtype=bool)
    value_set = pa.array(sorted(taken), type=pa.string())
    return pc.is_in(pa.array(keys.astype("str"), type=pa.string()), value_set=value_set).to_numpy(zero_copy_only=False)


def _digits(rng: np.random.Generator, n: int, k: int) -> pd.Series:
    if k == 0:
        return pd.Series([""] * n, dtype="str")
    vals = rng.integers(0, 10**k, size=n, dtype="int64")
    return pd.Series(vals.astype(str), dtype="str").str.zfill(k)


def email_locals(rng: np.random.Generator, first: pd.Series, last: pd.Series, domain: pd.Series) -> pd.Series:
    """Local parts people pick: first.last, firstlast87, flast123, last.first, first_last, first1992..."""
    n = len(first)
    pattern = rng.choice(6, size=n, p=[0.25, 0.22, 0.15, 0.1, 0.1, 0.18])
    yy = _digits(rng, n, 2)
    year = pd.Series((1960 + rng.integers(0, 45, size=n)).astype(str), dtype="str")
    nnn = pd.Series(rng.integers(1, 999, size=n).astype(str), dtype="str")
    options = [
        first + "." + last,
        first + last + yy,
        first.str[0] + last + nnn,
        last + "." + first + yy,
        first + "_" + last,
        first + year,
    ]
    out = options[0].copy()
    for k in range(1, 6):
        out = out.where(pattern != k, options[k])
    qq = (domain == "qq.com").to_numpy() & (rng.random(n) < 0.7)  # QQ addresses are mostly the QQ number
    qq_num = pd.Series(rng.integers(10_000_000, 3_999_999_999, size=n).astype(str), dtype="str")
    return out.where(~qq, qq_num)


def make_unique(
    rng: np.random.Generator, local: pd.Series, domain: pd.Series, taken: set[str] | None = None
) -> pd.Series:
    """Append digits to local parts until every normalised address is unique (and not in `taken`)."""
    local = local.copy()
    taken = taken or set()
    for _ in range(50):
        key = normalize_emails(local + "@" + domain)
        clash = key.duplicated(keep="first").to_numpy() | is_taken(key, taken)
        if not clash.any():
            return local
        # minji.kim, minji.kim147, minji.kim268...: the n-th taker of a name gets n*100 + two random digits,
        # so even very common names settle in a couple of rounds
        nth = key[clash].groupby(key[clash]).cumcount().to_numpy() + 1
        suffix = nth * 100 + rng.integers(0, 100, size=len(nth))
        local[clash] = local[clash] + pd.Series(suffix.astype(str), index=local.index[clash], dtype="str")
    raise RuntimeError("could not make email addresses unique")


def personal_domains(rng: np.random.Generator, country: np.ndarray) -> pd.Series:
    out = np.empty(len(country), dtype=object)
    for c, (domains, weights) in PROVIDERS.items():
        m = country == c
        out[m] = pick(rng, domains, weights, int(m.sum()))
    return pd.Series(out, dtype="str")


def make_phones(rng: np.random.Generator, country: np.ndarray, landline: np.ndarray) -> pd.Series:
    """National significant numbers, unique within each country (landline where asked and planned)."""
    n = len(country)
    nsn = np.empty(n, dtype=object)
    for c, (_cc, prefixes, length) in PHONE_PLAN.items():
        m = (country == c) & ~(landline & (LANDLINE_PLAN.get(c) is not None))
        nsn[m] = _prefixed(rng, prefixes, length, int(m.sum()))
        plan = LANDLINE_PLAN.get(c)
        if plan is not None:
            ml = (country == c) & landline
            nsn[ml] = _prefixed(rng, [plan[0] + d for d in "23456789"], plan[1], int(ml.sum()))
    s = pd.Series(nsn, dtype="str")
    for _ in range(50):  # redraw the rare collisions
        key = pd.Series(country, dtype="str") + ":" + s
        dup = key.duplicated().to_numpy()
        if not dup.any():
            return s
        for i in np.flatnonzero(dup):
            v = s.iat[i]
            s.iat[i] = v[: len(v) - 4] + f"{int(rng.integers(0, 10_000)):04d}"
    raise RuntimeError("could not make phone numbers unique")


def _prefixed(rng: np.random.Generator, prefixes: list[str], length: int, n: int) -> np.ndarray:
    p = np.asarray(prefixes, dtype=object)[rng.integers(0, len(prefixes), size=n)]
    rest = _digits(rng, n, length - len(prefixes[0])).to_numpy(dtype=object)
    return (p + rest).astype(object)


def e164(country: np.ndarray, nsn: pd.Series) -> pd.Series:
    cc = pd.Series(country, dtype="str").map({c: v[0] for c, v in PHONE_PLAN.items()})
    return "+" + cc + nsn


def _apply_template(template: str, nsn: pd.Series) -> pd.Series:
    out = pd.Series([""] * len(nsn), index=nsn.index, dtype="str")
    pos = 0
    for m in _SLICE.finditer(template):
        out = out + template[pos : m.start()] + nsn.str.slice(int(m.group(1)), int(m.group(2)))
        pos = m.end()
    return out + template[pos:]


def type_phones(rng: np.random.Generator, country: np.ndarray, nsn: pd.Series, international: np.ndarray) -> pd.Series:
    """How the numbers are written on a form: national formats, or international ones where asked."""
    n = len(nsn)
    nsn = nsn.reset_index(drop=True)
    out = pd.Series([None] * n, dtype="str")
    length = nsn.str.len().to_numpy()
    for table, want in ((NATIONAL, False), (INTERNATIONAL, True)):
        for (c, ln), (templates, weights) in table.items():
            m = (country == c) & (length == ln) & (international == want)
            if not m.any():
                continue
            idx = np.flatnonzero(m)
            choice = rng.choice(len(templates), size=len(idx), p=np.asarray(weights) / sum(weights))
            sub = nsn.iloc[idx]
            res = pd.Series([""] * len(idx), index=sub.index, dtype="str")
            for k, t in enumerate(templates):
                mk = choice == k
                if mk.any():
                    res[mk] = _apply_template(t, sub[mk])
            out.iloc[idx] = res.to_numpy()
    return out


def type_emails(
    rng: np.random.Generator,
    local: pd.Series,
    domain: pd.Series,
    *,
    p_caps: float = 0.1,
    p_space: float = 0.0,
    p_plus: float = 0.05,
    p_dots: float = 0.03,
    p_googlemail: float = 0.01,
) -> pd.Series:
    """Addresses as typed: mixed case, surrounding spaces, plus-tags, gmail dots and googlemail.com."""
    local = local.reset_index(drop=True).astype("str")
    domain = domain.reset_index(drop=True).astype("str")
    n = len(local)
    u = rng.random((6, n))
    gmail = (domain == "gmail.com").to_numpy()
    plus = (u[0] < p_plus) & domain.isin(list(PLUS_PROVIDERS)).to_numpy()
    tags = pick(rng, ["shop", "news", "promo", "orders", "maru", "2024", "deals"], [3, 3, 2, 2, 1, 1, 1], n)
    local = local.where(~plus, local + "+" + pd.Series(tags, dtype="str"))
    dots = (u[1] < p_dots) & gmail
    if dots.any():  # move the dots around: gmail ignores them
        idx = np.flatnonzero(dots)
        at = rng.random(len(idx))
        local.iloc[idx] = [_shuffle_dots(v, a) for v, a in zip(local.iloc[idx], at, strict=True)]
    gm = (u[2] < p_googlemail) & gmail
    domain = domain.where(~gm, "googlemail.com")
    out = local + "@" + domain
    caps = u[3] < p_caps
    style = rng.integers(0, 3, size=n)
    out = out.where(~(caps & (style == 0)), local.str.capitalize() + "@" + domain)
    out = out.where(~(caps & (style == 1)), out.str.upper())
    out = out.where(~(caps & (style == 2)), local.str.title() + "@" + domain.str.capitalize())
    space = u[4] < p_space
    side = u[5] < 0.5
    out = out.where(~(space & side), " " + out)
    out = out.where(~(space & ~side), out + " ")
    return out


def _shuffle_dots(local: str, a: float) -> str:
    bare = local.replace(".", "")
    if "." in local or len(bare) < 3:
        return bare
    k = 1 + int(a * (len(bare) - 2))
    return bare[:k] + "." + bare[k:]


def typo_emails(rng: np.random.Generator, local: pd.Series, domain: pd.Series, taken: set[str]) -> pd.Series:
    """Misspelt addresses that link to nobody: a transposed pair in the local part, or a misspelt domain."""
    local = local.reset_index(drop=True).astype("str")
    domain = domain.reset_index(drop=True).astype("str")
    n = len(local)
    if n == 0:
        return local
    pos = rng.random(n)
    swapped = pd.Series([_swap(v, a) for v, a in zip(local, pos, strict=True)], dtype="str")
    typo_domain = domain.map(lambda d: DOMAIN_TYPOS.get(d, d.replace(".", "", 1) + ".cm"))
    use_domain = rng.random(n) < 0.5
    out = (swapped + "@" + domain).where(~use_domain, local + "@" + typo_domain)
    clash = is_taken(normalize_emails(out), taken) | ((swapped == local).to_numpy() & ~use_domain)
    return out.where(~clash, local + "@" + typo_domain)


def _swap(local: str, a: float) -> str:
    if len(local) < 3:
        return local
    k = int(a * (len(local) - 1))
    return local[:k] + local[k + 1] + local[k] + local[k + 2 :]
