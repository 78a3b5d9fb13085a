"""Tests of RTSP URL parsing and redaction."""

from __future__ import annotations

import base64

import pytest

from custom_components.rtsp_announcer.audio.exceptions import InvalidUrlError
from custom_components.rtsp_announcer.audio.url import (
    MAX_URL_LENGTH,
    RtspUrl,
    parse_rtsp_url,
    redact_text,
    redact_url,
    strip_credentials,
)


def _url(
    host: str,
    port: int = 554,
    path: str = "/",
    *,
    scheme: str = "rtsp",
    userinfo: tuple[str | None, str | None] = (None, None),
) -> RtspUrl:
    return RtspUrl(
        scheme=scheme,
        host=host,
        port=port,
        path=path,
        username=userinfo[0],
        password=userinfo[1],
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://127.0.0.1:8554/announce", _url("127.0.0.1", 8554, "/announce")),
        ("rtsp://example.com", _url("example.com")),
        ("rtsp://example.com/", _url("example.com")),
        ("rtsps://example.com/a", _url("example.com", 322, "/a", scheme="rtsps")),
        ("RTSP://Example.COM:8554/Path", _url("example.com", 8554, "/Path")),
        ("  rtsp://host/a \n", _url("host", 554, "/a")),
        ("rtsp://host:0554/a", _url("host", 554, "/a")),
        ("rtsp://host:65535/a", _url("host", 65535, "/a")),
        ("rtsp://host.:1/a", _url("host.", 1, "/a")),
        ("rtsp://cam_01.local/a", _url("cam_01.local", 554, "/a")),
        ("rtsp://bücher.example/a", _url("bücher.example", 554, "/a")),
        ("rtsp://[::1]:8554/a", _url("::1", 8554, "/a")),
        ("rtsp://[::1]/a", _url("::1", 554, "/a")),
        ("rtsp://[FE80::1%25eth0]:8554/a", _url("fe80::1%eth0", 8554, "/a")),
        ("rtsp://host/a?x=1&y=2", _url("host", 554, "/a?x=1&y=2")),
        ("rtsp://host?x=1", _url("host", 554, "/?x=1")),
        ("rtsp://host/a#frag", _url("host", 554, "/a")),
        # Shell metacharacters are plain path characters: the URL goes to ffmpeg
        # in an argument list, never through a shell.
        ("rtsp://host/a;rm%20-rf", _url("host", 554, "/a;rm%20-rf")),
        ("rtsp://host/$(reboot)", _url("host", 554, "/$(reboot)")),
        ("rtsp://host/`id`", _url("host", 554, "/`id`")),
        ("rtsp://host/a|b&c>d", _url("host", 554, "/a|b&c>d")),
        (
            "rtsp://user:secret@host:8554/a",
            _url("host", 8554, "/a", userinfo=("user", "secret")),
        ),
        ("rtsp://user@host/a", _url("host", 554, "/a", userinfo=("user", None))),
        (
            "rtsp://:secret@host/a",
            _url("host", 554, "/a", userinfo=("", "secret")),
        ),
        (
            "rtsp://us%40er:p%3As%2Fs%40@host/a",
            _url("host", 554, "/a", userinfo=("us@er", "p:s/s@")),
        ),
        (
            "rtsp://user:p@ss@host/a",
            _url("host", 554, "/a", userinfo=("user", "p@ss")),
        ),
        (
            "rtsp://user:pass@[2001:db8::2]:8554/a",
            _url("2001:db8::2", 8554, "/a", userinfo=("user", "pass")),
        ),
        (
            "rtsp://host/" + "a" * (MAX_URL_LENGTH - len("rtsp://host/")),
            _url("host", 554, "/" + "a" * (MAX_URL_LENGTH - len("rtsp://host/"))),
        ),
    ],
)
def test_parse_valid(url: str, expected: RtspUrl) -> None:
    assert parse_rtsp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "http://host/a",
        "rtmp://host/a",
        "host:8554/a",
        "rtsp:host/a",
        "rtsp:///a",
        "rtsp://user:pass@/a",
        "rtsp://:8554/a",
        "rtsp://host:0/a",
        "rtsp://host:65536/a",
        "rtsp://host:99999999999999999999/a",
        "rtsp://host:/a",
        "rtsp://host:port/a",
        "rtsp://host:+80/a",
        "rtsp://host:-1/a",
        "rtsp://host:8554:1/a",
        "rtsp://host:\uff18\uff15\uff15\uff14/a"  # full-width digits,
        "rtsp://ho st/a",
        "rtsp://host/a b",
        "rtsp://host/a\tb",
        "rtsp://host/a\nb",
        "rtsp://host/a\x00b",
        "rtsp://host/a\x7fb",
        "rtsp://host/a\u00a0b",
        "rtsp://host/a\u200bb",
        "rtsp://ho;st/a",
        "rtsp://ho$t/a",
        "rtsp://a..b/a",
        "rtsp://.host/a",
        "rtsp://" + "a" * 64 + ".example/a",
        "rtsp://::1/a",
        "rtsp://[::1/a",
        "rtsp://]@[::1/a",
        "rtsp://[::1]x/a",
        "rtsp://[zz]/a",
        "rtsp://[127.0.0.1]/a",
        "rtsp://[v1.fe]/a",
        "rtsp://host/" + "a" * (MAX_URL_LENGTH - len("rtsp://host/") + 1),
    ],
)
def test_parse_invalid(url: str) -> None:
    with pytest.raises(InvalidUrlError):
        parse_rtsp_url(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://host/a", "rtsp://host/a"),
        ("rtsp://user:pass@host:8554/a", "rtsp://host:8554/a"),
        ("rtsp://user@host/a", "rtsp://host/a"),
        ("RTSPS://User:Pass@HOST:0322/Path?Q=1", "rtsps://host:0322/Path?Q=1"),
        ("rtsp://u:p@[::1]:8554/a", "rtsp://[::1]:8554/a"),
        ("rtsp://u:p%2Fq@host", "rtsp://host"),
        ("rtsp://u:p@ss@host/x@y", "rtsp://host/x@y"),
        ("  rtsp://u:p@host/a  ", "rtsp://host/a"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_strip_credentials_rejects_invalid_url() -> None:
    with pytest.raises(InvalidUrlError):
        strip_credentials("http://user:pass@host/a")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://host:8554/a", "rtsp://host:8554/a"),
        ("rtsp://user:pass@host:8554/a", "rtsp://***:***@host:8554/a"),
        ("rtsp://user@host/a", "rtsp://***@host/a"),
        ("rtsp://:pass@host/a", "rtsp://***:***@host/a"),
        ("rtsp://u:p@ss@host/a?b@c", "rtsp://***:***@host/a?b@c"),
        ("rtsp://u%3Ax:p%40s@[::1]/a", "rtsp://***:***@[::1]/a"),
        ("rtsp://host/path@x", "rtsp://host/path@x"),
        ("rtsp://u:p@host", "rtsp://***:***@host"),
        ("not a url", "not a url"),
        ("user:pass@host", "user:pass@host"),
        ("ftp://user:pass@host/a b", "ftp://***:***@host/a b"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


URL = "rtsp://us%40er:p%40ss%2Fw0rd@cam.local:8554/announce"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            f"[rtsp @ 0x55] Could not open {URL}",
            "[rtsp @ 0x55] Could not open rtsp://***:***@cam.local:8554/announce",
        ),
        (
            "Output #0, rtsp, to 'rtsp://us@er:p@ss/w0rd@cam.local:8554/announce':",
            "Output #0, rtsp, to 'rtsp://***:***@cam.local:8554/announce':",
        ),
        ("password p@ss/w0rd rejected", "password *** rejected"),
        ("password p%40ss%2Fw0rd rejected", "password *** rejected"),
        (
            "Authorization: Basic " + base64.b64encode(b"us@er:p@ss/w0rd").decode(),
            "Authorization: Basic ***",
        ),
        ("nothing to hide here", "nothing to hide here"),
        ("", ""),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text, URL) == expected


@pytest.mark.parametrize(
    ("url", "text", "expected"),
    [
        ("rtsp://host/a", "rtsp://host/a failed", "rtsp://host/a failed"),
        ("rtsp://admin@host/a", "rtsp://admin@host/a", "rtsp://***@host/a"),
        ("rtsp://admin:@host/a", "rtsp://admin:@host/a", "rtsp://***:***@host/a"),
        ("rtsp://@host/a", "rtsp://@host/a", "rtsp://@host/a"),
        ("not a url", "not a url", "not a url"),
        (" rtsp://u:secret@h/a ", "secret", "***"),
        ("rtsp://u:p@ss@h/a", "rtsp://u:p@ss@h/a", "rtsp://***:***@h/a"),
    ],
)
def test_redact_text_other_urls(url: str, text: str, expected: str) -> None:
    assert redact_text(text, url) == expected


def test_redact_text_leaves_no_password_form() -> None:
    url = "rtsp://user:a%2Bb%20c@host/a"
    lines = [
        "rtsp://user:a%2Bb%20c@host/a",
        "rtsp://user:a+b c@host/a",
        "user a%2Bb%20c",
        "a+b c",
    ]
    for line in lines:
        redacted = redact_text(line, url)
        assert "a+b c" not in redacted
        assert "a%2Bb%20c" not in redacted
        assert "***" in redacted
