"""Constants shared by the RTSP Announcer integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "rtsp_announcer"
LOGGER = logging.getLogger(__package__)

# Config entry data (the user step).
CONF_NAME: Final = "name"
CONF_URL: Final = "url"

# The options of a stream (the options flow): each one's key, default and
# choices or range are the audio core's own (`audio.options`).

# Consecutive failures that open an engine's breaker, and its cool-down (s).
BREAKER_FAILURES: Final = 3
BREAKER_COOL_DOWN: Final = 30.0

# Seconds the config flow waits for the RTSP server to accept a TCP connection.
CONNECT_TIMEOUT: Final = 5.0
DEFAULT_RTSP_PORT: Final = 554
DEFAULT_RTSPS_PORT: Final = 322
URL_SCHEMES: Final = ("rtsp", "rtsps")

# The announce action.
SERVICE_ANNOUNCE: Final = "announce"
EVENT_ANNOUNCEMENT: Final = f"{DOMAIN}_announcement"
MAX_MESSAGE_LENGTH: Final = 5000
ATTR_MESSAGE: Final = "message"
ATTR_MEDIA_ID: Final = "media_id"
ATTR_TTS_ENTITY_ID: Final = "tts_entity_id"
ATTR_LANGUAGE: Final = "language"
ATTR_OPTIONS: Final = "options"
ATTR_PREANNOUNCE: Final = "preannounce"
ATTR_PREANNOUNCE_MEDIA_ID: Final = "preannounce_media_id"
ATTR_VOLUME: Final = "volume"
ATTR_PRIORITY: Final = "priority"
ATTR_WAIT: Final = "wait"
ATTR_TIMEOUT: Final = "timeout"
ATTR_GAIN_DB: Final = "gain_db"
ATTR_LEAD_IN: Final = "lead_in"
ATTR_REPEAT: Final = "repeat"
ATTR_REPEAT_GAP: Final = "repeat_gap"
ATTR_REPEAT_PREANNOUNCE: Final = "repeat_preannounce"
ATTR_DROPPABLE: Final = "droppable"
ATTR_DISPLAY_TEXT: Final = "display_text"
ATTR_DISPLAY_SECONDS: Final = "display_seconds"
# Characters a screen text may have; a longer message shows its start.
MAX_DISPLAY_LENGTH: Final = 200
MAX_DISPLAY_SECONDS: Final = 86400.0

# The display action: the screen's text without speaking.
SERVICE_DISPLAY: Final = "display"
ATTR_TEXT: Final = "text"
ATTR_SECONDS: Final = "seconds"

# The sounds shipped in `sounds/<name>.flac`; a media id may stand instead.
SOUNDS: Final = ("chime",)

# The unique id's key of the screen's camera (entity.py: "<entry id>_<key>"): a
# screen turned off has its camera removed from the registry by it.
SCREEN_CAMERA_KEY: Final = "screen"
