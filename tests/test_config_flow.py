"""Tests of the RTSP Announcer config, options, reconfigure and reauth flows.

Every URL the flows accept is published to for real: the flows run the
stream's ffmpeg against real peers (ffmpeg's RTSP listener, the
rtsp-server-perl relay, small asyncio RTSP peers for the answers no real server
here gives on demand) and no ffmpeg may be left behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
import voluptuous as vol
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

import custom_components.rtsp_announcer as integration
from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.models import (
    PublisherState,
    StreamSettings,
)
from custom_components.rtsp_announcer.audio.probe import probe_publish
from custom_components.rtsp_announcer.audio.publisher import FailureKind, Supervision
from custom_components.rtsp_announcer.audio.url import parse_rtsp_url
from custom_components.rtsp_announcer.config_flow import url_with_credentials
from custom_components.rtsp_announcer.const import CONF_NAME, CONF_URL, DOMAIN

from .common import ffmpeg_children, wait_available
from .helpers.rtsp import HOST, ListenReceiver, RelayServer, free_port
from .helpers.rtsp.peers import ScriptedServer, StatusServer
from .helpers.waiting import until

# The announcement defaults of a stream as a new options form has them.
ANNOUNCE_DEFAULTS = {
    opt.PREANNOUNCE.key: True,
    opt.PREANNOUNCE_SOUND.key: "chime",
    opt.LEAD_IN.key: 0.0,
    opt.GAIN_DB.key: 0.0,
    opt.REPEAT.key: 1,
}

FLOW = "custom_components.rtsp_announcer.config_flow"
PROBE_TIMEOUT = "custom_components.rtsp_announcer.audio.probe.PROBE_TIMEOUT"
SECRET = "S3cr3tP4ss"  # noqa: S105 - the password no form may echo
STREAM = "media_player.hall"
FIGURES = logging.getLogger("tests.figures")


# --------------------------------------------------------------------------- peers


class TransportPeer(ScriptedServer):
    """An RTSP server that takes a stream over UDP only, or over nothing.

    SETUP over TCP (and over UDP unless `udp`) is answered "461 Unsupported
    Transport", as RFC 2326 wants from a server that does not support the
    transport; everything else gets "200 OK", and the RTP packets go to a UDP
    socket of its own.
    """

    def __init__(self, *, udp: bool = True) -> None:
        super().__init__()
        self.udp = udp
        self.requests: list[tuple[str, str]] = []
        self.rtp_packets = 0
        self._udp: asyncio.DatagramTransport | None = None

    @property
    def url(self) -> str:
        return f"rtsp://{HOST}:{self.port}/announce"

    async def start(self, port: int = 0) -> None:
        loop = asyncio.get_running_loop()
        peer = self

        class Rtp(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                peer.rtp_packets += 1

        self._udp, _ = await loop.create_datagram_endpoint(Rtp, local_addr=(HOST, 0))
        await super().start(port)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        await super().stop()

    def answer(self, method: str, fields: dict[str, str]) -> str:
        assert self._udp is not None
        rtp_port = self._udp.get_extra_info("sockname")[1]
        transport = fields.get("transport", "")
        self.requests.append((method, transport))
        status, extra = "200 OK", ""
        if method == "SETUP" and ("/TCP" in transport or not self.udp):
            status = "461 Unsupported Transport"
        elif method == "SETUP":
            extra = f"\r\nTransport: {transport};server_port={rtp_port}-{rtp_port}"
        return f"{status}\r\nCSeq: {fields.get('cseq', '0')}\r\nSession: 1{extra}"


# ------------------------------------------------------------------------ fixtures


@pytest.fixture(autouse=True)
def no_ffmpeg_left() -> Generator[None]:
    """Every publish attempt is over, its ffmpeg reaped, when a test ends."""
    yield
    assert ffmpeg_children() == []


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens."""
    return free_port()


def _url(port: int, path: str = "/announce", userinfo: str = "") -> str:
    return f"rtsp://{userinfo}{HOST}:{port}{path}"


def _entry(
    hass: HomeAssistant,
    port: int,
    path: str = "/announce",
    name: str = "Hall",
    **options: Any,
) -> MockConfigEntry:
    return _add_entry(hass, _url(port, path), name=name, **options)


