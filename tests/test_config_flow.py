"""Tests of the RTSP Announcer config, options and reconfigure flows."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any
from unittest.mock import AsyncMock, patch

import pytest
import voluptuous as vol
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
)

from custom_components.rtsp_announcer.audio.url import parse_rtsp_url
from custom_components.rtsp_announcer.config_flow import url_with_credentials
from custom_components.rtsp_announcer.const import (
    CONF_CODEC,
    CONF_FRAME_MS,
    CONF_LEAD_MS,
    CONF_NAME,
    CONF_PCM_TRANSPORT,
    CONF_RTSP_TRANSPORT,
    CONF_SAMPLE_RATE,
    CONF_URL,
    DEFAULT_CODEC,
    DEFAULT_FRAME_MS,
    DEFAULT_LEAD_MS,
    DEFAULT_PCM_TRANSPORT,
    DEFAULT_RTSP_TRANSPORT,
    DEFAULT_SAMPLE_RATE,
    DOMAIN,
)

FLOW = "custom_components.rtsp_announcer.config_flow"


@pytest.fixture
def mock_setup_entry() -> Generator[AsyncMock]:
    """Keep the integration itself (ffmpeg and all) out of the flow tests."""
    with patch(
        "custom_components.rtsp_announcer.async_setup_entry",
        new_callable=AsyncMock,
        return_value=True,
    ) as mock:
        yield mock


@pytest.fixture
async def port(socket_enabled: None) -> AsyncGenerator[int]:
    """Return the port of a TCP server on 127.0.0.1 that stands in for RTSP."""
    accepted: list[asyncio.StreamWriter] = []

    def on_connect(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


@pytest.fixture
def closed_port(socket_enabled: None) -> int:
    """Return a port on 127.0.0.1 where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        free: int = sock.getsockname()[1]
    return free


def _entry(port: int, path: str = "/announce", name: str = "Hall") -> MockConfigEntry:
    url = f"rtsp://127.0.0.1:{port}{path}"
    return MockConfigEntry(
        domain=DOMAIN,
        title=name,
        unique_id=url,
        data={CONF_NAME: name, CONF_URL: url},
    )


def _schema(result: Mapping[str, Any]) -> vol.Schema:
    schema = result["data_schema"]
    assert isinstance(schema, vol.Schema)
    return schema


async def _start_user_flow(hass: HomeAssistant) -> dict[str, Any]:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_USER}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return dict(result)


async def test_user_flow_creates_entry(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)
    url = f"rtsp://Admin:s3cr%40t@127.0.0.1:{port}/announce"

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "Front door", CONF_URL: f"  {url} "}
    )
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.CREATE_ENTRY
    assert result2["title"] == "Front door"
    assert result2["data"] == {CONF_NAME: "Front door", CONF_URL: url}
    entry = result2["result"]
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/announce"
    assert "s3cr" not in entry.unique_id
    assert "Admin" not in entry.unique_id
    assert entry.options == {}
    assert len(mock_setup_entry.mock_calls) == 1


async def test_user_flow_default_name(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)
    assert _schema(result)({CONF_URL: "x"})[CONF_NAME] == "Announcer"

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_NAME: "   ", CONF_URL: f"rtsp://127.0.0.1:{port}/a"},
    )

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
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock, bad_url: str
) -> None:
    result = await _start_user_flow(hass)

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "Hall", CONF_URL: bad_url}
    )

    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {CONF_URL: "invalid_url"}
    # The form keeps what was typed so it can be corrected.
    suggested = {
        str(key): key.description["suggested_value"]
        for key in _schema(result2).schema
        if key.description
    }
    assert suggested == {CONF_NAME: "Hall", CONF_URL: bad_url}

    result3 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "Hall", CONF_URL: f"rtsp://127.0.0.1:{port}/a"}
    )
    assert result3["type"] is FlowResultType.CREATE_ENTRY
    assert result3["result"].unique_id == f"rtsp://127.0.0.1:{port}/a"


async def test_user_cannot_connect_then_recover(
    hass: HomeAssistant, closed_port: int, port: int, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"],
        {CONF_NAME: "Hall", CONF_URL: f"rtsp://127.0.0.1:{closed_port}/a"},
    )

    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {"base": "cannot_connect"}

    result3 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "Hall", CONF_URL: f"rtsp://127.0.0.1:{port}/a"}
    )
    assert result3["type"] is FlowResultType.CREATE_ENTRY


async def _never_connects(*_: object) -> tuple[object, object]:
    await asyncio.Event().wait()
    raise AssertionError  # pragma: no cover


async def test_user_connect_timeout(hass: HomeAssistant) -> None:
    result = await _start_user_flow(hass)

    with (
        patch(f"{FLOW}.CONNECT_TIMEOUT", 0.01),
        patch(f"{FLOW}.asyncio.open_connection", _never_connects),
    ):
        result2 = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_NAME: "Hall", CONF_URL: "rtsp://10.0.0.1/a"}
        )

    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {"base": "cannot_connect"}


