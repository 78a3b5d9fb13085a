"""The call-number screen's camera: there with the screen only, its picture, its source.

Against a real RTSP server (ffmpeg's listener); the picture is fetched through
Home Assistant's camera proxy and read back with tesseract.
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from homeassistant.components import camera
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
from PIL import Image
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.rtsp_announcer.audio import options as opt
from custom_components.rtsp_announcer.const import DOMAIN

from .common import (
    HALL,
    add_entry,
    ffmpeg_children,
    state_of,
    unload,
    wait_available,
    wait_unavailable,
)
from .helpers.rtsp import ListenReceiver
from .helpers.waiting import until
from .screen_reader import ocr

CAMERA = "camera.hall_screen"
# Nothing listens on the discard port: the stream is down.
DEAD_URL = "rtsp://announcer:secret@127.0.0.1:9/announce"
READER_URL = "rtsp://viewer:pass@10.0.0.2:8554/announce"
SCREEN: dict[str, Any] = {
    opt.VIDEO.key: True,
    opt.VIDEO_RESOLUTION.key: "640x360",
    opt.VIDEO_FPS.key: 5,
    opt.VIDEO_READER_URL.key: READER_URL,
}


def _defaults(result: Mapping[str, Any]) -> dict[str, Any]:
    schema = result["data_schema"]
    assert schema is not None
    return dict(schema({}))


async def _set_screen(hass: HomeAssistant, entry: MockConfigEntry, on: bool) -> None:
    """Turn the screen on or off in the options flow (which reloads the entry)."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], _defaults(result) | {opt.VIDEO.key: on}
    )
    if on:
        assert result["step_id"] == "screen"
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], _defaults(result)
        )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


async def test_the_camera_comes_and_goes_with_the_screen(hass: HomeAssistant) -> None:
    registry = er.async_get(hass)
    entry = add_entry(hass, DEAD_URL)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert hass.states.async_entity_ids("camera") == []

    await _set_screen(hass, entry, on=True)
    # The stream is down, and its camera with it.
    assert state_of(hass, CAMERA).state == STATE_UNAVAILABLE
    entity = registry.async_get(CAMERA)
    assert entity is not None
    assert entity.unique_id == f"{entry.entry_id}_screen"
    assert entity.translation_key == "screen"
    stream_player = registry.async_get(HALL)
    assert stream_player is not None
    assert entity.device_id == stream_player.device_id
    # Readers are not given the publisher's credentials.
    source = await camera.async_get_stream_source(hass, CAMERA)
    assert source == "rtsp://127.0.0.1:9/announce"
    assert state_of(hass, CAMERA).attributes["supported_features"] == (
        camera.CameraEntityFeature.STREAM
    )

    await _set_screen(hass, entry, on=False)
    # Gone, registry entry and all: not left behind as "no longer provided".
    assert registry.async_get(CAMERA) is None
    assert hass.states.get(CAMERA) is None
    assert state_of(hass, HALL).state == STATE_UNAVAILABLE
    await unload(hass, entry)


@pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed"
)
async def test_the_picture_shows_the_screen(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, tmp_path: Path
) -> None:
    async with ListenReceiver() as receiver:
        entry = add_entry(hass, receiver.url, **SCREEN)
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_available(hass, CAMERA)
        assert await camera.async_get_stream_source(hass, CAMERA) == READER_URL

        screen = entry.runtime_data.stream.screen
        assert screen is not None
        await hass.services.async_call(
            DOMAIN, "display", {"entity_id": HALL, "text": "C3"}, blocking=True
        )
        # On the frames written a moment later.
        written = screen.frames_written
        await until(lambda: screen.frames_written >= written + 3, 5, "frames")

        client = await hass_client()
        response = await client.get(f"/api/camera_proxy/{CAMERA}")
        assert response.status == 200
        assert response.content_type == "image/jpeg"
        picture = tmp_path / "screen.jpg"
        picture.write_bytes(await response.read())
        with Image.open(picture) as image:
            assert image.format == "JPEG"
            assert image.size == (640, 360)
        assert "C3" in await ocr(picture)

        # Smaller when asked, proportions kept.
        response = await client.get(
            f"/api/camera_proxy/{CAMERA}", params={"width": 320, "height": 240}
        )
        with Image.open(io.BytesIO(await response.read())) as image:
            assert image.size == (320, 180)

        # Cheap: the screen's own drawing, encoded once per picture and size.
        platform_entity = hass.data["camera"].get_entity(CAMERA)
        started = time.perf_counter()
        await platform_entity.async_camera_image(width=480, height=270)
        first = time.perf_counter() - started
        started = time.perf_counter()
        await platform_entity.async_camera_image(width=480, height=270)
        again = time.perf_counter() - started
        print(f"camera image {first * 1000:.1f} ms, again {again * 1000:.2f} ms")  # noqa: T201
        assert first < 0.5

        # The server goes away: so does the camera.
        await receiver.stop()
        await wait_unavailable(hass, CAMERA)
        await unload(hass, entry)
    assert ffmpeg_children() == []
