"""Config flow of the RTSP Announcer integration."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

import voluptuous as vol
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_PASSWORD, CONF_USERNAME
from homeassistant.core import callback
from homeassistant.helpers.selector import (
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

from .audio.exceptions import InvalidUrlError
from .audio.url import parse_rtsp_url, redact_url, strip_credentials
from .const import (
    CODECS,
    CONF_CODEC,
    CONF_FRAME_MS,
    CONF_LEAD_MS,
    CONF_NAME,
    CONF_PCM_TRANSPORT,
    CONF_RTSP_TRANSPORT,
    CONF_SAMPLE_RATE,
    CONF_URL,
    CONNECT_TIMEOUT,
    DEFAULT_CODEC,
    DEFAULT_FRAME_MS,
    DEFAULT_LEAD_MS,
    DEFAULT_PCM_TRANSPORT,
    DEFAULT_RTSP_TRANSPORT,
    DEFAULT_SAMPLE_RATE,
    DOMAIN,
    LOGGER,
    MAX_FRAME_MS,
    MAX_LEAD_MS,
    MIN_FRAME_MS,
    MIN_LEAD_MS,
    PCM_TRANSPORTS,
    RTSP_TRANSPORTS,
    SAMPLE_RATES,
)

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


async def async_validate_url(url: str) -> dict[str, str]:
    """Check that a URL is a valid RTSP URL whose server accepts TCP connections.

    Only the TCP port is probed: publishing needs ffmpeg, which the integration
    starts once the entry is set up.

    Args:
        url: The RTSP publish URL, already stripped.

    Returns:
        Form errors, empty when the URL can be used.
    """
    try:
        rtsp_url = parse_rtsp_url(url)
    except InvalidUrlError:
        return {CONF_URL: "invalid_url"}
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            _, writer = await asyncio.open_connection(rtsp_url.host, rtsp_url.port)
    except (OSError, TimeoutError):
        return {"base": "cannot_connect"}
    except Exception:  # noqa: BLE001 - a failed probe is a form error, not a crash
        LOGGER.exception("Unexpected error while connecting to %s", redact_url(url))
        return {"base": "unknown"}
    writer.close()
    # The server was reached; a reset while closing says nothing about the URL.
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return {}


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
        if user_input is not None:
            url = user_input[CONF_URL].strip()
            if not (errors := await async_validate_url(url)):
                await self.async_set_unique_id(strip_credentials(url))
                self._abort_if_unique_id_configured()
                name = user_input[CONF_NAME].strip() or DEFAULT_NAME
                return self.async_create_entry(
                    title=name, data={CONF_NAME: name, CONF_URL: url}
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change the RTSP publish URL of a stream."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            url = user_input[CONF_URL].strip()
            if not (errors := await async_validate_url(url)):
                unique_id = strip_credentials(url)
                # The stream may move to another URL, but not onto another entry's.
                other = self.hass.config_entries.async_entry_for_domain_unique_id(
                    DOMAIN, unique_id
                )
                if other is not None and other.entry_id != entry.entry_id:
                    return self.async_abort(reason="already_configured")
                return self.async_update_reload_and_abort(
                    entry, unique_id=unique_id, data_updates={CONF_URL: url}
                )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                RECONFIGURE_SCHEMA, user_input or entry.data
            ),
            errors=errors,
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
        suggested: dict[str, Any] = {}
        if user_input is not None:
            username = user_input[CONF_USERNAME].strip()
            url = url_with_credentials(current, username, user_input[CONF_PASSWORD])
            if not (errors := await async_validate_url(url)):
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_URL: url}
                )
            # The form has no URL field to put a URL error on.
            errors = {"base": next(iter(errors.values()))}
            suggested[CONF_USERNAME] = username
        elif (username := parse_rtsp_url(current).username) is not None:
            suggested[CONF_USERNAME] = username
        # The password is never suggested: the form would send it to the browser.
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=self.add_suggested_values_to_schema(REAUTH_SCHEMA, suggested),
            errors=errors,
            description_placeholders={"url": redact_url(current)},
        )


class RtspAnnouncerOptionsFlow(OptionsFlow):
    """Tune the encoding and timing of a stream."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Show and save the stream options."""
        if user_input is not None:
            return self.async_create_entry(
                data={
                    CONF_CODEC: user_input[CONF_CODEC],
                    CONF_PCM_TRANSPORT: user_input[CONF_PCM_TRANSPORT],
                    CONF_SAMPLE_RATE: int(user_input[CONF_SAMPLE_RATE]),
                    CONF_RTSP_TRANSPORT: user_input[CONF_RTSP_TRANSPORT],
                    CONF_FRAME_MS: int(user_input[CONF_FRAME_MS]),
                    CONF_LEAD_MS: int(user_input[CONF_LEAD_MS]),
                }
            )
        return self.async_show_form(
            step_id="init", data_schema=_options_schema(self.config_entry.options)
        )


def _options_schema(options: Mapping[str, Any]) -> vol.Schema:
    """Build the options form, defaulting to the current options."""
    return vol.Schema(
        {
            vol.Required(
                CONF_CODEC, default=options.get(CONF_CODEC, DEFAULT_CODEC)
            ): _select(CONF_CODEC, CODECS),
            vol.Required(
                CONF_PCM_TRANSPORT,
                default=options.get(CONF_PCM_TRANSPORT, DEFAULT_PCM_TRANSPORT),
            ): _select(CONF_PCM_TRANSPORT, PCM_TRANSPORTS),
            # Select options are strings; the rate is stored as an int.
            vol.Required(
                CONF_SAMPLE_RATE,
                default=str(options.get(CONF_SAMPLE_RATE, DEFAULT_SAMPLE_RATE)),
            ): _select(CONF_SAMPLE_RATE, [str(rate) for rate in SAMPLE_RATES]),
            vol.Required(
                CONF_RTSP_TRANSPORT,
                default=options.get(CONF_RTSP_TRANSPORT, DEFAULT_RTSP_TRANSPORT),
            ): _select(CONF_RTSP_TRANSPORT, RTSP_TRANSPORTS),
            vol.Required(
                CONF_FRAME_MS, default=options.get(CONF_FRAME_MS, DEFAULT_FRAME_MS)
            ): _milliseconds(MIN_FRAME_MS, MAX_FRAME_MS, 1),
            vol.Required(
                CONF_LEAD_MS, default=options.get(CONF_LEAD_MS, DEFAULT_LEAD_MS)
            ): _milliseconds(MIN_LEAD_MS, MAX_LEAD_MS, 5),
        }
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


def _milliseconds(minimum: int, maximum: int, step: int) -> NumberSelector:
    """Return a slider for a duration in milliseconds."""
    return NumberSelector(
        NumberSelectorConfig(
            min=minimum,
            max=maximum,
            step=step,
            unit_of_measurement="ms",
            mode=NumberSelectorMode.SLIDER,
        )
    )