async def test_user_unexpected_error(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    result = await _start_user_flow(hass)

    with (
        caplog.at_level(logging.ERROR),
        patch(f"{FLOW}.asyncio.open_connection", side_effect=RuntimeError("boom")),
    ):
        result2 = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_NAME: "Hall", CONF_URL: "rtsp://user:hunter2@10.0.0.1/a"},
        )

    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {"base": "unknown"}
    assert "rtsp://***:***@10.0.0.1/a" in caplog.text
    assert "hunter2" not in caplog.text


async def test_user_connection_reset_on_close_is_ignored(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    result = await _start_user_flow(hass)

    with patch.object(
        asyncio.StreamWriter, "wait_closed", side_effect=ConnectionResetError
    ):
        result2 = await hass.config_entries.flow.async_configure(
            result["flow_id"],
            {CONF_NAME: "Hall", CONF_URL: f"rtsp://127.0.0.1:{port}/a"},
        )

    assert result2["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:{port}/announce",
        "rtsp://user:pass@127.0.0.1:{port}/announce",
        "RTSP://other:secret@127.0.0.1:{port}/announce",
    ],
)
async def test_user_duplicate_aborts(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock, url: str
) -> None:
    _entry(port).add_to_hass(hass)
    result = await _start_user_flow(hass)

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_NAME: "Again", CONF_URL: url.format(port=port)}
    )

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "already_configured"
    assert len(hass.config_entries.async_entries(DOMAIN)) == 1


async def test_options_flow_defaults(hass: HomeAssistant) -> None:
    entry = _entry(554)
    entry.add_to_hass(hass)

    result = await hass.config_entries.options.async_init(entry.entry_id)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "init"
    assert _schema(result)({}) == {
        CONF_CODEC: DEFAULT_CODEC,
        CONF_PCM_TRANSPORT: DEFAULT_PCM_TRANSPORT,
        CONF_SAMPLE_RATE: str(DEFAULT_SAMPLE_RATE),
        CONF_RTSP_TRANSPORT: DEFAULT_RTSP_TRANSPORT,
        CONF_FRAME_MS: DEFAULT_FRAME_MS,
        CONF_LEAD_MS: DEFAULT_LEAD_MS,
    }
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_options_flow_saves_typed_values(hass: HomeAssistant) -> None:
    entry = _entry(554)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)

    result2 = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_CODEC: "pcm_mulaw",
            CONF_PCM_TRANSPORT: "pipe",
            CONF_SAMPLE_RATE: "8000",
            CONF_RTSP_TRANSPORT: "udp",
            CONF_FRAME_MS: 10.0,
            CONF_LEAD_MS: 125.0,
        },
    )

    assert result2["type"] is FlowResultType.CREATE_ENTRY
    expected = {
        CONF_CODEC: "pcm_mulaw",
        CONF_PCM_TRANSPORT: "pipe",
        CONF_SAMPLE_RATE: 8000,
        CONF_RTSP_TRANSPORT: "udp",
        CONF_FRAME_MS: 10,
        CONF_LEAD_MS: 125,
    }
    assert entry.options == expected
    assert type(entry.options[CONF_SAMPLE_RATE]) is int
    assert type(entry.options[CONF_FRAME_MS]) is int
    assert type(entry.options[CONF_LEAD_MS]) is int

    # The next options form starts from what was saved.
    result3 = await hass.config_entries.options.async_init(entry.entry_id)
    assert _schema(result3)({}) == expected | {CONF_SAMPLE_RATE: "8000"}
    hass.config_entries.options.async_abort(result3["flow_id"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_CODEC, "mp3"),
        (CONF_SAMPLE_RATE, "12345"),
        (CONF_FRAME_MS, 5),
        (CONF_LEAD_MS, 1000),
    ],
)
async def test_options_flow_rejects_out_of_range(
    hass: HomeAssistant, field: str, value: object
) -> None:
    entry = _entry(554)
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    defaults = _schema(result)({})

    with pytest.raises(InvalidData) as err:
        await hass.config_entries.options.async_configure(
            result["flow_id"], defaults | {field: value}
        )
    assert set(err.value.schema_errors) == {field}
    hass.config_entries.options.async_abort(result["flow_id"])


async def test_reconfigure_changes_url(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(port)
    entry.add_to_hass(hass)

    result = await entry.start_reconfigure_flow(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    assert result["errors"] == {}
    (url_key,) = _schema(result).schema
    assert url_key.description == {"suggested_value": entry.data[CONF_URL]}

    new_url = f"rtsp://user:pw@127.0.0.1:{port}/other"
    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f" {new_url}"}
    )
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "reconfigure_successful"
    assert entry.data == {CONF_NAME: "Hall", CONF_URL: new_url}
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/other"
    assert entry.title == "Hall"
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reconfigure_credentials_only(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(port)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)

    new_url = f"rtsp://new:creds@127.0.0.1:{port}/announce"
    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: new_url}
    )
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "reconfigure_successful"
    assert entry.data[CONF_URL] == new_url
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/announce"


