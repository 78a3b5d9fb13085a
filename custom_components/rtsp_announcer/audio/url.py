"""Parsing and redaction of RTSP URLs.

The URL of a stream is both what ffmpeg publishes to and a secret holder: it may carry
``user:password@``. Everything that prints a URL, or text that may contain one (ffmpeg
echoes it on stderr), goes through the redaction helpers here.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final
from urllib.parse import quote, unquote, urlsplit

from .exceptions import InvalidUrlError

# The audio core stays free of Home Assistant imports, so these mirror const.py.
DEFAULT_PORTS: Final[dict[str, int]] = {"rtsp": 554, "rtsps": 322}
MAX_URL_LENGTH: Final = 2048

# Delimiters that end the authority part of a URL, as urllib.parse.urlsplit reads it.
_AUTHORITY_END: Final = re.compile(r"[/?#]")
_HOSTNAME: Final = re.compile(r"[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_MASK: Final = "***"


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
    """Return the URL with its credentials masked, for logs and diagnostics.

    ``user:password@`` becomes ``***:***@`` and ``user@`` becomes ``***@``. Works on
    invalid URLs too and never raises.

    Args:
        url: Any URL.

    Returns:
        The URL with masked credentials, unchanged if it has none.
    """
    head, sep, rest = url.partition("://")
    if not sep:
        return url
    end = _authority_end(rest)
    userinfo, at, hostport = rest[:end].rpartition("@")
    if not at:
        return url
    mask = f"{_MASK}:{_MASK}" if ":" in userinfo else _MASK
    return f"{head}://{mask}@{hostport}{rest[end:]}"


def redact_text(text: str, url: str) -> str:
    """Remove the URL's credentials from free text such as an ffmpeg log line.

    The ``user:password@`` part and the password alone are masked in the forms a
    program may print them: as written in the URL, percent-decoded, re-encoded, and
    as an HTTP Basic credential.

    Args:
        text: The text to clean.
        url: The URL whose credentials must not appear.

    Returns:
        The text with the credentials masked.
    """
    # Called for every ffmpeg log line: the needles are computed once per URL and a
    # line is only copied when it contains one.
    for needle, replacement in _secrets(url):
        if needle in text:
            text = text.replace(needle, replacement)
    return text


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
    """Return (needle, replacement) pairs for the URL's credentials, longest first."""
    rest = url.strip().partition("://")[2]
    userinfo = rest[: _authority_end(rest)].rpartition("@")[0]
    if not userinfo:
        return ()
    user, colon, password = userinfo.partition(":")
    plain_user = unquote(user)
    users = {user, plain_user, quote(plain_user, safe="")}
    pairs: dict[str, str] = {}
    if not colon:
        for form in users:
            pairs[f"{form}@"] = f"{_MASK}@"
    else:
        plain_password = unquote(password)
        passwords = {password, plain_password, quote(plain_password, safe="")}
        for user_form in users:
            for password_form in passwords:
                pairs[f"{user_form}:{password_form}@"] = f"{_MASK}:{_MASK}@"
        basic = base64.b64encode(f"{plain_user}:{plain_password}".encode()).decode()
        pairs[basic] = _MASK
        for form in passwords - {""}:
            pairs[form] = _MASK
    return tuple(sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True))
