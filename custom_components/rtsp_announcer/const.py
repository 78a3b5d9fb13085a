"""Constants shared by the RTSP Announcer integration."""

from __future__ import annotations

import logging
from typing import Final

DOMAIN: Final = "rtsp_announcer"
LOGGER = logging.getLogger(__package__)

# Config entry data (the user step).
CONF_NAME: Final = "name"
CONF_URL: Final = "url"

# Config entry options (the options flow).
CONF_CODEC: Final = "codec"
CONF_PCM_TRANSPORT: Final = "pcm_transport"
CONF_SAMPLE_RATE: Final = "sample_rate"
CONF_RTSP_TRANSPORT: Final = "rtsp_transport"
CONF_FRAME_MS: Final = "frame_ms"
CONF_LEAD_MS: Final = "lead_ms"
CONF_IDLE_BLOCK_MS: Final = "idle_block_ms"

# The choices, ranges and defaults of these options are the audio core's own
# (`audio.models`): the Home Assistant layer reads them from there.

# Voices (the options flow's voice steps). An empty engine is the default:
# the stream's local voice, or the first other TTS entity without espeak-ng.
CONF_VOICE_ENGINE: Final = "voice_engine"
CONF_VOICE_LANGUAGE: Final = "voice_language"
CONF_VOICE: Final = "voice"
CONF_FALLBACK_ENGINE: Final = "fallback_engine"
CONF_FIRST_AUDIO_TIMEOUT: Final = "first_audio_timeout"
DEFAULT_FIRST_AUDIO_TIMEOUT: Final = 5.0
FIRST_AUDIO_TIMEOUT_RANGE: Final = (0.5, 30.0)
# Consecutive failures that open an engine's breaker, and its cool-down (s).
BREAKER_FAILURES: Final = 3
BREAKER_COOL_DOWN: Final = 30.0

# Time limits (the options flow), in seconds: all the waiting for one
# announcement's audio source, one network read or connection of a media URL,
# and how long an announcement may wait in the queue before it expires.
CONF_SOURCE_TIMEOUT: Final = "source_timeout"
CONF_NETWORK_TIMEOUT: Final = "network_timeout"
CONF_MAX_QUEUE_AGE: Final = "max_queue_age"
DEFAULT_SOURCE_TIMEOUT: Final = 300.0
DEFAULT_NETWORK_TIMEOUT: Final = 5.0
DEFAULT_MAX_QUEUE_AGE: Final = 120.0
# Each (min, max), as the audio core's `*_RANGE`.
SOURCE_TIMEOUT_RANGE: Final = (1.0, 3600.0)
NETWORK_TIMEOUT_RANGE: Final = (1.0, 60.0)
MAX_QUEUE_AGE_RANGE: Final = (1.0, 3600.0)


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

# Announcement defaults of a stream (the options flow); a call overrides each.
CONF_PREANNOUNCE: Final = "preannounce"
CONF_PREANNOUNCE_SOUND: Final = "preannounce_sound"
CONF_LEAD_IN: Final = "lead_in"
CONF_GAIN_DB: Final = "gain_db"
CONF_REPEAT: Final = "repeat"
# The sounds shipped in `sounds/<name>.flac`; a media id may stand instead.
SOUNDS: Final = ("chime",)
DEFAULT_PREANNOUNCE: Final = True
DEFAULT_PREANNOUNCE_SOUND: Final = "chime"
# Seconds of silence before an announcement's first sound.
DEFAULT_LEAD_IN: Final = 0.0
LEAD_IN_RANGE: Final = (0.0, 5.0)
# Gain in dB applied to every announcement of the stream.
DEFAULT_GAIN_DB: Final = 0.0
GAIN_DB_RANGE: Final = (-30.0, 12.0)
DEFAULT_REPEAT: Final = 1
REPEAT_RANGE: Final = (1, 10)
# Seconds of silence between two repetitions.
DEFAULT_REPEAT_GAP: Final = 1.0
REPEAT_GAP_RANGE: Final = (0.0, 60.0)

# The call-number screen (the options flow's screen step): an H.264 track in
# the same RTSP session, off by default.
CONF_VIDEO: Final = "video"
CONF_VIDEO_RESOLUTION: Final = "video_resolution"
CONF_VIDEO_FPS: Final = "video_fps"
CONF_VIDEO_BACKGROUND: Final = "video_background"
CONF_VIDEO_BACKGROUND_IMAGE: Final = "video_background_image"
CONF_VIDEO_BACKGROUND_ENTITY: Final = "video_background_entity"
CONF_VIDEO_TEXT_COLOR: Final = "video_text_color"
CONF_VIDEO_TEXT_SIZE: Final = "video_text_size"
CONF_VIDEO_HISTORY: Final = "video_history"
CONF_VIDEO_READER_URL: Final = "video_reader_url"
# The unique id's key of the screen's camera (entity.py: "<entry id>_<key>"): a
# screen turned off has its camera removed from the registry by it.
SCREEN_CAMERA_KEY: Final = "screen"
VIDEO_RESOLUTIONS: Final = ("640x360", "1280x720", "1920x1080")
DEFAULT_VIDEO: Final = False
DEFAULT_VIDEO_RESOLUTION: Final = "1280x720"
DEFAULT_VIDEO_FPS: Final = 5
VIDEO_FPS_RANGE: Final = (1, 10)
DEFAULT_VIDEO_BACKGROUND: Final = (0, 0, 0)
DEFAULT_VIDEO_TEXT_COLOR: Final = (255, 255, 255)
# Height of the current text, in percent of the picture's height.
DEFAULT_VIDEO_TEXT_SIZE: Final = 30
VIDEO_TEXT_SIZE_RANGE: Final = (5, 80)
DEFAULT_VIDEO_HISTORY: Final = 3
VIDEO_HISTORY_RANGE: Final = (0, 10)
