"""Keeping database passwords out of messages: URLs shown masked, secrets in driver text replaced by `***`.

A password written into a URL with an unencoded `@` (`wfm:Summer2025@Corp7Tail@host`) is split by the URL parser
at the first `@`: the parsed password is only `Summer2025`, and `Corp7Tail@host` becomes the host, which drivers
echo ("failed to resolve host 'Corp7Tail@host'"). So everything between the scheme and the LAST `@` of a URL is
treated as credentials, and every piece of it is masked.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
# scheme://userinfo@ : the greedy userinfo runs to the last '@' before the path, query or the end of the token.
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://)([^\s/?#'\"]*)@")
MIN_FRAGMENT = 4  # shorter pieces of a password (between '@' signs) are not replaced in free text: too many false hits


def _userinfo(url: str) -> str | None:
    """The raw text between `scheme://` and the last `@` before the path, or None."""
    m = _URL_CREDENTIALS.search(url)
    return m.group(2) if m else None


def mask_url(url: str) -> str:
    """`url` with everything after the user name and before the last `@` replaced by `***` (`user:***@host`)."""
    def masked(m: re.Match) -> str:
        user, sep, _ = m.group(2).partition(":")
        if not sep and "@" not in user:  # a user name without a password
            return m.group(0)
        return f"{m.group(1)}{user.split('@')[0] if not sep else user}:{MASK}@"
    return _URL_CREDENTIALS.sub(masked, url)


def has_unencoded_at(url: str | None) -> bool:
    """Whether the URL's credentials hold a raw `@` (the password must be written with `%40`)."""
    userinfo = _userinfo(url or "")
    return userinfo is not None and "@" in userinfo


def url_secrets(url: str | None) -> list[str]:
    """The texts to hide for `url`: its password (raw and decoded), and each `@`-separated piece of it; longest first."""
    userinfo = _userinfo(url or "")
    if not userinfo:
        return []
    user, sep, password = userinfo.partition(":")
    if not sep:  # `user@tail@host`: no password, but the pieces after the first '@' are not the user's name
        password = user.partition("@")[2]
    if not password:
        return []
    pieces = {password, unquote(password)}
    pieces |= {p for p in password.split("@") if len(p) >= MIN_FRAGMENT}
    return sorted(pieces, key=len, reverse=True)


def redact(text: str, url: str | None) -> str:
    """`text` with any URL's credentials masked and the password of `url` (or pieces of it) replaced by `***`."""
    text = mask_url(text)
    for secret in url_secrets(url):
        text = text.replace(secret, MASK)
    return text
