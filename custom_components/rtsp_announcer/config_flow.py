"""Config flow of the RTSP Announcer integration."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote

from homeassistant.components.ffmpeg import get_ffmpeg_manager
from homeassistant.components.tts import TextToSpeechEntity
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import async_get_platforms
from homeassistant.helpers.selector import (
    BooleanSelector,
    ColorRGBSelector,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from PIL import Image

from . import stream_settings
from .audio import (
    Codec,
    FailureKind,
    InvalidUrlError,
    PcmTransport,
    ProbeResult,
    RtspTransport,
    StreamSettings,
    parse_rtsp_url,
    probe_publish,
    redact_text,
    redact_url,
    strip_credentials,
)
from .audio import options as opt
from .const import CONF_NAME, CONF_URL, DOMAIN, LOGGER, SOUNDS
from .media import async_resolve_media_source

if TYPE_CHECKING:
    # Home Assistant 2026 installs probatio under the name voluptuous (in its
    # own __init__): what the flow handlers take is a probatio schema.
    import probatio as vol
else:
    import voluptuous as vol

DEFAULT_NAME: Final = "Announcer"

_URL_SELECTOR: Final = TextSelector(TextSelectorConfig(type=TextSelectorType.URL))

USER_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_NAME, default=DEFAULT_NAME): TextSelector(),
        vol.Required(CONF_URL): _URL_SELECTOR,
    }
)
RECONFIGURE_SCHEMA: Final = vol.Schema({vol.Required(CONF_URL): _URL_SELECTOR})
REAUTH_SCHEMA: Final = vol.Schema(
    {
        vol.Required(CONF_USERNAME): TextSelector(
            TextSelectorConfig(type=TextSelectorType.TEXT, autocomplete="username")
        ),
        vol.Required(CONF_PASSWORD): TextSelector(
            TextSelectorConfig(
                type=TextSelectorType.PASSWORD, autocomplete="current-password"
            )
        ),
    }
)

# The form error of each way a publish attempt fails (the supervisor's kinds);
# any other failure is "unknown", with ffmpeg's own words.
PROBE_ERRORS: Final = {
    FailureKind.UNAUTHORIZED: "invalid_auth",
    FailureKind.FORBIDDEN: "forbidden",
    FailureKind.PATH_NOT_FOUND: "path_not_found",
    FailureKind.CONNECTION_REFUSED: "cannot_connect",
    FailureKind.START_TIMEOUT: "cannot_connect",
    FailureKind.NOT_FOUND: "ffmpeg_not_found",
}


def url_with_credentials(url: str, username: str, password: str) -> str:
    """Return the URL with its credentials replaced.

    Both are percent-encoded, so any character typed into the form ends up in
    the user information and nowhere else in the URL.

    Args:
        url: A valid RTSP URL, with or without credentials.
        username: The new user name.
        password: The new password; empty gives a URL with the user name only.

    Returns:
        The URL with the new credentials.
    """
    scheme, _, rest = strip_credentials(url).partition("://")
    userinfo = quote(username, safe="")
    if password:
        userinfo = f"{userinfo}:{quote(password, safe='')}"
    return f"{scheme}://{userinfo}@{rest}"


# Stands for the stored password in the reconfigure form, which never sends it.
PASSWORD_MASK: Final = "********"  # noqa: S105 - a mask, not a password


def mask_password(url: str) -> str:
    """The URL as the reconfigure form shows it: its password masked."""
    try:
        parsed = parse_rtsp_url(url)
    except InvalidUrlError:
        return redact_url(url)
    if parsed.password is None:
        return url
    scheme, _, rest = strip_credentials(url).partition("://")
    user = quote(parsed.username or "", safe="")
    return f"{scheme}://{user}:{PASSWORD_MASK}@{rest}"


def unmask_password(url: str, stored: str) -> str | None:
    """The URL typed into the reconfigure form, the stored password for the mask.

    Returns None when the mask would send the stored password to another
    server than the stored URL's: the user must type it again.
    """
    try:
        parsed = parse_rtsp_url(url)
        old = parse_rtsp_url(stored)
    except InvalidUrlError:
        return url
    if parsed.password != PASSWORD_MASK:
        return url
    if old.password is None or (parsed.scheme, parsed.host, parsed.port) != (
        old.scheme,
        old.host,
        old.port,
    ):
        return None
    return url_with_credentials(url, parsed.username or "", old.password)


@dataclasses.dataclass(slots=True)
class PublishCheck:
    """The outcome of trying a URL, as the form shows it.

    Attributes:
        errors: Form errors; empty when the server took the stream.
        placeholders: Values for the error messages.
        transport: The RTSP transport the server took the stream with.
    """

    errors: dict[str, str] = dataclasses.field(default_factory=dict)
    placeholders: dict[str, str] = dataclasses.field(default_factory=dict)
    transport: RtspTransport | None = None


async def async_check_publish(
    hass: HomeAssistant,
    settings: StreamSettings,
    *,
    try_other_transport: bool = False,
) -> PublishCheck:
    """Publish a moment of silence with the stream's settings.

    Args:
        hass: Home Assistant, for its ffmpeg binary.
        settings: The settings the stream will publish with.
        try_other_transport: If the server refuses the RTSP transport (461
            Unsupported Transport), try the other one once.

    Returns:
        The form errors and placeholders, and the transport that worked.
    """
    binary = get_ffmpeg_manager(hass).binary
    try:
        result = await probe_publish(binary, settings)
        _log_attempt(settings, result)
        if result.transport_refused and try_other_transport:
            other = dataclasses.replace(
                settings,
                rtsp_transport=RtspTransport.UDP
                if settings.rtsp_transport is RtspTransport.TCP
                else RtspTransport.TCP,
            )
            second = await probe_publish(binary, other)
            _log_attempt(other, second)
            if second.transport_refused:
                # Neither: not a matter of the option; ffmpeg's words say so.
                return PublishCheck(
                    errors={"base": "unknown"},
                    placeholders={"error": second.error or str(second.failure)},
                )
            settings, result = other, second
    except Exception as err:  # noqa: BLE001 - a failed check is a form error
        reason = redact_text(str(err) or type(err).__name__, settings.url)
        # Not LOGGER.exception: the message may hold the URL's credentials.
        LOGGER.error(
            "Unexpected error while publishing to %s: %s: %s\n%s",
            redact_url(settings.url),
            type(err).__name__,
            reason,
            "".join(traceback.format_tb(err.__traceback__)).rstrip(),
        )
        return PublishCheck(errors={"base": "unknown"}, placeholders={"error": reason})
    if result.ok:
        return PublishCheck(transport=settings.rtsp_transport)
    if result.transport_refused:
        return PublishCheck(
            errors={"base": "unsupported_transport"},
            placeholders={"transport": settings.rtsp_transport.upper()},
        )
    if (error := PROBE_ERRORS.get(result.failure)) is not None:
        return PublishCheck(errors={"base": error})
    return PublishCheck(
        errors={"base": "unknown"},
        placeholders={"error": result.error or str(result.failure)},
    )


def _log_attempt(settings: StreamSettings, result: ProbeResult) -> None:
    LOGGER.debug(
        "Publishing to %s over %s: %s after %.0f ms%s",
        redact_url(settings.url),
        settings.rtsp_transport.upper(),
        "accepted" if result.ok else result.failure,
        result.seconds * 1000,
        f" ({result.error})" if result.error else "",
    )


def _publishes_now(entry: ConfigEntry, settings: StreamSettings) -> bool:
    """Whether the entry's stream publishes with these very settings right now.

    Then the stream is the proof that they work, and a publish attempt would
    compete with it for the path (a server that takes one publisher per path
    refuses the attempt, others drop the stream to take it).
    """
    if entry.state is not ConfigEntryState.LOADED:
        return False
    stream = entry.runtime_data.stream
    return bool(stream.available and stream.settings == settings)


class RtspAnnouncerConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up one RTSP stream per config entry."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(
        config_entry: ConfigEntry,  # noqa: ARG004
    ) -> RtspAnnouncerOptionsFlow:
        """Return the options flow of an entry."""
        return RtspAnnouncerOptionsFlow()

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a name and the RTSP publish URL of a stream."""
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            url = user_input[CONF_URL].strip()
            try:
                unique_id = strip_credentials(url)
            except InvalidUrlError:
                errors = {CONF_URL: "invalid_url"}
            else:
                # Before publishing: an attempt on a configured stream's path
                # would disturb that stream.
                await self.async_set_unique_id(unique_id)
                self._abort_if_unique_id_configured()
                # A new stream starts with the default options; if the server
                # refuses their RTSP transport, the other one is tried and kept.
                check = await async_check_publish(
                    self.hass, stream_settings(url, {}), try_other_transport=True
                )
                errors, placeholders = check.errors, check.placeholders
                if not errors:
                    name = user_input[CONF_NAME].strip() or DEFAULT_NAME
                    options: dict[str, Any] = {}
                    if check.transport not in (None, opt.RTSP_TRANSPORT.default):
                        options[opt.RTSP_TRANSPORT.key] = check.transport
                    return self.async_create_entry(
                        title=name,
                        data={CONF_NAME: name, CONF_URL: url},
                        options=options,
                    )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the RTSP publish URL of a stream."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        if user_input is not None:
            url = unmask_password(user_input[CONF_URL].strip(), entry.data[CONF_URL])
            try:
                unique_id = strip_credentials(url or "")
            except InvalidUrlError:
                errors = {CONF_URL: "invalid_url"}
            if url is None:
                errors = {CONF_URL: "password_masked"}
            elif not errors:
                # The stream may move to another URL, but not onto another entry's.
                other = self.hass.config_entries.async_entry_for_domain_unique_id(
                    DOMAIN, unique_id
                )
                if other is not None and other.entry_id != entry.entry_id:
                    return self.async_abort(reason="already_configured")
                errors, placeholders = await self._async_check_entry(entry, url)
                if not errors:
                    return self.async_update_reload_and_abort(
                        entry, unique_id=unique_id, data_updates={CONF_URL: url}
                    )
        return self.async_show_form(
            step_id="reconfigure",
            # The stored password never goes to the browser: it is masked. What
            # the user typed (the mask, or a new password) is shown as typed.
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA,
                user_input or {CONF_URL: mask_password(entry.data[CONF_URL])},
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_reauth(
        self,
        entry_data: Mapping[str, Any],
    ) -> ConfigFlowResult:
        """The RTSP server refuses the stream's credentials: ask for new ones."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the user name and password the RTSP server expects."""
        entry = self._get_reauth_entry()
        current = entry.data[CONF_URL]
        errors: dict[str, str] = {}
        placeholders: dict[str, str] = {}
        suggested: dict[str, Any] = {}
        if user_input is not None:
            username = user_input[CONF_USERNAME].strip()
            url = url_with_credentials(current, username, user_input[CONF_PASSWORD])
            try:
                parse_rtsp_url(url)
            except InvalidUrlError:
                # The form has no URL field to put the error on.
                errors = {"base": "invalid_url"}
            else:
                errors, placeholders = await self._async_check_entry(entry, url)
                if not errors:
                    return self.async_update_reload_and_abort(
                        entry, data_updates={CONF_URL: url}
                    )
            suggested[CONF_USERNAME] = username
        elif (username := parse_rtsp_url(current).username) is not None:
            suggested[CONF_USERNAME] = username
        # The password is never suggested: the form would send it to the browser.
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(REAUTH_SCHEMA, suggested),
            errors=errors,
            description_placeholders={"url": redact_url(current), **placeholders},
        )

    async def _async_check_entry(
        self, entry: ConfigEntry, url: str
    ) -> tuple[dict[str, str], dict[str, str]]:
        """Try the entry's stream on a new URL, with the entry's options.

        Its RTSP transport is the user's choice in the options: a refusal of it
        is reported, not worked around.
        """
        settings = stream_settings(url, entry.options)
        if _publishes_now(entry, settings):
            return {}, {}
        check = await async_check_publish(self.hass, settings)
        return check.errors, check.placeholders