def _add_entry(
    hass: HomeAssistant,
    url: str,
    *,
    name: str = "Hall",
    unique_id: str | None = None,
    **options: Any,
) -> MockConfigEntry:
    """A stream's entry as the flows store it: its URL is its id (without credentials).

    `tests.common.add_entry` gives each entry an id of its own instead.
    """
    entry = MockConfigEntry(
        domain=DOMAIN,
        title=name,
        unique_id=unique_id or url,
        data={CONF_NAME: name, CONF_URL: url},
        options=options,
    )
    entry.add_to_hass(hass)
    return entry


async def _options_form(hass: HomeAssistant) -> tuple[MockConfigEntry, dict[str, Any]]:
    """An entry and the first form of its options flow."""
    entry = _entry(hass, 554)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    return entry, dict(result)


def _assert_form(
    result: Mapping[str, Any], errors: dict[str, str], step_id: str | None = None
) -> None:
    """The flow shows its form again (or for the first time) with these errors."""
    assert result["type"] is FlowResultType.FORM
    if step_id is not None:
        assert result["step_id"] == step_id
    assert result["errors"] == errors


def _assert_aborted(result: Mapping[str, Any], reason: str) -> None:
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


async def _configure(
    hass: HomeAssistant, result: Mapping[str, Any], user_input: dict[str, Any]
) -> dict[str, Any]:
    """Submit the form of the flow `result` belongs to."""
    return dict(
        await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    )


async def _opened(flow: Awaitable[Mapping[str, Any]], step_id: str) -> dict[str, Any]:
    """The first form of a flow just started: step `step_id`, no errors yet."""
    result = dict(await flow)
    _assert_form(result, {}, step_id=step_id)
    return result


async def _finish(
    hass: HomeAssistant,
    result: Mapping[str, Any],
    user_input: dict[str, Any],
    reason: str,
) -> None:
    """Submit the flow's last form: it ends with `reason`; what it reloads is up."""
    result2 = await _configure(hass, result, user_input)
    await hass.async_block_till_done()
    _assert_aborted(result2, reason)


def _schema(result: Mapping[str, Any]) -> vol.Schema:
    schema = result["data_schema"]
    assert isinstance(schema, vol.Schema)
    return schema


def _suggested(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in _schema(result).schema
        if key.description and "suggested_value" in key.description
    }


async def _start_user_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    _assert_form(result, {}, step_id="user")
    return dict(result)


async def _submit_user(
    hass: HomeAssistant, flow_id: str, url: str, name: str = "Hall"
) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: name, CONF_URL: url}
    )
    return dict(result)


async def _user_flow_to(hass: HomeAssistant, url: str) -> dict[str, Any]:
    """The answer of a new user flow to `url` named "Hall"."""
    result = await _start_user_flow(hass)
    return await _submit_user(hass, result["flow_id"], url)


# ----------------------------------------------------------------------- user step


async def test_user_flow_publishes_then_creates_entry(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)
    url = _url(receiver.port, userinfo="Admin:s3cr%40t@")

    result2 = await _submit_user(hass, result["flow_id"], f"  {url} ", "Front door")
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.CREATE_ENTRY
    assert result2["title"] == "Front door"
    assert result2["data"] == {CONF_NAME: "Front door", CONF_URL: url}
    entry = result2["result"]
    assert entry.unique_id == _url(receiver.port)
    assert "s3cr" not in entry.unique_id
    assert "Admin" not in entry.unique_id
    # The default transport worked: nothing to keep in the options.
    assert entry.options == {}
    assert len(mock_setup_entry.mock_calls) == 1
    # The server really got a stream (the silence of the attempt).
    session = await receiver.wait_for_session(1, timeout=5)
    assert session.sample_count > 0


async def test_user_flow_default_name(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)
    assert _schema(result)({CONF_URL: "x"})[CONF_NAME] == "Announcer"

    result2 = await _submit_user(hass, result["flow_id"], receiver.url, "   ")

    assert result2["type"] is FlowResultType.CREATE_ENTRY
    assert result2["title"] == "Announcer"
    assert result2["data"][CONF_NAME] == "Announcer"