async def test_reconfigure_errors_then_recover(
    hass: HomeAssistant, port: int, closed_port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(port)
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "rtsp://127.0.0.1:0/a"}
    )
    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {CONF_URL: "invalid_url"}
    (url_key,) = _schema(result2).schema
    assert url_key.description == {"suggested_value": "rtsp://127.0.0.1:0/a"}

    result3 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"rtsp://127.0.0.1:{closed_port}/a"}
    )
    assert result3["type"] is FlowResultType.FORM
    assert result3["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_URL] == f"rtsp://127.0.0.1:{port}/announce"

    result4 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"rtsp://127.0.0.1:{port}/b"}
    )
    await hass.async_block_till_done()
    assert result4["type"] is FlowResultType.ABORT
    assert result4["reason"] == "reconfigure_successful"
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/b"


async def test_reconfigure_onto_another_entry_aborts(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(port, "/one", "One")
    entry.add_to_hass(hass)
    _entry(port, "/two", "Two").add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: f"rtsp://u:p@127.0.0.1:{port}/two"}
    )

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "already_configured"
    assert entry.data[CONF_URL] == f"rtsp://127.0.0.1:{port}/one"
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/one"
    assert mock_setup_entry.mock_calls == []


def _reauth_entry(port: int, userinfo: str = "old:wrong@") -> MockConfigEntry:
    url = f"rtsp://{userinfo}127.0.0.1:{port}/announce"
    return MockConfigEntry(
        domain=DOMAIN,
        title="Hall",
        unique_id=f"rtsp://127.0.0.1:{port}/announce",
        data={CONF_NAME: "Hall", CONF_URL: url},
    )


def _suggested(result: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(key): key.description["suggested_value"]
        for key in _schema(result).schema
        if key.description and "suggested_value" in key.description
    }


async def test_reauth_replaces_the_credentials(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _reauth_entry(port)
    entry.add_to_hass(hass)

    result = await entry.start_reauth_flow(hass)

    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reauth_confirm"
    assert result["errors"] == {}
    assert result["description_placeholders"] == {
        "url": f"rtsp://***:***@127.0.0.1:{port}/announce",
        "name": "Hall",
    }
    # The user name is offered again; the password never is.
    assert _suggested(result) == {CONF_USERNAME: "old"}

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: " admin ", CONF_PASSWORD: "p@ss:w/rd #1"}
    )
    await hass.async_block_till_done()

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "reauth_successful"
    assert entry.data == {
        CONF_NAME: "Hall",
        CONF_URL: f"rtsp://admin:p%40ss%3Aw%2Frd%20%231@127.0.0.1:{port}/announce",
    }
    parsed = parse_rtsp_url(entry.data[CONF_URL])
    assert (parsed.username, parsed.password) == ("admin", "p@ss:w/rd #1")
    assert (parsed.host, parsed.port, parsed.path) == ("127.0.0.1", port, "/announce")
    assert entry.unique_id == f"rtsp://127.0.0.1:{port}/announce"
    assert len(mock_setup_entry.mock_calls) == 1


async def test_reauth_of_a_url_without_credentials(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _reauth_entry(port, userinfo="")
    entry.add_to_hass(hass)

    result = await entry.start_reauth_flow(hass)
    assert _suggested(result) == {}

    result2 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "viewer", CONF_PASSWORD: ""}
    )

    assert result2["type"] is FlowResultType.ABORT
    assert result2["reason"] == "reauth_successful"
    # No password: the URL carries the user name alone.
    assert entry.data[CONF_URL] == f"rtsp://viewer@127.0.0.1:{port}/announce"


async def test_reauth_errors_then_recover(
    hass: HomeAssistant, port: int, mock_setup_entry: AsyncMock
) -> None:
    entry = _reauth_entry(port)
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)

    with patch(f"{FLOW}.asyncio.open_connection", side_effect=OSError(111, "refused")):
        result2 = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_USERNAME: "admin", CONF_PASSWORD: "first"}
        )
    assert result2["type"] is FlowResultType.FORM
    assert result2["errors"] == {"base": "cannot_connect"}
    assert _suggested(result2) == {CONF_USERNAME: "admin"}
    assert "first" not in str(result2)

    # A password so long that the URL is no longer valid.
    result3 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "admin", CONF_PASSWORD: "x" * 3000}
    )
    assert result3["type"] is FlowResultType.FORM
    assert result3["errors"] == {"base": "invalid_url"}
    assert entry.data[CONF_URL] == f"rtsp://old:wrong@127.0.0.1:{port}/announce"
    assert mock_setup_entry.mock_calls == []

    result4 = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_USERNAME: "admin", CONF_PASSWORD: "right"}
    )
    assert result4["type"] is FlowResultType.ABORT
    assert result4["reason"] == "reauth_successful"
    assert entry.data[CONF_URL] == f"rtsp://admin:right@127.0.0.1:{port}/announce"


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
