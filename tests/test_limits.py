"""Time limits: a source that never answers, and announcements too old to play."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.rtsp_announcer.announce import Announcer

from .audio.test_decoder import wav_bytes
from .common import add_entry, announce, ffmpeg_children, wait_available
from .helpers.analysis import tone_segments
from .helpers.http import HttpServer, Reply
from .helpers.rtsp import ListenReceiver

ENTITY = "media_player.hall"
RATE = 24000


@pytest.fixture
async def receiver() -> AsyncGenerator[ListenReceiver]:
    async with ListenReceiver(rate=RATE) as running:
        yield running
    assert ffmpeg_children() == []


def tone_file(tmp_path: Path, name: str, seconds: float, freq: int) -> str:
    path = tmp_path / name
    path.write_bytes(wav_bytes(seconds, rate=RATE, channels=1, freq=freq))
    return str(path)


@pytest.fixture
def options() -> dict[str, Any]:
    """Options of the stream `entry` sets up; a test parametrizes its own."""
    return {}


# For tests whose announcements expire after a second in the queue.
QUEUE_AGE_1S = pytest.mark.parametrize(
    "options", [{"max_queue_age": 1.0}], ids=["max_queue_age=1"]
)


@pytest.fixture
async def entry(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    tmp_path: Path,
    options: dict[str, Any],
) -> AsyncGenerator[MockConfigEntry]:
    """A stream to `receiver` at RATE, running, which may play files of `tmp_path`."""
    entry = add_entry(hass, receiver.url, sample_rate=RATE, **options)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_available(hass, ENTITY)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    yield entry
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.usefixtures("entry")
async def test_a_source_past_its_limit_fails_and_the_next_one_plays(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    server: HttpServer,
    events: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    hass.config.allowlist_external_urls = {server.url("/")}
    # Headers, then nothing: the body never comes.
    stuck = server.route("/stuck.wav", Reply(body=b"x" * 100_000, send_first=0))
    second = tone_file(tmp_path, "second.wav", 0.6, 500)
    loop = asyncio.get_running_loop()
    started = loop.time()
    queued = asyncio.ensure_future(announce(hass, media_id=second))
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, media_id=stuck, timeout=2, priority="high")
    assert loop.time() - started < 8
    assert err.value.translation_key == "announcement_failed"
    response = await asyncio.wait_for(queued, 15)
    assert response[ENTITY]["state"] == "finished"
    heard = receiver.samples()
    assert tone_segments(heard, RATE, 500)
    assert "failed" in [event["type"] for event in events]


@QUEUE_AGE_1S
@pytest.mark.usefixtures("entry")
async def test_an_announcement_too_old_to_play_expires(
    hass: HomeAssistant, events: list[dict[str, Any]], tmp_path: Path
) -> None:
    long = tone_file(tmp_path, "long.wav", 2.5, 700)
    short = tone_file(tmp_path, "short.wav", 0.3, 500)
    await announce(hass, media_id=long, wait=False)
    response = await announce(hass, media_id=short)
    assert response[ENTITY]["state"] == "expired"
    assert [event["type"] for event in events][-1] == "expired"


async def test_a_chime_from_a_media_id_is_decoded_once_within_the_bound(
    hass: HomeAssistant, entry: MockConfigEntry, tmp_path: Path
) -> None:
    chime = tone_file(tmp_path, "ding.wav", 0.2, 880)
    huge = tone_file(tmp_path, "huge.wav", 1.0, 660)
    cache = entry.runtime_data.speech.cache
    short = tone_file(tmp_path, "short.wav", 0.1, 500)
    for _ in range(2):
        await announce(
            hass, media_id=short, preannounce=True, preannounce_media_id=chime
        )
    assert cache.hits >= 1
    held = cache.size_bytes
    assert 0 < held <= cache.max_entry_bytes
    # A "chime" larger than one entry may be is played but not kept.
    with patch.object(type(cache), "max_entry_bytes", RATE * 2 // 2):
        response = await announce(
            hass, media_id=short, preannounce=True, preannounce_media_id=huge
        )
    assert response[ENTITY]["state"] == "finished"
    assert cache.size_bytes == held


@QUEUE_AGE_1S
@pytest.mark.usefixtures("entry")
async def test_waiting_is_bounded_even_when_a_part_never_ends(
    hass: HomeAssistant,
) -> None:
    async def stuck(self: Announcer, *_args: Any, **_kwargs: Any) -> Any:
        async def part(_item: Any) -> bool:
            await asyncio.Event().wait()
            return True

        return part

    loop = asyncio.get_running_loop()
    started = loop.time()
    with (
        patch.object(Announcer, "_message_part", stuck),
        pytest.raises(HomeAssistantError) as err,
    ):
        await announce(hass, message="never", timeout=1)
    assert err.value.translation_key == "announcement_timeout"
    assert loop.time() - started < 5


@pytest.mark.usefixtures("entry")
async def test_media_that_plays_for_hours_is_cut_at_the_limit(
    hass: HomeAssistant,
    receiver: ListenReceiver,
    events: list[dict[str, Any]],
    tmp_path: Path,
) -> None:
    """Two hours of tone end after the call's `timeout`, with a failed outcome."""
    hours = tmp_path / "hours.flac"
    process = await asyncio.create_subprocess_exec(
        "ffmpeg", "-v", "error", "-f", "lavfi",
        "-i", "sine=frequency=700:sample_rate=8000:duration=7200",
        "-c:a", "flac", "-compression_level", "0", str(hours),
    )  # fmt: skip
    assert await process.wait() == 0
    after = tone_file(tmp_path, "after.wav", 0.4, 500)
    with pytest.raises(HomeAssistantError) as err:
        await announce(hass, media_id=str(hours), timeout=1.5)
    assert err.value.translation_key == "announcement_failed"
    assert "longer than 1.5 s" in str(err.value.translation_placeholders)
    response = await announce(hass, media_id=after)
    assert response[ENTITY]["state"] == "finished"
    await receiver.wait_for_samples(receiver.total_samples + RATE // 2, timeout=5)
    heard = receiver.samples()
    long = tone_segments(heard, RATE, 700, max_gap_ms=40)
    assert len(long) == 1
    played = long[0][1] - long[0][0]
    assert 1.3 <= played <= 1.7, played
    assert tone_segments(heard, RATE, 500)
    outcome = [
        e for e in events if e["announcement_id"] != response[ENTITY]["announcement_id"]
    ]
    assert [e["type"] for e in outcome] == ["started", "failed"]
    assert "longer than 1.5 s" in outcome[-1]["error"]
