"""Turn a media id from Home Assistant into something ffmpeg can decode."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components import media_source
from homeassistant.components.media_player import async_process_play_media_url
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.network import is_hass_url

from .errors import decode_failed, media_not_allowed, validation_error

_LOCAL_MEDIA_PREFIX = "/media/"
_URL_SCHEMES = ("http://", "https://")


async def async_resolve_media_source(
    hass: HomeAssistant, media_id: str, entity_id: str
) -> tuple[str, str | None]:
    """Return (path or URL for ffmpeg, MIME type) for a media id.

    Local media (a media-source item of a media directory, or a path inside
    `allowlist_external_dirs`) is read from disk; anything else must be an
    HTTP(S) URL: one Home Assistant serves, one a media source resolved to,
    or one `allowlist_external_urls` allows. A refused URL is never fetched.
    """
    mime_type: str | None = None
    from_source = False
    if media_source.is_media_source_id(media_id):
        try:
            play_media = await media_source.async_resolve_media(
                hass, media_id, entity_id
            )
        except media_source.Unresolvable as err:
            raise decode_failed(media_id, err) from err
        mime_type = play_media.mime_type
        if mime_type and not mime_type.startswith("audio/"):
            raise validation_error("unsupported_media")
        local = await _local_media_path(hass, play_media.url)
        if local is not None:
            return local, mime_type
        media_id = play_media.url
        from_source = True

    if media_id.startswith(_URL_SCHEMES):
        # A media source's URL is that integration's own; a URL the caller
        # gives is Home Assistant's own or one the configuration allows.
        if not (
            from_source
            or is_hass_url(hass, media_id)
            or hass.config.is_allowed_external_url(media_id)
        ):
            raise media_not_allowed(media_id)
        return async_process_play_media_url(hass, media_id), mime_type
    if media_id.startswith("/") and (
        path := await hass.async_add_executor_job(_allowed_file, hass, media_id)
    ):
        return path, mime_type
    if media_id.startswith(("/api/", _LOCAL_MEDIA_PREFIX)):
        # A path Home Assistant serves itself: sign it and make it absolute.
        try:
            return async_process_play_media_url(hass, media_id), mime_type
        except HomeAssistantError as err:
            raise decode_failed(media_id, err) from err
    raise media_not_allowed(media_id)


async def _local_media_path(hass: HomeAssistant, url: str) -> str | None:
    """Map `/media/<dir>/<path>` of a local media source to the file itself."""
    if not url.startswith(_LOCAL_MEDIA_PREFIX) or "?" in url:
        return None
    source_dir, _, location = url.removeprefix(_LOCAL_MEDIA_PREFIX).partition("/")
    base = hass.config.media_dirs.get(source_dir)
    if base is None:
        return None
    return await hass.async_add_executor_job(
        _allowed_file, hass, str(Path(base, location))
    )


def _allowed_file(hass: HomeAssistant, path: str) -> str | None:
    """The resolved path of a regular file Home Assistant may read (blocking).

    ffmpeg gets the resolved path, so a symlink swapped after the check
    cannot redirect it.
    """
    if not hass.config.is_allowed_path(path):
        return None
    resolved = Path(path).resolve()
    return str(resolved) if resolved.is_file() else None
