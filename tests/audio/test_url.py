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


# --------------------------------------------------------------- media URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://ha.local:8123/api/tts_proxy/a.mp3?authSig=eyJhbGc.x.y",
            "https://ha.local:8123/api/tts_proxy/a.mp3?authSig=***",
        ),
        (
            "https://bucket.s3.amazonaws.com/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIA%2F20260101&X-Amz-Signature=abc123"
            "&X-Amz-Security-Token=tok&X-Amz-Expires=60",
            "https://bucket.s3.amazonaws.com/a.mp3?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=***&X-Amz-Signature=***"
            "&X-Amz-Security-Token=***&X-Amz-Expires=60",
        ),
        ("http://h/a?token=1&b=2", "http://h/a?token=***&b=2"),
        ("http://h/a?TOKEN=1", "http://h/a?TOKEN=***"),
        ("http://h/a?access_token=1", "http://h/a?access_token=***"),
        ("http://h/a?Signature=1&Expires=2", "http://h/a?Signature=***&Expires=2"),
        ("http://h/a?sig=1&sv=2", "http://h/a?sig=***&sv=2"),
        ("http://h/a?key=1", "http://h/a?key=***"),
        ("http://h/a?api_key=1&apikey=2", "http://h/a?api_key=***&apikey=***"),
        ("http://h/a?password=1&pass=2", "http://h/a?password=***&pass=***"),
        ("http://h/a?auth=1&secret=2", "http://h/a?auth=***&secret=***"),
        ("http://h/a?refresh_token=1", "http://h/a?refresh_token=***"),
        ("http://h/a?client_secret=1", "http://h/a?client_secret=***"),
        ("http://h/a?X-Goog-Signature=1", "http://h/a?X-Goog-Signature=***"),
        # Percent-encoded names are still names.
        ("http://h/a?%74oken=1", "http://h/a?%74oken=***"),
        # In the fragment too (single-page players put tokens there).
        ("http://h/a#access_token=1&x=2", "http://h/a#access_token=***&x=2"),
        ("http://h/a?x=1#token=2", "http://h/a?x=1#token=***"),
        # A value that is empty, or a name without a value, has nothing to hide.
        ("http://h/a?token=&x", "http://h/a?token=&x"),
        ("http://h/a?token", "http://h/a?token"),
        # Names that only contain a secret word are left alone.
        ("http://h/a?keyframe=1&monkey=2", "http://h/a?keyframe=1&monkey=2"),
        ("http://h/a?passage=1&author=2", "http://h/a?passage=1&author=2"),
        # Userinfo of http(s) URLs, with or without a password.
        ("https://u:p@h/a.mp3", "https://***:***@h/a.mp3"),
        ("http://u@h/a.mp3?token=t", "http://***@h/a.mp3?token=***"),
        ("HTTPS://u:p@H/a?Token=t", "HTTPS://***:***@H/a?Token=***"),
        # Paths and relative URLs Home Assistant signs.
        ("/api/tts_proxy/a.mp3?authSig=x", "/api/tts_proxy/a.mp3?authSig=***"),
        ("/media/a.mp3", "/media/a.mp3"),
        # Separators ffmpeg and other programs use.
        ("http://h/a?x=1;token=2", "http://h/a?x=1;token=***"),
    ],
)
def test_redact_url_masks_media_secrets(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_never_raises() -> None:
    for url in ["", "?", "#", "?=", "http://[::1", "://@", "a?%zz=1", "\x00?token=1"]:
        assert isinstance(redact_url(url), str)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "[http @ 0x5] HTTP error 404 Not Found",
            "[http @ 0x5] HTTP error 404 Not Found",
        ),
        (
            "https://u:pw@cdn.example/x.mp3?authSig=abc: Server returned 404",
            "https://***:***@cdn.example/x.mp3?authSig=***: Server returned 404",
        ),
        (
            "[hls] Opening 'https://cdn/x.ts?X-Amz-Signature=abc&n=1' for reading",
            "[hls] Opening 'https://cdn/x.ts?X-Amz-Signature=***&n=1' for reading",
        ),
        (
            'Input #0, mp3, from "http://h/a.mp3?token=t":',
            'Input #0, mp3, from "http://h/a.mp3?token=***":',
        ),
        (
            "two: http://a/x?key=1 and rtsp://u:p@b/y",
            "two: http://a/x?key=*** and rtsp://***:***@b/y",
        ),
        (
            "[tcp @ 0x1] Connection to tcp://h:80 failed: Connection refused",
            "[tcp @ 0x1] Connection to tcp://h:80 failed: Connection refused",
        ),
        # A request line or a bare query, no URL around it.
        ("GET /a.mp3?authSig=abc HTTP/1.1", "GET /a.mp3?authSig=*** HTTP/1.1"),
        ("password=hunter2 rejected", "password=*** rejected"),
    ],
)
def test_redact_text_finds_urls_and_tokens(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_redact_text_masks_given_secrets() -> None:
    text = "auth with Bearer abc.def.ghi failed for alice"
    assert (
        redact_text(text, secrets=["abc.def.ghi", "alice", ""])
        == "auth with Bearer *** failed for ***"
    )


def test_redact_text_masks_the_values_of_a_known_url_wherever_they_appear() -> None:
    url = "https://cdn.example/a.mp3?authSig=s%2Bcret&n=1"
    # ffmpeg may print the decoded value on its own.
    assert redact_text("signature s+cret expired", url) == "signature *** expired"
    assert redact_text("signature s%2Bcret expired", url) == "signature *** expired"
