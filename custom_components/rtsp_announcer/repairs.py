"""Repairs: a stream with no voice at all, and the flow that gives it one.

Without espeak-ng (Home Assistant OS, the container image) a stream speaks
with another TTS entity: the one chosen in its options, else the first one
that exists. With none of them, `announce` with a message and
`notify.send_message` cannot speak; the issue says so, and its fix flow sets
the stream's default voice engine and reloads the stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.selector import EntitySelector, EntitySelectorConfig

from .audio import options as opt
from .const import DOMAIN

if TYPE_CHECKING:
    # Home Assistant 2025.4 has no name for a repair flow's result; typing only.
    import probatio as vol
    from homeassistant.components.repairs import RepairsFlowResult

    from .data import RtspAnnouncerConfigEntry
else:
    import voluptuous as vol

ISSUE_NO_VOICE: Final = "no_voice"


def no_voice_issue_id(entry_id: str) -> str:
    """The id of an entry's no-voice issue."""
    return f"{entry_id}_{ISSUE_NO_VOICE}"


@callback
def async_check_voice(hass: HomeAssistant, entry: RtspAnnouncerConfigEntry) -> None:
    """Raise the no-voice issue if the stream cannot speak, else clear it."""
    voices = entry.runtime_data.announcer.voices
    issue = no_voice_issue_id(entry.entry_id)
    if voices.default_engine() is not None:
        ir.async_delete_issue(hass, DOMAIN, issue)
        return
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue,
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key=ISSUE_NO_VOICE,
        translation_placeholders={"name": entry.title},
        data={"entry_id": entry.entry_id},
    )


@callback
def async_clear_voice_issue(hass: HomeAssistant, entry_id: str) -> None:
    """Remove the no-voice issue of an entry (unloaded or removed)."""
    ir.async_delete_issue(hass, DOMAIN, no_voice_issue_id(entry_id))


class NoVoiceRepairFlow(RepairsFlow):
    """Pick the TTS entity a stream speaks with."""

    def __init__(self, entry_id: str) -> None:
        """Fix the stream of the entry `entry_id`."""
        self._entry_id = entry_id

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Start with the choice of engine."""
        return await self.async_step_engine()

    async def async_step_engine(
        self, user_input: dict[str, Any] | None = None
    ) -> RepairsFlowResult:
        """Ask for a TTS entity; save it as the stream's default and reload."""
        entry = self.hass.config_entries.async_get_entry(self._entry_id)
        if entry is None:
            return self.async_abort(reason="entry_removed")
        if user_input is not None:
            options = {
                **entry.options,
                opt.VOICE_ENGINE.key: user_input[opt.VOICE_ENGINE.key],
            }
            self.hass.config_entries.async_update_entry(entry, options=options)
            self.hass.config_entries.async_schedule_reload(entry.entry_id)
            ir.async_delete_issue(self.hass, DOMAIN, no_voice_issue_id(entry.entry_id))
            return self.async_create_entry(data={})
        return self.async_show_form(
            step_id="engine",
            data_schema=vol.Schema(
                {
                    vol.Required(opt.VOICE_ENGINE.key): EntitySelector(
                        EntitySelectorConfig(domain="tts")
                    )
                }
            ),
            description_placeholders={"name": entry.title},
        )


async def async_create_fix_flow(
    hass: HomeAssistant,
    issue_id: str,
    data: dict[str, str | int | float | None] | None,
) -> RepairsFlow:
    """Create the fix flow of an issue of ours."""
    entry_id = "" if data is None else str(data.get("entry_id") or "")
    return NoVoiceRepairFlow(entry_id)
