"""Plain helpers for the audio tests (pytest advises against importing conftest)."""

from __future__ import annotations

import threading

from custom_components.rtsp_announcer.audio.speech import THREAD_NAME


def speech_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]
