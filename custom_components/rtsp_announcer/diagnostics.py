"""Diagnostics of a stream: its ffmpeg, clock, queue and the shared speech engine.

The URL keeps its host, port and path, which is what a bug report needs, and
loses its credentials; ffmpeg's stderr lines had them removed when read.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from yarl import URL

from .audio import AudioStream, PlaybackItem, Publisher, redact_text, redact_url
from .audio import options as opt
from .audio.video import VideoTrack
from .const import CONF_URL, DOMAIN
from .data import RtspAnnouncerConfigEntry
from .screen import reader_url
from .speech import SharedSpeech
from .voices import StreamVoices

# Keys that never appear in entry data today, redacted should they ever do.
TO_REDACT: Final = {CONF_PASSWORD, CONF_USERNAME}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: RtspAnnouncerConfigEntry
) -> dict[str, Any]:
    """Return what explains the state of one stream."""
    url = entry.data[CONF_URL]
    data = dict(entry.data) | {CONF_URL: redact_url(url)}
    options = dict(entry.options)
    if reader := options.get(opt.VIDEO_READER_URL.key):
        # A reader URL may carry a user and password too.
        options[opt.VIDEO_READER_URL.key] = redact_url(str(reader))
    result: dict[str, Any] = {
        "entry": {
            "title": entry.title,
            "data": async_redact_data(data, TO_REDACT),
            "options": async_redact_data(options, TO_REDACT),
        },
        "issues": sorted(
            issue_id
            for (domain, issue_id) in ir.async_get(hass).issues
            if domain == DOMAIN and issue_id.startswith(f"{entry.entry_id}_")
        ),
    }
    runtime = getattr(entry, "runtime_data", None)
    if runtime is None:
        return result
    stream = runtime.stream
    loop = hass.loop
    result["stream"] = _stream(stream)
    result["publisher"] = _publisher(stream.publisher, url, loop.time())
    result["clock"] = _clock(stream, loop.time())
    result["queue"] = _queue(stream)
    result["speech"] = _speech(runtime.speech)
    result["voices"] = _voices(runtime.announcer.voices)
    if stream.screen is not None:
        result["screen"] = _screen(stream.screen) | {
            # What the screen's camera entity streams from.
            "camera_source": redact_url(reader_url(url, entry.options)),
        }
    return result


def _screen(screen: VideoTrack) -> dict[str, Any]:
    video = screen.video
    content = screen.content
    return {
        "resolution": f"{video.width}x{video.height}",
        "fps": video.fps,
        # No Chinese font: Chinese shows as boxes (see the log's warning).
        "font_latin": screen.fonts.latin,
        "font_cjk": screen.fonts.cjk,
        "frames_written": screen.frames_written,
        "renders": screen.renders,
        "render_seconds": round(screen.render_seconds, 3),
        "current": content.current,
        "history": list(content.history),
    }


def _voices(voices: StreamVoices) -> dict[str, Any]:
    default = voices.default_engine()
    return {
        "default_engine": default,
        "fallback_engine": voices.fallback_engine(default),
        "local_available": voices.local_available,
        "first_audio_timeout_s": voices.first_audio_timeout,
        "breakers": {
            engine: {
                "state": breaker.state.value,
                "failures": breaker.failures,
                "retry_in_s": None
                if (retry := breaker.retry_in()) is None
                else round(retry, 3),
            }
            for engine, breaker in sorted(voices.breakers().items())
        },
    }


def _stream(stream: AudioStream) -> dict[str, Any]:
    settings = stream.settings
    return {
        "available": stream.available,
        "codec": settings.codec.value,
        "pcm_transport": stream.transport.value,
        "pcm_transport_configured": settings.pcm_transport.value,
        "rtsp_transport": settings.rtsp_transport.value,
        "sample_rate": settings.sample_rate,
        "frame_ms": settings.frame_ms,
        "lead_ms": settings.lead_ms,
        "idle_block_ms": settings.idle_block_ms,
        "transport_connected": stream.sink.connected,
        "transport_buffered_bytes": stream.sink.buffered_bytes,
        "volume": stream.volume,
        "muted": stream.muted,
    }


# ffmpeg's RTSP output takes credentials only from its URL (no option, no file,
# no environment variable, on 5.1 as on 7.1): they are in its argument list.
_CREDENTIALS_NOTE = (
    "ffmpeg reads RTSP credentials only from its URL: other local users who can "
    "list processes can read them. Use a publish-only account on the RTSP server."
)


def _credentials(url: str) -> dict[str, Any]:
    try:
        has_password = URL(url).password is not None
    except ValueError:
        has_password = False
    result: dict[str, Any] = {"credentials_on_command_line": has_password}
    if has_password:
        result["credentials_note"] = _CREDENTIALS_NOTE
    return result


def _publisher(publisher: Publisher | None, url: str, now: float) -> dict[str, Any]:
    if publisher is None:
        return {"state": "not_started"} | _credentials(url)
    return _credentials(url) | {
        "state": publisher.state.value,
        "pid": publisher.pid,
        "restarts": publisher.restarts,
        "failure": publisher.failure.value,
        "failure_streak": publisher.failure_streak,
        # Already redacted when read; again in case the URL was edited since.
        "last_error": None
        if publisher.last_error is None
        else redact_text(publisher.last_error, url),
        "retry_delay_s": publisher.retry_delay,
        "next_retry_in_s": None
        if publisher.next_retry is None
        else round(max(publisher.next_retry - now, 0.0), 3),
        "publishing_for_s": None
        if publisher.published_at is None or not publisher.publishing
        else round(now - publisher.published_at, 3),
        "last_progress_s_ago": None
        if publisher.last_progress is None
        else round(now - publisher.last_progress, 3),
        "out_time_ms": publisher.out_time_us // 1000,
        "stderr_tail": [redact_text(line, url) for line in publisher.stderr_tail],
    }


def _clock(stream: AudioStream, now: float) -> dict[str, Any]:
    clock = stream.clock
    rate = stream.settings.sample_rate
    stats = asdict(clock.stats)
    stats["max_tick_lag_ms"] = round(stats.pop("max_tick_lag") * 1000, 3)
    drift = clock.drift_samples(now) if clock.running else 0
    lead = stream.settings.lead_samples
    return {
        "running": clock.running,
        **stats,
        "samples_produced": clock.samples_produced,
        # Production trails the wall clock by up to one frame when on time.
        "drift_samples": drift,
        "drift_ms": round(drift * 1000 / rate, 3),
        "lead_samples": lead,
        "lead_ms": round(lead * 1000 / rate, 3),
    }


def _queue(stream: AudioStream) -> dict[str, Any]:
    queue = stream.queue
    current = queue.current
    return {
        "length": len(queue),
        "max_items": queue.max_items,
        "current": None if current is None else _item(current),
        "replays": stream.source.replays,
        "replay_pending_bytes": stream.source.replay_pending_bytes,
    }


def _item(item: PlaybackItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "state": item.state.value,
        "title": item.title,
        "played_s": round(item.duration, 3),
        "buffered_bytes": item.buffered_bytes,
        "error": None if item.error is None else redact_text(str(item.error)),
    }


def _speech(speech: SharedSpeech) -> dict[str, Any]:
    engine = speech.engine
    catalog = engine.catalog
    cache = speech.cache
    return {
        "running": engine.running,
        "native_rate": engine.native_rate,
        "voices": None if catalog is None else len(catalog.voices),
        "stats": asdict(engine.stats),
        "cache": {
            "entries": len(cache),
            "bytes": cache.size_bytes,
            "hits": cache.hits,
            "misses": cache.misses,
        },
        "streams": len(speech.users),
    }
