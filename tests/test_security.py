"""Security: credentials stay secret, the PCM socket is private, files stay closed.

The password of the stream's URL must not show up anywhere a user or a bug
report can see it: the log (at DEBUG, ffmpeg's stderr included), diagnostics,
entity attributes, the device, repair issues and the reauthentication form.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch
from urllib.parse import quote

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer import diagnostics
from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.publisher import FailureKind
from custom_components.rtsp_announcer.const import DOMAIN

from .common import add_entry, ffmpeg_children, start_stream, unload, wait_available
from .helpers.rtsp import HOST, ListenReceiver
from .helpers.rtsp.peers import StatusServer
from .helpers.waiting import until
from .test_faults import issues_of, reauth_flows

ENTITY = "media_player.hall"
RATE = 24000
USER = "announcer"
PASSWORD = "S3cr3tP4ss"  # noqa: S105 - the secret that must never be shown
# Every form in which a program could print the password.
FORMS = (
    PASSWORD,
    quote(PASSWORD, safe=""),
    base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode(),
)


def leaks(text: str) -> list[str]:
    return [form for form in FORMS if form in text]


def everything_visible(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    """The states, device and issues of the entry, as one text."""
    parts: list[Any] = [
        state.as_dict()
        for state in hass.states.async_all()
        if state.entity_id.endswith(("hall", "hall_local_voice", "hall_speaker"))
    ]
    # Looked up through the entry: async_get_device(identifiers=...) is refused
    # from 2026 on (identifiers are unique per config entry only), and
    # async_get_device_by_identifier does not exist in 2025.4.
    (device,) = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert device.identifiers == {(DOMAIN, entry.entry_id)}
    parts.append(device.dict_repr)
    parts.extend(
        {"key": issue.translation_key, "placeholders": issue.translation_placeholders}
        for (domain, _), issue in ir.async_get(hass).issues.items()
        if domain == DOMAIN
    )
    parts.extend(
        flow.get("description_placeholders")
        for flow in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    )
    return json.dumps(parts, default=str)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Capture everything, the integration's loggers at DEBUG."""
    caplog.set_level(logging.DEBUG)
    logging.getLogger("custom_components.rtsp_announcer").setLevel(logging.DEBUG)
    return caplog


