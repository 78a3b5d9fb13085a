"""The call-number screen's options: the flow's screen step and what it stores."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any
from unittest.mock import AsyncMock

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.audio.models import VideoSettings
from custom_components.rtsp_announcer.audio.video import ScreenStyle
from custom_components.rtsp_announcer.const import CONF_NAME, CONF_URL, DOMAIN
from custom_components.rtsp_announcer.screen import (
    ScreenBackground,
    screen_style,
    video_settings,
)

URL = "rtsp://127.0.0.1:554/announce"


def _entry(hass: HomeAssistant, **options: Any) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Hall",
        unique_id=URL,
        data={CONF_NAME: "Hall", CONF_URL: URL},
        options=options,
    )
    entry.add_to_hass(hass)
    return entry


def _defaults(result: Mapping[str, Any]) -> dict[str, Any]:
    schema = result["data_schema"]
    assert schema is not None
    return dict(schema({}))


async def _to_screen_step(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    defaults = _defaults(result)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], defaults | {opt.VIDEO.key: True}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "screen"
    return str(result["flow_id"])


async def test_screen_step_stores_typed_options(
    hass: HomeAssistant, mock_setup_entry: AsyncMock, tmp_path: Path
) -> None:
    picture = tmp_path / "background.png"
    Image.new("RGB", (32, 18), (0, 60, 120)).save(picture)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    entry = _entry(hass)
    flow_id = await _to_screen_step(hass, entry)

    result = await hass.config_entries.options.async_configure(
        flow_id,
        {
            opt.VIDEO_RESOLUTION.key: "640x360",
            opt.VIDEO_FPS.key: 4.0,
            opt.VIDEO_BACKGROUND.key: [0, 0, 80],
            opt.VIDEO_BACKGROUND_IMAGE.key: str(picture),
            opt.VIDEO_BACKGROUND_ENTITY.key: "image.board",
            opt.VIDEO_TEXT_COLOR.key: [255, 255, 0],
            opt.VIDEO_TEXT_SIZE.key: 40.0,
            opt.VIDEO_HISTORY.key: 5.0,
            opt.VIDEO_READER_URL.key: "rtsp://192.168.1.10:8554/announce",
        },
    )
    await hass.async_block_till_done()

    assert result["type"] is FlowResultType.CREATE_ENTRY
    options = entry.options
    assert options[opt.VIDEO.key] is True
    assert options[opt.VIDEO_FPS.key] == 4
    assert type(options[opt.VIDEO_FPS.key]) is int
    assert options[opt.VIDEO_HISTORY.key] == 5
    assert options[opt.VIDEO_BACKGROUND_IMAGE.key] == str(picture)
    assert options[opt.VIDEO_BACKGROUND_ENTITY.key] == "image.board"
    assert video_settings(options) == VideoSettings(width=640, height=360, fps=4)
    assert screen_style(options) == ScreenStyle(
        background=(0, 0, 80), text_color=(255, 255, 0), text_size=40, history=5
    )


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        (opt.VIDEO_BACKGROUND_IMAGE.key, "/etc/passwd", "invalid_background_image"),
        (opt.VIDEO_BACKGROUND_IMAGE.key, "not a picture", "invalid_background_image"),
        (opt.VIDEO_READER_URL.key, "http://host/x", "invalid_reader_url"),
    ],
)
async def test_screen_step_refuses_bad_values(
    hass: HomeAssistant,
    mock_setup_entry: AsyncMock,
    tmp_path: Path,
    field: str,
    value: str,
    error: str,
) -> None:
    not_a_picture = tmp_path / "not a picture"
    not_a_picture.write_text("text")
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    if value == "not a picture":
        value = str(not_a_picture)
    entry = _entry(hass)
    flow_id = await _to_screen_step(hass, entry)
    result = await hass.config_entries.options.async_configure(
        flow_id, {opt.VIDEO_RESOLUTION.key: "640x360", field: value}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {field: error}
    assert opt.VIDEO.key not in entry.options
    hass.config_entries.options.async_abort(flow_id)


async def test_screen_off_keeps_the_options_audio_only(
    hass: HomeAssistant, mock_setup_entry: AsyncMock
) -> None:
    entry = _entry(hass, **{opt.VIDEO.key: True, opt.VIDEO_FPS.key: 3})
    result = await hass.config_entries.options.async_init(entry.entry_id)
    defaults = _defaults(result)
    assert defaults[opt.VIDEO.key] is True
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], defaults | {opt.VIDEO.key: False}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert not any(key.startswith("video") for key in entry.options)
    assert video_settings(entry.options) is None


def test_settings_fall_back_on_bad_stored_values() -> None:
    options = {
        opt.VIDEO.key: True,
        opt.VIDEO_RESOLUTION.key: "800x600",
        opt.VIDEO_FPS.key: "fast",
        opt.VIDEO_BACKGROUND.key: "blue",
        opt.VIDEO_TEXT_COLOR.key: [300, -5, "x"],
        opt.VIDEO_HISTORY.key: 99,
    }
    assert video_settings(options) == VideoSettings(width=1280, height=720, fps=5)
    assert screen_style(options) == ScreenStyle(history=10)


class _Screen:
    """Records the backgrounds set (stands for the video track)."""

    def __init__(self) -> None:
        self.backgrounds: list[bytes | None] = []

    async def set_background(self, data: bytes | None) -> None:
        if data == b"bad":
            msg = "not a picture"
            raise OSError(msg)
        self.backgrounds.append(data)


async def test_background_falls_back_and_says_why(
    hass: HomeAssistant, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside.png"
    outside.write_bytes(b"png")
    screen = _Screen()
    background = ScreenBackground(
        hass,
        screen,  # type: ignore[arg-type]
        {
            opt.VIDEO_BACKGROUND_IMAGE.key: str(outside),
            opt.VIDEO_BACKGROUND_ENTITY.key: "image.missing",
        },
    )
    await background.async_start()
    # Not an allowed folder: the colour, and a warning; the missing entity
    # gives no picture either.
    assert "is not in a folder Home Assistant may read" in caplog.text
    assert screen.backgrounds == [None, None]
    await background.async_stop()

    hass.config.allowlist_external_dirs = {str(tmp_path)}
    for name, content in (("gone.png", None), ("bad.png", b"bad")):
        path = tmp_path / name
        if content is not None:
            path.write_bytes(content)
        background = ScreenBackground(
            hass,
            screen,  # type: ignore[arg-type]
            {opt.VIDEO_BACKGROUND_IMAGE.key: str(path)},
        )
        await background.async_start()
        await background.async_stop()
    assert "cannot be read" in caplog.text
    assert "is not a picture" in caplog.text