@pytest.mark.parametrize(
    "bad_url",
    [
        "http://127.0.0.1/a",
        "rtsp://",
        "rtsp://127.0.0.1:99999/a",
        "rtsp://127.0.0.1/a b",
        "rtsp://host/" + "a" * 2048,
    ],
)
async def test_user_invalid_url_then_recover(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    mock_setup_entry: AsyncMock,
    bad_url: str,
) -> None:
    result = await _start_user_flow(hass)

    result2 = await _submit_user(hass, result["flow_id"], bad_url)

    _assert_form(result2, {CONF_URL: "invalid_url"})
    # The form keeps what was typed so it can be corrected.
    assert _suggested(result2) == {CONF_NAME: "Hall", CONF_URL: bad_url}

    result3 = await _submit_user(hass, result["flow_id"], receiver.url)
    assert result3["type"] is FlowResultType.CREATE_ENTRY
    assert result3["result"].unique_id == receiver.url


async def test_user_closed_port_then_recover(
    hass: HomeAssistant,
    closed_port: int,
    receiver: ListenReceiver,
    mock_setup_entry: AsyncMock,
) -> None:
    result = await _start_user_flow(hass)

    result2 = await _submit_user(hass, result["flow_id"], _url(closed_port))

    _assert_form(result2, {"base": "cannot_connect"})
    assert mock_setup_entry.mock_calls == []

    result3 = await _submit_user(hass, result["flow_id"], receiver.url)
    assert result3["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.usefixtures("socket_enabled")
@pytest.mark.parametrize(
    ("status", "options_too", "error"),
    [
        # A server that wants credentials asks for them at once, OPTIONS included.
        ("401 Unauthorized", True, "invalid_auth"),
        ("403 Forbidden", False, "forbidden"),
        ("404 Not Found", False, "path_not_found"),
    ],
)
async def test_user_refusals_then_recover(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    mock_setup_entry: AsyncMock,
    status: str,
    options_too: bool,
    error: str,
) -> None:
    result = await _start_user_flow(hass)

    async with StatusServer(status, options_too=options_too) as server:
        url = server.url(f"user:{SECRET}@")
        result2 = await _submit_user(hass, result["flow_id"], url)

    _assert_form(result2, {"base": error})
    assert "ANNOUNCE" in server.requests or options_too
    assert SECRET not in str(result2)
    assert _suggested(result2)[CONF_URL] == url

    result3 = await _submit_user(hass, result["flow_id"], receiver.url)
    assert result3["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.usefixtures("socket_enabled")
async def test_user_other_answer_shows_what_ffmpeg_said(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)

    async with StatusServer("400 Bad Request") as server:
        result2 = await _submit_user(
            hass, result["flow_id"], server.url(f"user:{SECRET}@")
        )

    _assert_form(result2, {"base": "unknown"})
    reason = result2["description_placeholders"]["error"]
    assert "400 Bad Request" in reason
    assert not reason.startswith("[")
    assert SECRET not in str(result2)


async def test_user_server_that_never_answers_times_out(
    hass: HomeAssistant, silent_port: int
) -> None:
    result = await _start_user_flow(hass)

    started = time.monotonic()
    with patch(PROBE_TIMEOUT, 0.5):
        result2 = await _submit_user(hass, result["flow_id"], _url(silent_port))
    took = time.monotonic() - started

    _assert_form(result2, {"base": "cannot_connect"})
    # Killed at the limit, not left waiting on the server.
    assert took < 2.5
    assert ffmpeg_children() == []


async def test_user_without_ffmpeg(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    result = await _start_user_flow(hass)

    with patch(
        "homeassistant.components.ffmpeg.FFmpegManager.binary",
        new="/nonexistent/ffmpeg",
    ):
        result2 = await _submit_user(hass, result["flow_id"], receiver.url)

    _assert_form(result2, {"base": "ffmpeg_not_found"})


async def test_user_unexpected_error(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    result = await _start_user_flow(hass)
    url = f"rtsp://user:{SECRET}@10.0.0.1/a"

    with (
        caplog.at_level(logging.ERROR),
        patch(f"{FLOW}.probe_publish", side_effect=RuntimeError(f"boom at {url}")),
    ):
        result2 = await _submit_user(hass, result["flow_id"], url)

    _assert_form(result2, {"base": "unknown"})
    assert result2["description_placeholders"] == {
        "error": "boom at rtsp://***:***@10.0.0.1/a"
    }
    assert "rtsp://***:***@10.0.0.1/a" in caplog.text
    assert SECRET not in caplog.text


@pytest.mark.usefixtures("socket_enabled")
async def test_user_transport_refused_tries_the_other_and_keeps_it(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    async with TransportPeer() as peer:
        result = await _user_flow_to(hass, peer.url)

    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The stream publishes over UDP from the start, and the options say so.
    assert result["result"].options == {opt.RTSP_TRANSPORT.key: "udp"}
    setups = [transport for method, transport in peer.requests if method == "SETUP"]
    assert len(setups) == 2
    assert "/TCP" in setups[0]
    assert "/TCP" not in setups[1]
    assert ("RECORD", "") in peer.requests
    assert peer.rtp_packets > 0


@pytest.mark.usefixtures("socket_enabled")
async def test_user_no_transport_taken_shows_what_ffmpeg_said(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    async with TransportPeer(udp=False) as peer:
        result = await _user_flow_to(hass, peer.url)

    # Not a matter of the transport option: neither works.
    _assert_form(result, {"base": "unknown"})
    assert "461 Unsupported Transport" in result["description_placeholders"]["error"]
    assert [method for method, _ in peer.requests].count("SETUP") == 2


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:{port}/announce",
        "rtsp://user:pass@127.0.0.1:{port}/announce",
        "RTSP://other:secret@127.0.0.1:{port}/announce",
    ],
)
async def test_user_duplicate_aborts_without_publishing(
    hass: HomeAssistant, closed_port: int, mock_setup_entry: AsyncMock, url: str
) -> None:
    _entry(hass, closed_port)
    result = await _start_user_flow(hass)

    # Nothing listens there: an attempt would have said cannot_connect.
    result2 = await _submit_user(
        hass, result["flow_id"], url.format(port=closed_port), "Again"
    )

    _assert_aborted(result2, "already_configured")
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


# ----------------------------------------------------------------- publish attempt


async def test_publish_attempt_outcomes_and_duration(
    receiver: ListenReceiver, closed_port: int
) -> None:
    ok = await probe_publish("ffmpeg", StreamSettings(url=receiver.url))
    refused = await probe_publish("ffmpeg", StreamSettings(url=_url(closed_port)))

    assert ok.ok
    assert ok.error is None
    assert refused.failure is FailureKind.CONNECTION_REFUSED
    assert refused.error is not None
    assert "Connection refused" in refused.error
    assert ok.seconds < 3
    assert refused.seconds < 3
    FIGURES.info(
        f"publish attempt: accepted in {ok.seconds * 1000:.0f} ms,"
        f" refused connection in {refused.seconds * 1000:.0f} ms"
    )


async def test_cancelled_publish_attempt_leaves_no_ffmpeg(silent_port: int) -> None:
    attempt = asyncio.create_task(
        probe_publish("ffmpeg", StreamSettings(url=_url(silent_port)))
    )
    await until(lambda: ffmpeg_children() != [], 5, "the publishing ffmpeg")

    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt

    assert ffmpeg_children() == []


# -------------------------------------------------------------------- options flow


async def test_options_flow_defaults(hass: HomeAssistant) -> None:
    _, result = await _options_form(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert (
        _schema(result)({})
        == {
            opt.CODEC.key: opt.CODEC.default,
            opt.PCM_TRANSPORT.key: opt.PCM_TRANSPORT.default,
            opt.SAMPLE_RATE.key: str(opt.SAMPLE_RATE.default),
            opt.RTSP_TRANSPORT.key: opt.RTSP_TRANSPORT.default,
            opt.FRAME_MS.key: opt.FRAME_MS.default,
            opt.LEAD_MS.key: opt.LEAD_MS.default,
            opt.IDLE_BLOCK_MS.key: opt.IDLE_BLOCK_MS.default,
            opt.FIRST_AUDIO_TIMEOUT.key: opt.FIRST_AUDIO_TIMEOUT.default,
            opt.SOURCE_TIMEOUT.key: opt.SOURCE_TIMEOUT.default,
            opt.NETWORK_TIMEOUT.key: opt.NETWORK_TIMEOUT.default,
            opt.MAX_QUEUE_AGE.key: opt.MAX_QUEUE_AGE.default,
            # The call-number screen: off.
            opt.VIDEO.key: False,
        }
        | ANNOUNCE_DEFAULTS
    )
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_options_flow_saves_typed_values(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    entry, result = await _options_form(hass)

    result2 = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            opt.CODEC.key: "pcm_mulaw",
            opt.PCM_TRANSPORT.key: "pipe",
            opt.SAMPLE_RATE.key: "8000",
            opt.RTSP_TRANSPORT.key: "udp",
            opt.FRAME_MS.key: 10.0,
            opt.LEAD_MS.key: 125.0,
            opt.IDLE_BLOCK_MS.key: 0.0,
        },
    )
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        opt.CODEC.key: "pcm_mulaw",
        opt.PCM_TRANSPORT.key: "pipe",
        opt.SAMPLE_RATE.key: 8000,
        opt.RTSP_TRANSPORT.key: "udp",
        opt.FRAME_MS.key: 10,
        opt.LEAD_MS.key: 125,
        opt.IDLE_BLOCK_MS.key: 0,
        opt.FIRST_AUDIO_TIMEOUT.key: opt.FIRST_AUDIO_TIMEOUT.default,
        opt.SOURCE_TIMEOUT.key: opt.SOURCE_TIMEOUT.default,
        opt.NETWORK_TIMEOUT.key: opt.NETWORK_TIMEOUT.default,
        opt.MAX_QUEUE_AGE.key: opt.MAX_QUEUE_AGE.default,
    } | ANNOUNCE_DEFAULTS
    assert entry.options == expected
    assert type(entry.options[opt.SAMPLE_RATE.key]) is int
    assert type(entry.options[opt.FRAME_MS.key]) is int
    assert type(entry.options[opt.LEAD_MS.key]) is int

    # The next options form starts from what was saved.
    result3 = await hass.config_entries.options.async_init(entry.entry_id)
    assert _schema(result3)({}) == expected | {
        opt.SAMPLE_RATE.key: "8000",
        opt.VIDEO.key: False,
    }
    hass.config_entries.options.async_abort(result3["flow_id"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (opt.CODEC.key, "mp3"),
        (opt.SAMPLE_RATE.key, "12345"),
        (opt.FRAME_MS.key, 5),
        (opt.LEAD_MS.key, 1000),
        (opt.GAIN_DB.key, -31),
        (opt.GAIN_DB.key, 13),
        (opt.REPEAT.key, 11),
        (opt.LEAD_IN.key, 6),
    ],
)
async def test_options_flow_rejects_out_of_range(
    hass: HomeAssistant, field: str, value: object
) -> None:
    entry, result = await _options_form(hass)
    defaults = _schema(result)({})

    with pytest.raises(InvalidData) as err:
        await hass.config_entries.options.async_configure(
            result["flow_id"], defaults | {field: value}
        )
    assert set(err.value.schema_errors) == {field}
    hass.config_entries.options.async_abort(result["flow_id"])


# --------------------------------------------------------------------- reconfigure


async def test_reconfigure_changes_url(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, receiver.port)

    result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")
    (url_key,) = _schema(result).schema
    assert url_key.description == {"suggested_value": entry.data[CONF_URL]}

    new_url = _url(receiver.port, "/other", "user:pw@")
    await _finish(hass, result, {CONF_URL: f" {new_url}"}, "reconfigure_successful")
    assert entry.data == {CONF_NAME: "Hall", CONF_URL: new_url}
    assert entry.unique_id == _url(receiver.port, "/other")
    assert entry.title == "Hall"
    assert len(mock_setup_entry.mock_calls) == 1
    await receiver.wait_for_session(1, timeout=5)


async def test_reconfigure_credentials_only(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, receiver.port)
    result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")

    new_url = _url(receiver.port, userinfo="new:creds@")
    await _finish(hass, result, {CONF_URL: new_url}, "reconfigure_successful")
    assert entry.data[CONF_URL] == new_url
    assert entry.unique_id == receiver.url


@pytest.mark.usefixtures("socket_enabled")
async def test_reconfigure_errors_then_recover(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    closed_port: int,
    mock_setup_entry: AsyncMock,
) -> None:
    entry = _entry(hass, receiver.port)
    result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")

    result2 = await _configure(hass, result, {CONF_URL: "rtsp://127.0.0.1:0/a"})
    _assert_form(result2, {CONF_URL: "invalid_url"})
    (url_key,) = _schema(result2).schema
    assert url_key.description == {"suggested_value": "rtsp://127.0.0.1:0/a"}

    result3 = await _configure(hass, result, {CONF_URL: _url(closed_port)})
    _assert_form(result3, {"base": "cannot_connect"})

    async with StatusServer("404 Not Found") as server:
        result4 = await _configure(hass, result, {CONF_URL: server.url()})
    _assert_form(result4, {"base": "path_not_found"})
    assert entry.data[CONF_URL] == receiver.url
    assert mock_setup_entry.mock_calls == []

    await _finish(
        hass, result, {CONF_URL: _url(receiver.port, "/b")}, "reconfigure_successful"
    )
    assert entry.unique_id == _url(receiver.port, "/b")


async def test_reconfigure_onto_another_entry_aborts(
    hass: HomeAssistant, closed_port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, closed_port, "/one", "One")
    _entry(hass, closed_port, "/two", "Two")
    result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")

    result2 = await _configure(
        hass, result, {CONF_URL: _url(closed_port, "/two", "u:p@")}
    )

    _assert_aborted(result2, "already_configured")
    assert entry.data[CONF_URL] == _url(closed_port, "/one")
    assert entry.unique_id == _url(closed_port, "/one")
    assert mock_setup_entry.mock_calls == []


@pytest.mark.usefixtures("socket_enabled")
async def test_reconfigure_reports_a_refused_transport(
    hass: HomeAssistant, closed_port: int, mock_setup_entry: AsyncMock
) -> None:
    # The transport is the user's choice in the options: not changed behind it.
    entry = _entry(hass, closed_port, **{opt.RTSP_TRANSPORT.key: "tcp"})
    async with TransportPeer() as peer:
        result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")
        result2 = await _configure(hass, result, {CONF_URL: peer.url})

    _assert_form(result2, {"base": "unsupported_transport"})
    assert result2["description_placeholders"] == {"transport": "TCP"}
    assert [m for m, _ in peer.requests].count("SETUP") == 1
    assert entry.options == {opt.RTSP_TRANSPORT.key: "tcp"}


async def test_reconfigure_publishes_with_the_entry_transport(
    hass: HomeAssistant, closed_port: int, mock_setup_entry: AsyncMock
) -> None:
    """rtsp-server-perl takes UDP publishers only: the attempt uses the option."""
    entry = _entry(hass, closed_port, **{opt.RTSP_TRANSPORT.key: "udp"})
    async with RelayServer() as relay:
        result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")
        await _finish(
            hass, result, {CONF_URL: relay.publish_url}, "reconfigure_successful"
        )
        # Mounted and cleanly unmounted (TEARDOWN): the path is free again.
        assert [event for _, event, _ in relay.mount_events] == [
            "mounted",
            "unmounted",
        ]
        assert "Unable to parse" not in relay.log()


async def test_reconfigure_to_the_url_it_publishes_to(hass: HomeAssistant) -> None:
    """The publishing stream is the proof: no attempt competes with it.

    ffmpeg's listener takes one publisher at a time; an attempt would be
    refused while the stream publishes there.
    """
    async with ListenReceiver() as receiver:
        entry = _add_entry(hass, receiver.url)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, STREAM)

        result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")
        await _finish(hass, result, {CONF_URL: receiver.url}, "reconfigure_successful")
        await wait_available(hass, STREAM, timeout=20)
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()


# -------------------------------------------------------------------------- reauth


def _reauth_entry(
    hass: HomeAssistant, port: int, userinfo: str = "old:wrong@"
) -> MockConfigEntry:
    return _add_entry(hass, _url(port, userinfo=userinfo), unique_id=_url(port))


async def test_reauth_replaces_the_credentials(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    entry = _reauth_entry(hass, receiver.port)

    result = await _opened(entry.start_reauth_flow(hass), "reauth_confirm")
    assert result["description_placeholders"] == {
        "url": _url(receiver.port, userinfo="***:***@"),
        "name": "Hall",
    }
    # The user name is offered again; the password never is.
    assert _suggested(result) == {CONF_USERNAME: "old"}

    await _finish(
        hass,
        result,
        {CONF_USERNAME: " admin ", CONF_PASSWORD: "p@ss:w/rd #1"},
        "reauth_successful",
    )
    assert entry.data == {
        CONF_NAME: "Hall",
        CONF_URL: _url(receiver.port, userinfo="admin:p%40ss%3Aw%2Frd%20%231@"),
    }
    parsed = parse_rtsp_url(entry.data[CONF_URL])
    assert (parsed.username, parsed.password) == ("admin", "p@ss:w/rd #1")
    assert (parsed.host, parsed.port, parsed.path) == (HOST, receiver.port, "/announce")
    assert entry.unique_id == receiver.url
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reauth_of_a_url_without_credentials(
    hass: HomeAssistant, receiver: ListenReceiver, mock_setup_entry: AsyncMock
) -> None:
    entry = _reauth_entry(hass, receiver.port, userinfo="")

    result = await _opened(entry.start_reauth_flow(hass), "reauth_confirm")
    assert _suggested(result) == {}

    result2 = await _configure(
        hass, result, {CONF_USERNAME: "viewer", CONF_PASSWORD: ""}
    )

    _assert_aborted(result2, "reauth_successful")
    # No password: the URL carries the user name alone.
    assert entry.data[CONF_URL] == _url(receiver.port, userinfo="viewer@")


@pytest.mark.usefixtures("socket_enabled")
async def test_reauth_wrong_password_then_recover(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    async with StatusServer("401 Unauthorized", options_too=True) as server:
        port = server.port
        entry = _reauth_entry(hass, port)
        result = await _opened(entry.start_reauth_flow(hass), "reauth_confirm")
        result2 = await _configure(
            hass, result, {CONF_USERNAME: "admin", CONF_PASSWORD: SECRET}
        )
    _assert_form(result2, {"base": "invalid_auth"})
    assert _suggested(result2) == {CONF_USERNAME: "admin"}
    assert SECRET not in str(result2)

    # The server is gone now.
    result3 = await _configure(
        hass, result, {CONF_USERNAME: "admin", CONF_PASSWORD: "first"}
    )
    _assert_form(result3, {"base": "cannot_connect"})
    assert "first" not in str(result3)

    # A password so long that the URL is no longer valid.
    result4 = await _configure(
        hass, result, {CONF_USERNAME: "admin", CONF_PASSWORD: "x" * 3000}
    )
    _assert_form(result4, {"base": "invalid_url"})
    assert entry.data[CONF_URL] == _url(port, userinfo="old:wrong@")
    assert mock_setup_entry.mock_calls == []

    # A server on the same port that takes the stream.
    async with ListenReceiver(port) as receiver:
        result5 = await _configure(
            hass, result, {CONF_USERNAME: "admin", CONF_PASSWORD: "right"}
        )
        _assert_aborted(result5, "reauth_successful")
        assert entry.data[CONF_URL] == _url(port, userinfo="admin:right@")
        await receiver.wait_for_session(1, timeout=5)


# ------------------------------------------------------------- one reload per change


@pytest.fixture
def count_reloads(
    hass: HomeAssistant,
) -> Generator[tuple[list[str], list[str]]]:
    """Record every reload and every setup of an entry, as (reloads, setups)."""
    reloads: list[str] = []
    setups: list[str] = []
    manager = hass.config_entries
    reload = manager.async_reload
    setup_entry = integration.async_setup_entry

    async def counting_reload(entry_id: str) -> bool:
        reloads.append(entry_id)
        return await reload(entry_id)

    async def counting_setup(hass: HomeAssistant, entry: Any) -> bool:
        setups.append(entry.entry_id)
        return await setup_entry(hass, entry)

    # Long back-off: the stream of the old URL does not retry during a test.
    with (
        patch.object(manager, "async_reload", counting_reload),
        patch.object(integration, "async_setup_entry", counting_setup),
        patch.object(integration, "SUPERVISION", Supervision(backoff_initial=60)),
    ):
        yield reloads, setups


async def _loaded_entry(hass: HomeAssistant, url: str) -> MockConfigEntry:
    entry = _add_entry(hass, url)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def _settle(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    """Let every scheduled reload run (a second one would come right after)."""
    for _ in range(3):
        await hass.async_block_till_done()
        await asyncio.sleep(0.1)
    assert entry.state is ConfigEntryState.LOADED


async def _unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


Change = Callable[[HomeAssistant, MockConfigEntry, ListenReceiver], Awaitable[None]]


async def _reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, receiver: ListenReceiver
) -> None:
    result = await _opened(entry.start_reconfigure_flow(hass), "reconfigure")
    result = await _configure(hass, result, {CONF_URL: receiver.url})
    assert result["reason"] == "reconfigure_successful"


async def _reauthenticate(
    hass: HomeAssistant, entry: MockConfigEntry, receiver: ListenReceiver
) -> None:
    result = await _opened(entry.start_reauth_flow(hass), "reauth_confirm")
    result = await _configure(
        hass, result, {CONF_USERNAME: "admin", CONF_PASSWORD: "right"}
    )
    assert result["reason"] == "reauth_successful"


async def _change_options(
    hass: HomeAssistant, entry: MockConfigEntry, receiver: ListenReceiver
) -> None:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    defaults = _schema(result)({})
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], defaults | {opt.SAMPLE_RATE.key: "48000"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "change",
    [_reconfigure, _reauthenticate, _change_options],
    ids=["reconfigure", "reauth", "options"],
)
async def test_a_change_reloads_the_entry_once(
    hass: HomeAssistant,
    count_reloads: tuple[list[str], list[str]],
    change: Change,
) -> None:
    reloads, setups = count_reloads
    # The entry starts on a port where nothing listens yet (it retries later)…
    port = free_port()
    entry = await _loaded_entry(hass, _url(port, userinfo="old:wrong@"))
    assert setups == [entry.entry_id]
    old_stream = entry.runtime_data.stream
    # Its first attempt is over: it does not take the server that appears.
    await until(
        lambda: old_stream.publisher.state is PublisherState.BACKOFF, 10, "back-off"
    )
    # …then a server appears there, which the changed entry publishes to.
    async with ListenReceiver(port) as receiver:
        await change(hass, entry, receiver)
        await _settle(hass, entry)

        assert reloads == [entry.entry_id]
        assert setups == [entry.entry_id] * 2
        assert entry.runtime_data.stream is not old_stream
        await wait_available(hass, STREAM)
        await _unload(hass, entry)


async def test_saving_unchanged_options_does_not_reload(
    hass: HomeAssistant, count_reloads: tuple[list[str], list[str]]
) -> None:
    reloads, setups = count_reloads
    entry = await _loaded_entry(hass, _url(free_port()))
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _schema(result)({})
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    # The defaults are now saved: a change of the stored options, same stream.
    await _settle(hass, entry)
    first = len(reloads)

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _schema(result)({})
    )
    await _settle(hass, entry)

    assert len(reloads) == first
    assert len(setups) == 1 + first
    await _unload(hass, entry)


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("url", "username", "password", "expected"),
    [
        ("rtsp://h/a", "u", "p", "rtsp://u:p@h/a"),
        ("rtsp://old:pw@h:8554/a?x=1", "u", "p", "rtsp://u:p@h:8554/a?x=1"),
        ("RTSPS://OLD@Host/a", "new", "", "rtsps://new@host/a"),
        ("rtsp://[::1]:8554/a", "ü", "p w", "rtsp://%C3%BC:p%20w@[::1]:8554/a"),
        ("rtsp://h/a", "a@b", "c/d?e#f", "rtsp://a%40b:c%2Fd%3Fe%23f@h/a"),
    ],
)
def test_url_with_credentials(
    url: str, username: str, password: str, expected: str
) -> None:
    rebuilt = url_with_credentials(url, username, password)
    assert rebuilt == expected
    parsed = parse_rtsp_url(rebuilt)
    assert parsed.username == username
    assert parsed.password == (password or None)


async def test_options_flow_saves_announcement_defaults(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, tmp_path: Path
) -> None:
    hass.config.allowlist_external_dirs.add(str(tmp_path))
    sound = tmp_path / "ding.flac"
    sound.write_bytes(b"fLaC")
    entry, result = await _options_form(hass)

    # A sound Home Assistant may not read is refused, and the form recovers.
    refused = await hass.config_entries.options.async_configure(
        result["flow_id"], {opt.PREANNOUNCE_SOUND.key: "/etc/ding.flac"}
    )
    _assert_form(refused, {opt.PREANNOUNCE_SOUND.key: "invalid_sound"})

    saved = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            opt.PREANNOUNCE.key: False,
            opt.PREANNOUNCE_SOUND.key: f" {sound} ",
            opt.LEAD_IN.key: 0.5,
            opt.GAIN_DB.key: -12.0,
            opt.REPEAT.key: 3.0,
        },
    )
    await hass.async_block_till_done()
    assert saved["type"] is FlowResultType.CREATE_ENTRY
    assert {key: entry.options[key] for key in ANNOUNCE_DEFAULTS} == {
        opt.PREANNOUNCE.key: False,
        opt.PREANNOUNCE_SOUND.key: str(sound),
        opt.LEAD_IN.key: 0.5,
        opt.GAIN_DB.key: -12.0,
        opt.REPEAT.key: 3,
    }
    assert type(entry.options[opt.REPEAT.key]) is int