async def test_password_never_shown_while_publishing_and_failing(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    url = receiver.url.replace("rtsp://", f"rtsp://{USER}:{PASSWORD}@")
    entry = await start_stream(hass, receiver, url=url)
    stream = entry.runtime_data.stream
    publisher = stream.publisher
    # ffmpeg did print the URL (that is what is redacted).
    assert any("***:***@" in line for line in publisher.stderr_tail)

    # A failure: the server goes away, ffmpeg complains and is restarted.
    await receiver.stop()
    await until(lambda: publisher.failure is not FailureKind.NONE, 5, "a failure")
    assert publisher.last_error is not None
    await receiver.start()
    await wait_available(hass, ENTITY, timeout=15)

    diag = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
    assert "***:***@" in json.dumps(diag)
    assert leaks(json.dumps(diag)) == []
    assert leaks(everything_visible(hass, entry)) == []
    assert "ffmpeg rtsp://***:***@" in debug_logs.text
    assert leaks(debug_logs.text) == []
    await unload(hass, entry)


async def test_diagnostics_say_the_password_is_on_ffmpegs_command_line(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    # ffmpeg's RTSP output reads credentials only from its URL: any local user
    # who can list processes sees them. The diagnostics say so, plainly.
    url = receiver.url.replace("rtsp://", f"rtsp://{USER}:{PASSWORD}@")
    entry = add_entry(hass, url)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    (publisher,) = ffmpeg_children()
    assert any(PASSWORD in arg for arg in publisher.cmdline())
    diag = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
    assert diag["publisher"]["credentials_on_command_line"] is True
    assert "publish-only" in diag["publisher"]["credentials_note"]
    assert leaks(json.dumps(diag)) == []
    assert await hass.config_entries.async_unload(entry.entry_id)

    plain = add_entry(hass, receiver.url, name="Plain")
    assert await hass.config_entries.async_setup(plain.entry_id)
    await wait_available(hass, "media_player.plain")
    diag = await diagnostics.async_get_config_entry_diagnostics(hass, plain)
    assert diag["publisher"]["credentials_on_command_line"] is False
    await unload(hass, plain)


@pytest.mark.usefixtures("socket_enabled")
async def test_password_never_shown_when_refused(
    hass: HomeAssistant, debug_logs: pytest.LogCaptureFixture
) -> None:
    server = StatusServer("401 Unauthorized", options_too=True)
    await server.start()
    try:
        entry = add_entry(hass, server.url(f"{USER}:{PASSWORD}@"))
        assert await hass.config_entries.async_setup(entry.entry_id)
        await until(lambda: bool(reauth_flows(hass)), 15, "the reauth flow")
        assert issues_of(hass)
        diag = await diagnostics.async_get_config_entry_diagnostics(hass, entry)
        assert diag["publisher"]["failure"] == "unauthorized"
        assert "401" in diag["publisher"]["last_error"]
        assert leaks(json.dumps(diag)) == []
        visible = everything_visible(hass, entry)
        assert f"rtsp://***:***@{HOST}:{server.port}/announce" in visible
        assert leaks(visible) == []
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await server.stop()
    assert leaks(debug_logs.text) == []
    assert ffmpeg_children() == []


@pytest.mark.parametrize(
    ("transport", "is_kind"), [("socket", stat.S_ISSOCK), ("fifo", stat.S_ISFIFO)]
)
async def test_the_pcm_socket_is_private(
    hass: HomeAssistant, transport: str, is_kind: Callable[[int], bool]
) -> None:
    entry = add_entry(
        hass,
        f"rtsp://{USER}:{PASSWORD}@{HOST}:9/announce",
        **{opt.PCM_TRANSPORT.key: transport},
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    feed = entry.runtime_data.stream.feed
    assert feed is not None
    path = feed.path
    directory = path.parent.stat()
    # No other local user can connect and inject audio into the stream.
    assert stat.S_IMODE(directory.st_mode) == 0o700
    assert directory.st_uid == os.getuid()
    assert is_kind(path.stat().st_mode)
    if transport == "fifo":
        # The FIFO itself is the owner's alone too.
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert leaks(str(path)) == []
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not path.parent.exists()


@pytest.fixture
def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    media = tmp_path / "media"
    media.mkdir()
    (media / "escape.wav").symlink_to("/etc/shadow")
    hass.config.allowlist_external_dirs = {str(media)}
    return media


@pytest.mark.parametrize(
    "media_id",
    [
        "/etc/shadow",
        "{media}/../../../../etc/shadow",
        "{media}/escape.wav",
        "../../etc/shadow",
        "file:///etc/shadow",
        "/proc/self/environ",
        "concat:/etc/shadow",
        "subfile,,start,0,end,0,,:/etc/shadow",
        "media-source://media_source/local/../../etc/shadow",
    ],
)
@pytest.mark.parametrize("field", ["media_id", "preannounce_media_id"])
async def test_files_outside_the_allowlist_are_refused(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    media_dir: Path,
    media_id: str,
    field: str,
) -> None:
    # A stream that publishes: Home Assistant passes over an unavailable one
    # before the action could look at the file.
    entry = add_entry(hass, receiver.url)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    data = {
        "entity_id": ENTITY,
        "message": "Hello.",
        "preannounce": True,
        # Queued for later: what is checked is the plan, not the stream.
        "wait": False,
        field: media_id.format(media=media_dir),
    }
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "announce", data, blocking=True)
    assert err.value.translation_key in {"media_not_allowed", "decode_failed"}
    assert len(entry.runtime_data.stream.queue) == 0
    await asyncio.sleep(0)
    await unload(hass, entry)


async def test_the_reconfigure_form_never_sends_the_stored_password(
    hass: HomeAssistant, receiver: ListenReceiver
) -> None:
    url = receiver.url.replace("rtsp://", f"rtsp://{USER}:{PASSWORD}@")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Hall",
        unique_id=receiver.url,
        data={"name": "Hall", "url": url},
    )
    entry.add_to_hass(hass)
    with patch("custom_components.rtsp_announcer.async_setup_entry", return_value=True):
        result = await entry.start_reconfigure_flow(hass)
        assert leaks(str(result["data_schema"].schema)) == []
        (key,) = result["data_schema"].schema
        shown = key.description["suggested_value"]
        assert leaks(shown) == []
        assert shown.startswith(f"rtsp://{USER}:")
        assert shown.endswith(f"@{receiver.url.removeprefix('rtsp://')}")

        # Elsewhere, the masked password is not sent: the form asks for it.
        elsewhere = shown.replace(str(receiver.port), "9")
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"url": elsewhere}
        )
        assert result["type"] == "form"
        assert result["errors"] == {"url": "password_masked"}
        schema = result["data_schema"]
        assert schema is not None
        (key,) = schema.schema
        assert leaks(key.description["suggested_value"]) == []

        # Sent back unchanged, the masked URL keeps the stored password.
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {"url": shown}
        )
        await hass.async_block_till_done()
    assert result["reason"] == "reconfigure_successful"
    assert entry.data["url"] == url


async def test_the_reauth_form_never_sends_the_stored_password(
    hass: HomeAssistant,
) -> None:
    url = f"rtsp://{USER}:{PASSWORD}@{HOST}:9/announce"
    entry = MockConfigEntry(
        domain=DOMAIN, title="Hall", unique_id=url, data={"name": "Hall", "url": url}
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert leaks(str(result["data_schema"].schema)) == []
    assert leaks(str(result["description_placeholders"])) == []
    hass.config_entries.flow.async_abort(result["flow_id"])
