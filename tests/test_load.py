"""1 000 announcements on 10 real streams: bounded queues, order kept, none lost."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from custom_components.rtsp_announcer.audio.playback import (
    DEFAULT_MAX_ITEMS,
    PlaybackItem,
    PlaybackQueue,
)
from custom_components.rtsp_announcer.const import DOMAIN, EVENT_ANNOUNCEMENT

from .common import add_entry, ffmpeg_children, make_tone, wait_available
from .helpers.rtsp import ListenReceiver

pytestmark = pytest.mark.timeout(240)

STREAMS = 10
CALLS = 1000


class QueueWatch:
    """Records the order in which items really enter each queue, and its peak."""

    def __init__(self) -> None:
        self.queued: dict[int, list[str]] = defaultdict(list)
        self.longest = 0
        self._add = PlaybackQueue.add

    def method(self) -> Any:
        """A replacement for PlaybackQueue.add that records, then adds."""

        def add(
            queue: PlaybackQueue, item: PlaybackItem, *, interrupt: bool = False
        ) -> None:
            self._add(queue, item, interrupt=interrupt)
            self.queued[id(queue)].append(item.id)
            self.longest = max(self.longest, len(queue))

        return add


class Played:
    """started/finished announcement ids per stream; signals when all finished."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.by_stream: dict[str, dict[str, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self.finished = 0
        self.expected = CALLS
        self.done = asyncio.Event()
        hass.bus.async_listen(EVENT_ANNOUNCEMENT, self._record)

    @callback
    def _record(self, event: Event) -> None:
        kind = event.data["type"]
        self.by_stream[event.data["entity_id"]][kind].append(
            event.data["announcement_id"]
        )
        if kind == "finished":
            self.finished += 1
            if self.finished >= self.expected:
                self.done.set()


async def test_thousand_announcements_on_ten_streams(
    hass: HomeAssistant, tmp_path: Path
) -> None:
    blip = make_tone(tmp_path / "blip.wav", freq=900, seconds=0.04)
    hass.config.allowlist_external_dirs = {str(tmp_path)}
    played = Played(hass)
    watch = QueueWatch()
    receivers = [ListenReceiver() for _ in range(STREAMS)]
    entries = []
    try:
        for index, receiver in enumerate(receivers):
            await receiver.start()
            entries.append(add_entry(hass, receiver.url, name=f"S{index}"))
            assert await hass.config_entries.async_setup(entries[-1].entry_id)
        for index in range(STREAMS):
            await wait_available(hass, f"media_player.s{index}", timeout=30)

        async def announce(entity_id: str) -> Any:
            return await hass.services.async_call(
                DOMAIN,
                "announce",
                {
                    "entity_id": entity_id,
                    "media_id": str(blip),
                    "preannounce": False,
                    "wait": False,
                },
                blocking=True,
                return_response=True,
            )

        # All calls at once: the queues fill faster than they play.
        with patch.object(PlaybackQueue, "add", watch.method()):
            results = await asyncio.gather(
                *(announce(f"media_player.s{n % STREAMS}") for n in range(CALLS)),
                return_exceptions=True,
            )
        refusals = [r for r in results if isinstance(r, BaseException)]
        assert all(
            isinstance(r, HomeAssistantError) and r.translation_key == "queue_full"
            for r in refusals
        ), refusals
        assert refusals
        assert watch.longest <= DEFAULT_MAX_ITEMS
        # Only the head of each queue is being decoded, not every queued item.
        assert len(ffmpeg_children()) <= STREAMS * 3

        accepted = {
            f"media_player.s{index}": watch.queued[id(entry.runtime_data.stream.queue)]
            for index, entry in enumerate(entries)
        }
        played.expected = sum(len(ids) for ids in accepted.values())
        assert played.expected + len(refusals) == CALLS
        # About 25 s alone; a generous bound, for machines that run other
        # suites beside this one (each accepted item starts its own decoder).
        async with asyncio.timeout(200):
            await played.done.wait()
        for entity_id, ids in accepted.items():
            # Every accepted announcement was played once, in the order queued.
            assert played.by_stream[entity_id]["started"] == ids
            assert played.by_stream[entity_id]["finished"] == ids
        print(  # noqa: T201
            f"load: {CALLS} calls, accepted {played.expected}, refused "
            f"{len(refusals)} (queue_full), heard {played.finished}, lost 0, "
            f"longest queue {watch.longest}"
        )
    finally:
        for entry in entries:
            await hass.config_entries.async_unload(entry.entry_id)
        for receiver in receivers:
            await receiver.stop()
    assert ffmpeg_children() == []
