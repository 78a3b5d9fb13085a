"""Fixtures shared by the audio tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from custom_components.rtsp_announcer.audio.speech import SpeechEngine

from .helpers import speech_threads


@pytest.fixture
async def engine() -> AsyncIterator[SpeechEngine]:
    """A real espeak-ng engine; stopping it ends its thread."""
    speech = SpeechEngine(timeout=10)
    try:
        yield speech
    finally:
        await speech.async_stop()
    assert not speech_threads()
