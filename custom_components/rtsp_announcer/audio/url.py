"""Parsing of RTSP URLs, and redaction of every URL and text that may hold a secret.

The URL of a stream is both what ffmpeg publishes to and a secret holder: it may carry
``user:password@``. A media URL may carry one too: ``user:password@`` or a token in its
query (Home Assistant's ``authSig``, S3's ``X-Amz-Signature``, an ``api_key``).
Everything that prints a URL goes through `redact_url`; text that may contain one
(ffmpeg echoes URLs on stderr, errors quote them) goes through `redact_text`.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, unquote, unquote_plus, urlsplit

from .exceptions import InvalidUrlError

if TYPE_CHECKING:
    from collections.abc import Iterable

# The audio core stays free of Home Assistant imports, so these mirror const.py.
DEFAULT_PORTS: Final[dict[str, int]] = {"rtsp": 554, "rtsps": 322}
MAX_URL_LENGTH: Final = 2048

# Delimiters that end the authority part of a URL, as urllib.parse.urlsplit reads it.
_AUTHORITY_END: Final = re.compile(r"[/?#]")
_HOSTNAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_MASK: Final = "***"

# Query and fragment parameters whose values are secrets, compared case-insensitively
# after percent-decoding the name; any name ending in one of SECRET_PARAM_SUFFIXES
# is one too (refresh_token, client_secret, X-Goog-Signature, X-Goog-Credential).
SECRET_PARAMS: Final = frozenset(
    {
        "token",
        "access_token",
        "authsig",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "signature",
        "sig",
        "key",
        "api_key",
        "apikey",
        "password",
        "pass",
        "auth",
        "secret",
    }
)
SECRET_PARAM_SUFFIXES: Final = (
    "token",
    "secret",
    "signature",
    "password",
    "credential",
)
# The values of a known URL's secret parameters are also masked where they appear
# alone in text; shorter ones would mask ordinary words and numbers.
_MIN_LOOSE_SECRET: Final = 4
# A parameter inside the query or fragment of one URL.
_URL_PARAM: Final = re.compile(
    r"(?P<head>[?&;#](?P<name>[^=&;#?\s]+)=)(?P<value>[^&;#\s]+)"
)
# A parameter anywhere in free text: a bare query, a request line, "password=...".
_TEXT_PARAM: Final = re.compile(
    r"(?P<head>(?:^|(?<=[\s?&;#'\"(\[,]))(?P<name>[\w.%-]+)=)"
    r"(?P<value>[^&;#\s'\"<>]*[^&;#\s'\"<>.,:)\]])"
)
# A URL in free text; it ends before whitespace, quotes and trailing punctuation.
_URL_IN_TEXT: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,:;)\]]"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtspUrl:
    """The parts of a valid RTSP URL.

    Attributes:
        scheme: ``rtsp`` or ``rtsps``, lower case.
        host: Host name or IP address, lower case; IPv6 literals without brackets.
        port: TCP port, the scheme's default when the URL has none.
        path: Path and query (``/`` when the URL has no path).
        username: Percent-decoded user name, or None when the URL has none.
        password: Percent-decoded password, or None when the URL has none.
    """

    scheme: str
    host: str
    port: int
    path: str
    username: str | None
    password: str | None


def parse_rtsp_url(url: str) -> RtspUrl:
    """Parse and validate an RTSP publish URL.

    Args:
        url: The URL; surrounding whitespace is ignored.

    Returns:
        The parts of the URL.

    Raises:
        InvalidUrlError: The URL is too long, contains whitespace or control
            characters, has another scheme than rtsp/rtsps, no valid host or an
            invalid port.
    """
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        msg = f"URL is longer than {MAX_URL_LENGTH} characters"
        raise InvalidUrlError(msg)
    # isprintable() is False for control, format and separator characters except
    # the plain space, which is checked on its own.
    if " " in url or not url.isprintable():
        msg = "URL contains whitespace or control characters"
        raise InvalidUrlError(msg)
    try:
        parts = urlsplit(url)
    except ValueError as err:
        raise InvalidUrlError(str(err)) from err
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        msg = f"Scheme must be rtsp or rtsps, not {scheme!r}"
        raise InvalidUrlError(msg)

    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _parse_host_port(hostport, DEFAULT_PORTS[scheme])
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if colon else None

    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return RtspUrl(
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        username=username,
        password=password,
    )


def strip_credentials(url: str) -> str:
    """Return the URL without its ``user:password@`` part.

    Scheme and host are lower-cased; an explicit port, the path and the query are
    kept as written, so the result identifies the stream whatever the credentials.

    Args:
        url: A valid RTSP URL.

    Returns:
        The URL without credentials.

    Raises:
        InvalidUrlError: The URL is not a valid RTSP URL.
    """
    scheme = parse_rtsp_url(url).scheme
    # A valid URL starts with "<scheme>://", so the first "://" ends the scheme.
    _, _, rest = url.strip().partition("://")
    end = _authority_end(rest)
    hostport = rest[:end].rpartition("@")[2]
    return f"{scheme}://{hostport.lower()}{rest[end:]}"


def redact_url(url: str) -> str:
    """Return the URL with its secrets masked, for logs, errors and diagnostics.

    ``user:password@`` becomes ``***:***@`` and ``user@`` becomes ``***@``, whatever
    the scheme; the value of every secret query or fragment parameter (see
    `is_secret_param`) becomes ``***``. Everything else is kept as written. Works on
    invalid URLs and on paths with a query (``/api/tts_proxy/a.mp3?authSig=...``)
    too, and never raises.

    Args:
        url: Any URL.

    Returns:
        The URL with masked secrets, unchanged if it has none.
    """
    head, sep, rest = url.partition("://")
    if sep:
        end = _authority_end(rest)
        userinfo, at, hostport = rest[:end].rpartition("@")
        if at and userinfo:
            mask = f"{_MASK}:{_MASK}" if ":" in userinfo else _MASK
            url = f"{head}://{mask}@{hostport}{rest[end:]}"
    start = url.find("?")
    if start < 0:
        start = url.find("#")
    if start < 0:
        return url
    return url[:start] + _URL_PARAM.sub(_mask_param, url[start:])


def redact_text(
    text: str, url: str | None = None, *, secrets: Iterable[str] = ()
) -> str:
    """Remove secrets from free text such as an ffmpeg log line or an error message.

    Masked are:

    * the credentials of `url` in the forms a program may print them: as written
      in the URL, percent-decoded, re-encoded, and as an HTTP Basic credential; and
      the values of its secret query parameters wherever they appear;
    * every URL found in the text, as `redact_url` masks it;
    * secret ``name=value`` parameters outside URLs (a request line, a bare query);
    * each string of `secrets` (empty ones are ignored).

    Args:
        text: The text to clean.
        url: A URL whose secrets must not appear, in any form.
        secrets: More strings that must not appear.

    Returns:
        The text with the secrets masked.
    """
    # Called for every ffmpeg log line: the needles are computed once per URL and a
    # line is only copied when it contains one.
    needles = list(_secrets(url)) if url else []
    extra = [(secret, _MASK) for secret in secrets if secret]
    if extra:
        needles = sorted(needles + extra, key=lambda pair: len(pair[0]), reverse=True)
    for needle, replacement in needles:
        if needle in text:
            text = text.replace(needle, replacement)
    if "://" in text:
        text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group()), text)
    if "=" in text:
        text = _TEXT_PARAM.sub(_mask_param, text)
    return text


def is_secret_param(name: str) -> bool:
    """Tell whether a query or fragment parameter of this name holds a secret.

    Args:
        name: The parameter name as written (percent-encoding allowed).

    Returns:
        True for the names of `SECRET_PARAMS`, case-insensitively, and for names
        ending in one of `SECRET_PARAM_SUFFIXES`.
    """
    plain = unquote(name).strip().lower()
    return plain in SECRET_PARAMS or plain.endswith(SECRET_PARAM_SUFFIXES)


def _mask_param(match: re.Match[str]) -> str:
    if is_secret_param(match.group("name")):
        return f"{match.group('head')}{_MASK}"
    return match.group()


def _parse_host_port(hostport: str, default_port: int) -> tuple[str, int]:
    """Split and validate the ``host[:port]`` part of a URL."""
    if hostport.startswith("["):
        literal, bracket, after = hostport[1:].partition("]")
        if not bracket:
            msg = "Unterminated IPv6 address"
            raise InvalidUrlError(msg)
        host = unquote(literal).lower()
        try:
            ipaddress.IPv6Address(host)
        except ValueError as err:
            raise InvalidUrlError(str(err)) from err
    else:
        host, colon, port_part = hostport.partition(":")
        after = colon + port_part
        host = host.lower()
        if not _is_hostname(host):
            msg = f"Invalid host {host!r}"
            raise InvalidUrlError(msg)

    if not after:
        return host, default_port
    port_text = after[1:]
    if (
        not after.startswith(":")
        or not (port_text.isascii() and port_text.isdigit())
        or not 0 < int(port_text) < 2**16
    ):
        msg = f"Invalid port {after!r}"
        raise InvalidUrlError(msg)
    return host, int(port_text)


def _is_hostname(host: str) -> bool:
    """Tell whether host is a plausible DNS name or IPv4 address."""
    try:
        # The IDNA codec rejects empty and over-long labels and converts
        # internationalised names, which the resolver accepts.
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return _HOSTNAME.fullmatch(ascii_host) is not None


def _authority_end(rest: str) -> int:
    """Return where the authority ends in the part of a URL after ``://``."""
    match = _AUTHORITY_END.search(rest)
    return match.start() if match else len(rest)


