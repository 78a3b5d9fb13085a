"""Translated errors: what a user reads when an action, a voice or a setup fails.

Every error the integration raises to a user is built here, with its
translation key and placeholders (the `exceptions` of strings.json), and the
audio core's errors are mapped to them here too. A `ServiceValidationError`
is the caller's mistake (a bad field, a voice that does not exist, a media id
it may not use); a plain `HomeAssistantError` is a failure the caller could
not have avoided.
"""

from __future__ import annotations

from collections.abc import Iterable

from homeassistant.exceptions import (
    ConfigEntryNotReady,
    HomeAssistantError,
    ServiceValidationError,
)

from .audio import (
    AnnouncerError,
    InvalidOptionError,
    UnknownLanguageError,
    UnknownVoiceError,
    redact_text,
    redact_url,
)
from .const import DOMAIN, MAX_MESSAGE_LENGTH


def validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    """The caller's mistake, translated under `key`."""
    return ServiceValidationError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def failure(key: str, **placeholders: str) -> HomeAssistantError:
    """A failure that is not the caller's, translated under `key`."""
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key=key,
        translation_placeholders=placeholders or None,
    )


def not_ready(key: str) -> ConfigEntryNotReady:
    """A setup that cannot start yet; Home Assistant retries it."""
    return ConfigEntryNotReady(translation_domain=DOMAIN, translation_key=key)


def speech_error(err: AnnouncerError) -> HomeAssistantError:
    """A voice's refusal or failure, as the user reads it."""
    if isinstance(err, UnknownLanguageError):
        return validation_error("unknown_language", error=str(err))
    if isinstance(err, UnknownVoiceError):
        return validation_error("unknown_voice", error=str(err))
    if isinstance(err, InvalidOptionError):
        return validation_error("invalid_option", error=str(err))
    return failure("speech_failed", error=str(err))


def unknown_options(names: Iterable[str]) -> ServiceValidationError:
    """Options the voice does not take."""
    return validation_error("invalid_option", error=", ".join(sorted(names)))


def message_too_long() -> ServiceValidationError:
    """A message over the length every way in accepts."""
    return validation_error("message_too_long", limit=str(MAX_MESSAGE_LENGTH))


def decode_failed(media_id: str, err: Exception | str) -> ServiceValidationError:
    """A media id that cannot be resolved; credentials redacted."""
    return validation_error(
        "decode_failed",
        media_id=redact_url(media_id),
        error=redact_text(str(err), media_id),
    )


def media_not_allowed(media_id: str) -> ServiceValidationError:
    """A media id refused; the same words whether or not its host answers."""
    return validation_error("media_not_allowed", media_id=redact_url(media_id))
