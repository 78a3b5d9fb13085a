"""Fixtures shared by the audio tests."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator

import pytest

from custom_components.rtsp_announcer.audio.speech import THREAD_NAME, SpeechEngine


def speech_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.fixture
async def engine() -> AsyncIterator[SpeechEngine]:
    """A real espeak-ng engine; stopping it ends its thread."""
    speech = SpeechEngine(timeout=10)
    try:
        yield speech
    finally:
        await speech.async_stop()
    assert not speech_threads()