@lru_cache(maxsize=32)
def _secrets(url: str) -> tuple[tuple[str, str], ...]:
    """Return (needle, replacement) pairs for the URL's secrets, longest first."""
    rest = url.strip().partition("://")[2]
    userinfo = rest[: _authority_end(rest)].rpartition("@")[0]
    pairs: dict[str, str] = {}
    if userinfo:
        pairs.update(_userinfo_secrets(userinfo))
    start = url.find("?")
    if start < 0:
        start = url.find("#")
    if start >= 0:
        for match in _URL_PARAM.finditer(url, start):
            if not is_secret_param(match.group("name")):
                continue
            value = match.group("value")
            for form in {value, unquote(value), unquote_plus(value)}:
                if len(form) >= _MIN_LOOSE_SECRET:
                    pairs[form] = _MASK
                    pairs[quote(form, safe="")] = _MASK
    return tuple(sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True))


def _userinfo_secrets(userinfo: str) -> dict[str, str]:
    """Return (needle, replacement) pairs for ``user[:password]`` of a URL."""
    user, colon, password = userinfo.partition(":")
    plain_user = unquote(user)
    users = {user, plain_user, quote(plain_user, safe="")}
    pairs: dict[str, str] = {}
    if not colon:
        for form in users:
            pairs[f"{form}@"] = f"{_MASK}@"
        return pairs
    plain_password = unquote(password)
    passwords = {password, plain_password, quote(plain_password, safe="")}
    for user_form in users:
        for password_form in passwords:
            pairs[f"{user_form}:{password_form}@"] = f"{_MASK}:{_MASK}@"
    basic = base64.b64encode(f"{plain_user}:{plain_password}".encode()).decode()
    pairs[basic] = _MASK
    for form in passwords - {""}:
        pairs[form] = _MASK
    return pairs