class RtspAnnouncerOptionsFlow(OptionsFlow):
    """Tune the encoding, timing and voices of a stream.

    The first step holds every option; choosing a default voice engine leads
    to a second step for its language and voice, offered from what that
    entity reports.
    """

    def __init__(self) -> None:
        """Start with nothing chosen yet."""
        super().__init__()
        self._options: dict[str, Any] = {}

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the stream options; a change restarts the stream once."""
        errors: dict[str, str] = {}
        if user_input is not None:
            sound = str(
                user_input.get(opt.PREANNOUNCE_SOUND.key)
                or opt.PREANNOUNCE_SOUND.default
            ).strip()
            if not await self._sound_exists(sound):
                errors[opt.PREANNOUNCE_SOUND.key] = "invalid_sound"
        if user_input is not None and not errors:
            options: dict[str, Any] = {
                opt.CODEC.key: user_input[opt.CODEC.key],
                opt.PCM_TRANSPORT.key: user_input[opt.PCM_TRANSPORT.key],
                opt.SAMPLE_RATE.key: int(user_input[opt.SAMPLE_RATE.key]),
                opt.RTSP_TRANSPORT.key: user_input[opt.RTSP_TRANSPORT.key],
                opt.FRAME_MS.key: int(user_input[opt.FRAME_MS.key]),
                opt.LEAD_MS.key: int(user_input[opt.LEAD_MS.key]),
                opt.IDLE_BLOCK_MS.key: int(opt.IDLE_BLOCK_MS.read(user_input)),
                opt.FIRST_AUDIO_TIMEOUT.key: float(
                    opt.FIRST_AUDIO_TIMEOUT.read(user_input)
                ),
                opt.PREANNOUNCE.key: bool(opt.PREANNOUNCE.read(user_input)),
                opt.PREANNOUNCE_SOUND.key: sound,
                opt.LEAD_IN.key: float(opt.LEAD_IN.read(user_input)),
                opt.GAIN_DB.key: float(opt.GAIN_DB.read(user_input)),
                opt.REPEAT.key: int(opt.REPEAT.read(user_input)),
            } | {limit.key: float(limit.read(user_input)) for limit in _TIME_LIMITS}
            if fallback := user_input.get(opt.FALLBACK_ENGINE.key):
                options[opt.FALLBACK_ENGINE.key] = fallback
            # Only a screen that is on is stored: an audio-only stream's
            # options stay as they were before the screen existed.
            if user_input.get(opt.VIDEO.key):
                options[opt.VIDEO.key] = True
            if engine := user_input.get(opt.VOICE_ENGINE.key):
                options[opt.VOICE_ENGINE.key] = engine
                self._options = options
                return await self.async_step_voice()
            return await self._after_voice(options)
        schema = _options_schema(self.config_entry.options)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, user_input)
            if user_input is not None
            else schema,
            errors=errors,
        )

    async def _sound_exists(self, sound: str) -> bool:
        """Whether the chime chosen is a shipped sound or audio we may read."""
        if sound in SOUNDS:
            return True
        try:
            await async_resolve_media_source(self.hass, sound, "")
        except HomeAssistantError:
            return False
        return True

    async def async_step_voice(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Choose the language and voice of the default engine."""
        engine = self._options[opt.VOICE_ENGINE.key]
        if user_input is not None:
            options = dict(self._options)
            for key in (opt.VOICE_LANGUAGE.key, opt.VOICE.key):
                if value := str(user_input.get(key) or "").strip():
                    options[key] = value
            return await self._after_voice(options)
        current = self.config_entry.options
        same = current.get(opt.VOICE_ENGINE.key) == engine
        instance = _tts_entity(self.hass, engine)
        languages: list[str] = []
        language: str | None = current.get(opt.VOICE_LANGUAGE.key) if same else None
        voices: list[str] = []
        if instance is not None:
            languages = sorted(instance.supported_languages or [])
            language = language or instance.default_language
            if language:
                found = instance.async_get_supported_voices(language) or []
                voices = [voice.voice_id for voice in found]
        suggested = {
            opt.VOICE_LANGUAGE.key: language,
            opt.VOICE.key: current.get(opt.VOICE.key) if same else None,
        }
        schema = vol.Schema(
            {
                vol.Optional(opt.VOICE_LANGUAGE.key): _choice(languages),
                vol.Optional(opt.VOICE.key): _choice(voices),
            }
        )
        return self.async_show_form(
            step_id="voice",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            description_placeholders={"engine": engine},
        )

    async def _after_voice(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Save, or first set up the screen when it is on."""
        if options.get(opt.VIDEO.key):
            self._options = options
            return await self.async_step_screen()
        return self._save(options)

    async def async_step_screen(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Set up the call-number screen."""
        errors: dict[str, str] = {}
        if user_input is not None:
            screen, errors = await self._screen_options(user_input)
            if not errors:
                return self._save(self._options | screen)
        current = self.config_entry.options
        schema = _screen_schema(current)
        return self.async_show_form(
            step_id="screen",
            data_schema=self.add_suggested_values_to_schema(
                schema,
                user_input
                if user_input is not None
                else {key: current[key] for key in SCREEN_OPTIONAL if key in current},
            ),
            errors=errors,
        )

    async def _screen_options(
        self, user_input: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        errors: dict[str, str] = {}
        screen: dict[str, Any] = {
            opt.VIDEO_RESOLUTION.key: user_input[opt.VIDEO_RESOLUTION.key],
            opt.VIDEO_FPS.key: int(user_input[opt.VIDEO_FPS.key]),
            opt.VIDEO_BACKGROUND.key: [
                int(part) for part in user_input[opt.VIDEO_BACKGROUND.key]
            ],
            opt.VIDEO_TEXT_COLOR.key: [
                int(part) for part in user_input[opt.VIDEO_TEXT_COLOR.key]
            ],
            opt.VIDEO_TEXT_SIZE.key: int(user_input[opt.VIDEO_TEXT_SIZE.key]),
            opt.VIDEO_HISTORY.key: int(user_input[opt.VIDEO_HISTORY.key]),
        }
        if image := str(user_input.get(opt.VIDEO_BACKGROUND_IMAGE.key) or "").strip():
            if await self.hass.async_add_executor_job(
                _readable_image, self.hass, image
            ):
                screen[opt.VIDEO_BACKGROUND_IMAGE.key] = image
            else:
                errors[opt.VIDEO_BACKGROUND_IMAGE.key] = "invalid_background_image"
        if entity := user_input.get(opt.VIDEO_BACKGROUND_ENTITY.key):
            screen[opt.VIDEO_BACKGROUND_ENTITY.key] = entity
        if reader := str(user_input.get(opt.VIDEO_READER_URL.key) or "").strip():
            try:
                parse_rtsp_url(reader)
            except InvalidUrlError:
                errors[opt.VIDEO_READER_URL.key] = "invalid_reader_url"
            else:
                screen[opt.VIDEO_READER_URL.key] = reader
        return screen, errors

    def _save(self, options: dict[str, Any]) -> ConfigFlowResult:
        """Save the options; a change restarts the stream once."""
        # Saved and reloaded here, only if something changed; Home
        # Assistant then finds the options saved and does nothing more.
        # (OptionsFlowWithReload does the same on the releases that have
        # it; 2025.4 has not, and an update listener would reload a second
        # time after every reconfigure and reauthentication.)
        entry = self.config_entry
        if self.hass.config_entries.async_update_entry(entry, options=options):
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
        return self.async_create_entry(data=options)


def _options_schema(options: Mapping[str, Any]) -> vol.Schema:
    """Build the options form, defaulting to the current options."""
    return vol.Schema(
        {
            _current(options, opt.CODEC): _select(
                opt.CODEC.key, [str(codec) for codec in Codec]
            ),
            _current(options, opt.PCM_TRANSPORT): _select(
                opt.PCM_TRANSPORT.key, [str(kind) for kind in PcmTransport]
            ),
            # Select options are strings; the rate is stored as an int.
            vol.Required(
                opt.SAMPLE_RATE.key,
                default=str(opt.SAMPLE_RATE.read(options)),
            ): _select(
                opt.SAMPLE_RATE.key, [str(rate) for rate in opt.SAMPLE_RATE.choices]
            ),
            _current(options, opt.RTSP_TRANSPORT): _select(
                opt.RTSP_TRANSPORT.key, [str(kind) for kind in RtspTransport]
            ),
            _current(options, opt.FRAME_MS): _slider(opt.FRAME_MS, 1, "ms"),
            _current(options, opt.LEAD_MS): _slider(opt.LEAD_MS, 5, "ms"),
            _current(options, opt.IDLE_BLOCK_MS): _slider(opt.IDLE_BLOCK_MS, 10, "ms"),
            vol.Optional(
                opt.VOICE_ENGINE.key,
                description={"suggested_value": options.get(opt.VOICE_ENGINE.key)},
            ): _TTS_SELECTOR,
            vol.Optional(
                opt.FALLBACK_ENGINE.key,
                description={"suggested_value": options.get(opt.FALLBACK_ENGINE.key)},
            ): _TTS_SELECTOR,
            _current(options, opt.FIRST_AUDIO_TIMEOUT): _box(
                opt.FIRST_AUDIO_TIMEOUT, 0.5, "s"
            ),
        }
        | {_current(options, limit): _box(limit, 1, "s") for limit in _TIME_LIMITS}
        | {
            _current(options, opt.PREANNOUNCE): BooleanSelector(),
            _current(options, opt.PREANNOUNCE_SOUND): SelectSelector(
                SelectSelectorConfig(
                    options=list(SOUNDS),
                    mode=SelectSelectorMode.DROPDOWN,
                    translation_key=opt.PREANNOUNCE_SOUND.key,
                    # A media id of the user's own sound.
                    custom_value=True,
                )
            ),
            _current(options, opt.LEAD_IN): _box(opt.LEAD_IN, 0.1, "s"),
            _current(options, opt.GAIN_DB): _slider(opt.GAIN_DB, 1, "dB"),
            _current(options, opt.REPEAT): _box(opt.REPEAT, 1),
            vol.Required(
                opt.VIDEO.key,
                default=bool(opt.VIDEO.read(options)),
            ): BooleanSelector(),
        }
    )


# The screen's options that may be left empty.
SCREEN_OPTIONAL: Final = (
    opt.VIDEO_BACKGROUND_IMAGE.key,
    opt.VIDEO_BACKGROUND_ENTITY.key,
    opt.VIDEO_READER_URL.key,
)


def _colour(value: Sequence[Any]) -> list[int]:
    """A colour as stored: [red, green, blue]."""
    return [int(part) for part in value]


def _readable_image(hass: HomeAssistant, path: str) -> bool:
    """Whether `path` is a picture file in a folder Home Assistant may read."""
    if not hass.config.is_allowed_path(path) or not Path(path).is_file():
        return False
    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, SyntaxError, ValueError):
        # Not a picture Pillow can read.
        return False
    return True


def _screen_schema(options: Mapping[str, Any]) -> vol.Schema:
    """Build the screen's form, defaulting to the current options."""
    return vol.Schema(
        {
            _current(options, opt.VIDEO_RESOLUTION): _select(
                opt.VIDEO_RESOLUTION.key, opt.VIDEO_RESOLUTION.choices
            ),
            _current(options, opt.VIDEO_FPS): _slider(opt.VIDEO_FPS, 1, "fps"),
            vol.Required(
                opt.VIDEO_BACKGROUND.key,
                default=list(opt.VIDEO_BACKGROUND.read(options)),
            ): ColorRGBSelector(),
            vol.Optional(opt.VIDEO_BACKGROUND_IMAGE.key): TextSelector(),
            vol.Optional(opt.VIDEO_BACKGROUND_ENTITY.key): EntitySelector(
                EntitySelectorConfig(domain=["image", "camera"])
            ),
            vol.Required(
                opt.VIDEO_TEXT_COLOR.key,
                default=list(opt.VIDEO_TEXT_COLOR.read(options)),
            ): ColorRGBSelector(),
            _current(options, opt.VIDEO_TEXT_SIZE): _slider(
                opt.VIDEO_TEXT_SIZE, 1, "%"
            ),
            _current(options, opt.VIDEO_HISTORY): _box(opt.VIDEO_HISTORY, 1),
            vol.Optional(opt.VIDEO_READER_URL.key): _URL_SELECTOR,
        }
    )


# The time limits of a stream, in seconds.
_TIME_LIMITS: Final = (opt.SOURCE_TIMEOUT, opt.NETWORK_TIMEOUT, opt.MAX_QUEUE_AGE)


_TTS_SELECTOR: Final = EntitySelector(EntitySelectorConfig(domain="tts"))


def _choice(choices: Sequence[str]) -> SelectSelector | TextSelector:
    """What the entity offers, with free text allowed; free text if it offers none."""
    if not choices:
        return TextSelector()
    return SelectSelector(
        SelectSelectorConfig(
            options=list(choices),
            mode=SelectSelectorMode.DROPDOWN,
            custom_value=True,
            sort=False,
        )
    )


def _select(translation_key: str, choices: Sequence[str]) -> SelectSelector:
    """Return a drop-down whose choices are translated under translation_key."""
    return SelectSelector(
        SelectSelectorConfig(
            options=list(choices),
            mode=SelectSelectorMode.DROPDOWN,
            translation_key=translation_key,
        )
    )


def _current(options: Mapping[str, Any], option: opt.Option[Any]) -> vol.Required:
    """A field of the form that starts at the option's current value."""
    return vol.Required(option.key, default=option.read(options))


def _number(
    option: opt.Bounded[Any],
    step: float,
    unit: str | None,
    mode: NumberSelectorMode,
) -> NumberSelector:
    low, high = option.range
    config = NumberSelectorConfig(min=low, max=high, step=step, mode=mode)
    if unit is not None:
        config["unit_of_measurement"] = unit
    return NumberSelector(config)


def _box(
    option: opt.Bounded[Any], step: float, unit: str | None = None
) -> NumberSelector:
    """Return a box for a number typed in, within the option's range."""
    return _number(option, step, unit, NumberSelectorMode.BOX)


def _slider(option: opt.Bounded[Any], step: float, unit: str) -> NumberSelector:
    """Return a slider across the option's range."""
    return _number(option, step, unit, NumberSelectorMode.SLIDER)


def _tts_entity(hass: HomeAssistant, entity_id: str) -> TextToSpeechEntity | None:
    """The TTS entity object behind an entity id, found through its platform."""
    entry = er.async_get(hass).async_get(entity_id)
    if entry is None:
        return None
    for platform in async_get_platforms(hass, entry.platform):
        entity = platform.entities.get(entity_id)
        if platform.domain == "tts" and isinstance(entity, TextToSpeechEntity):
            return entity
    return None
