"""Masking of personal data shown in the report.

The report is meant to be forwarded and printed, so it never shows a full email address: `jane@gmail.com`
becomes `j***@gmail.com`. Full addresses appear only in the audience CSV files, which are meant for upload.
"""

from __future__ import annotations

import re

# Deliberately loose: anything that looks like local@domain.tld inside free text (a name typed as an email).
_EMAIL_IN_TEXT = re.compile(r"[^\s<>\"'@,;:()\[\]]+@[^\s<>\"'@,;:()\[\]]+\.[^\s<>\"'@,;:()\[\]]+")


def mask_email(email: str | None) -> str:
    """`jane.doe@gmail.com` -> `j***@gmail.com`; anything that is not one address -> `***` (or '' for none)."""
    if email is None:
        return ""
    email = email.strip()
    if not email:
        return ""
    local, sep, domain = email.rpartition("@")
    if not sep or not local or "." not in domain or "@" in local:
        return "***"
    return f"{local[0]}***@{domain}"


def mask_emails_in_text(text: str | None) -> str:
    """Mask every email-looking substring of free text (names sometimes hold an address)."""
    if not text:
        return ""
    return _EMAIL_IN_TEXT.sub(lambda m: mask_email(m.group(0)), text)
