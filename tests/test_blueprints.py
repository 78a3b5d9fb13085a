"""The automation blueprints: valid for Home Assistant, and they really announce.

Each blueprint is loaded with Home Assistant's blueprint machinery, its inputs
substituted, the result validated as an automation, and finally run as an
automation whose `rtsp_announcer.announce` is a mock that validates its data
with the real action schema.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from awesomeversion import AwesomeVersion
from homeassistant import const as ha_const
from homeassistant.components.automation.config import (
    AUTOMATION_BLUEPRINT_SCHEMA,
    ValidationStatus,
    async_validate_config_item,
)
from homeassistant.components.blueprint import models
from homeassistant.components.blueprint.errors import MissingInput
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import load_yaml_dict
from pytest_homeassistant_custom_component.common import async_mock_service

from custom_components.rtsp_announcer.const import DOMAIN, SERVICE_ANNOUNCE
from custom_components.rtsp_announcer.services import ANNOUNCE_SCHEMA

ROOT = Path(__file__).parent.parent
BLUEPRINTS = ROOT / "blueprints" / "automation"
BINARY_SENSOR = f"{DOMAIN}/announce_on_binary_sensor.yaml"
QUEUE_NUMBER = f"{DOMAIN}/announce_queue_number.yaml"
STREAMS = ["media_player.hall", "media_player.garden"]
SOURCE_URL = (
    "https://github.com/rtsp-announcer/rtsp_announcer/blob/main/blueprints/automation/"
)


def load_blueprint(path: str) -> models.Blueprint:
    return models.Blueprint(
        load_yaml_dict(BLUEPRINTS / path),
        expected_domain="automation",
        path=path,
        schema=AUTOMATION_BLUEPRINT_SCHEMA,
    )


def instance(path: str, **inputs: Any) -> dict[str, Any]:
    """An automation made from the blueprint, as it is stored."""
    return {"use_blueprint": {"path": path, "input": inputs}}


@pytest.fixture
def blueprint_folder(tmp_path: Path) -> Iterator[Path]:
    """Serve the repository's blueprints as the instance's automation blueprints."""
    folder = tmp_path / "automation"
    shutil.copytree(BLUEPRINTS, folder)
    with patch.object(
        models.DomainBlueprints,
        "blueprint_folder",
        new_callable=PropertyMock,
        return_value=folder,
    ):
        yield folder


@pytest.fixture
def announce_calls(hass: HomeAssistant) -> list[ServiceCall]:
    calls: list[ServiceCall] = async_mock_service(
        hass, DOMAIN, SERVICE_ANNOUNCE, schema=ANNOUNCE_SCHEMA
    )
    return calls


async def setup_automations(hass: HomeAssistant, *configs: dict[str, Any]) -> None:
    assert await async_setup_component(
        hass, "automation", {"automation": list(configs)}
    )
    await hass.async_block_till_done()


async def automate(
    hass: HomeAssistant,
    path: str,
    watched: str,
    states: tuple[str, str],
    attributes: dict[str, Any] | None = None,
    **inputs: Any,
) -> None:
    """One automation from the blueprint, then one change of the entity it watches."""
    before, after = states
    hass.states.async_set(watched, before, attributes)
    await setup_automations(hass, instance(path, **inputs))
    hass.states.async_set(watched, after, attributes)
    await hass.async_block_till_done()


def substitute(path: str, **inputs: Any) -> dict[str, Any]:
    """The automation the blueprint makes of these inputs, validated against them."""
    blueprint_inputs = models.BlueprintInputs(
        load_blueprint(path), instance(path, **inputs)
    )
    blueprint_inputs.validate()
    config: dict[str, Any] = blueprint_inputs.async_substitute()
    return config


async def assert_valid_automation(
    hass: HomeAssistant, name: str, config: dict[str, Any]
) -> None:
    validated = await async_validate_config_item(hass, name, config)
    assert validated is not None
    assert validated.validation_status is ValidationStatus.OK


def test_every_blueprint_is_tested() -> None:
    found = {str(path.relative_to(BLUEPRINTS)) for path in BLUEPRINTS.rglob("*.yaml")}
    assert found == {BINARY_SENSOR, QUEUE_NUMBER}


@pytest.mark.parametrize("path", [BINARY_SENSOR, QUEUE_NUMBER])
def test_blueprint_is_valid(path: str) -> None:
    blueprint = load_blueprint(path)
    assert blueprint.domain == "automation"
    assert blueprint.validate() is None, "needs a newer Home Assistant"
    minimum = blueprint.metadata["homeassistant"]["min_version"]
    assert AwesomeVersion(minimum) <= AwesomeVersion(ha_const.__version__)
    assert blueprint.metadata["source_url"] == SOURCE_URL + path
    assert blueprint.metadata["description"]
    for name, spec in blueprint.inputs.items():
        assert spec["name"], name
        assert spec["description"], name
        assert "selector" in spec, name


async def test_binary_sensor_blueprint_substitutes_and_validates(
    hass: HomeAssistant,
) -> None:
    config = substitute(
        BINARY_SENSOR,
        binary_sensors=["binary_sensor.front_door"],
        streams=STREAMS,
        message="The front door is open.",
    )
    assert config["triggers"][0]["entity_id"] == ["binary_sensor.front_door"]
    announce = config["actions"][0]["else"][0]
    assert announce["action"] == f"{DOMAIN}.{SERVICE_ANNOUNCE}"
    assert announce["target"] == {"entity_id": STREAMS}
    assert announce["data"]["message"] == "The front door is open."
    assert announce["data"]["preannounce"] is True

    await assert_valid_automation(hass, "door", config)


async def test_queue_number_blueprint_substitutes_and_validates(
    hass: HomeAssistant,
) -> None:
    config = substitute(
        QUEUE_NUMBER,
        number_entity="input_number.ticket",
        streams=STREAMS,
        language="zh-Hans",
    )
    assert config["triggers"][0]["entity_id"] == "input_number.ticket"
    assert config["variables"]["counter"] == "1"
    assert config["variables"]["language"] == "zh-Hans"

    await assert_valid_automation(hass, "queue", config)


@pytest.mark.parametrize(
    ("path", "inputs"),
    [
        (BINARY_SENSOR, {"streams": STREAMS}),
        (QUEUE_NUMBER, {"number_entity": "input_number.ticket"}),
    ],
)
def test_required_inputs(path: str, inputs: dict[str, Any]) -> None:
    blueprint_inputs = models.BlueprintInputs(
        load_blueprint(path), instance(path, **inputs)
    )
    with pytest.raises(MissingInput):
        blueprint_inputs.validate()


@pytest.mark.usefixtures("blueprint_folder")
async def test_binary_sensor_turning_on_announces(
    hass: HomeAssistant, announce_calls: list[ServiceCall]
) -> None:
    hass.states.async_set("binary_sensor.front_door", "off", {"friendly_name": "Door"})
    hass.states.async_set("binary_sensor.back_door", "off", {"friendly_name": "Back"})
    await setup_automations(
        hass,
        instance(
            BINARY_SENSOR,
            binary_sensors=["binary_sensor.front_door", "binary_sensor.back_door"],
            streams=STREAMS,
        ),
    )

    hass.states.async_set("binary_sensor.front_door", "on", {"friendly_name": "Door"})
    await hass.async_block_till_done()

    assert len(announce_calls) == 1
    data = announce_calls[0].data
    assert data["entity_id"] == STREAMS
    assert data["message"] == "Attention: Door."
    assert data["preannounce"] is True
    assert "preannounce_media_id" not in data
    assert data["volume"] == 1.0
    assert data["priority"] == "normal"

    # Only off -> on counts.
    hass.states.async_set("binary_sensor.front_door", "off", {"friendly_name": "Door"})
    hass.states.async_set("binary_sensor.back_door", "unavailable")
    await hass.async_block_till_done()
    assert len(announce_calls) == 1

    hass.states.async_set("binary_sensor.front_door", "on", {"friendly_name": "Door"})
    await hass.async_block_till_done()
    assert len(announce_calls) == 2


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        (
            {
                "message": "Someone rings: {{ trigger.to_state.name }}",
                "chime_sound": "media-source://media_source/local/ding.mp3",
                "volume": 0.6,
                "priority": "high",
            },
            {
                "message": "Someone rings: Doorbell",
                "preannounce_media_id": "media-source://media_source/local/ding.mp3",
                "volume": 0.6,
                "priority": "high",
            },
        ),
        (
            {"message": "Motion in the garden.", "chime": False},
            {"message": "Motion in the garden.", "preannounce": False},
        ),
    ],
    ids=["chime_sound_and_options", "without_chime"],
)
@pytest.mark.usefixtures("blueprint_folder")
async def test_binary_sensor_options(
    hass: HomeAssistant,
    announce_calls: list[ServiceCall],
    inputs: dict[str, Any],
    expected: dict[str, Any],
) -> None:
    await automate(
        hass,
        BINARY_SENSOR,
        "binary_sensor.bell",
        ("off", "on"),
        {"friendly_name": "Doorbell"},
        binary_sensors=["binary_sensor.bell"],
        streams=["media_player.hall"],
        **inputs,
    )

    assert len(announce_calls) == 1
    data = announce_calls[0].data
    assert data["entity_id"] == ["media_player.hall"]
    assert {key: data[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        ({}, "Number 42, counter 1"),
        ({"counter": "3"}, "Number 42, counter 3"),
        ({"counter": "3", "language": "zh-Hans"}, "请42号到3号窗口"),
        ({"counter": "B", "language": "zh-CN"}, "请42号到B号窗口"),
        (
            {"counter": "7", "message": "Ticket {{ number }}, desk {{ counter }}"},
            "Ticket 42, desk 7",
        ),
    ],
)
@pytest.mark.usefixtures("blueprint_folder")
async def test_queue_number_is_announced(
    hass: HomeAssistant,
    announce_calls: list[ServiceCall],
    inputs: dict[str, Any],
    expected: str,
) -> None:
    await automate(
        hass,
        QUEUE_NUMBER,
        "input_number.ticket",
        ("41.0", "42.0"),
        number_entity="input_number.ticket",
        streams=STREAMS,
        **inputs,
    )

    assert len(announce_calls) == 1
    data = announce_calls[0].data
    assert data["entity_id"] == STREAMS
    assert data["message"] == expected
    assert data["language"] == inputs.get("language", "en")
    assert data["preannounce"] is True


@pytest.mark.usefixtures("blueprint_folder")
async def test_queue_number_called_twice_chimes_once(
    hass: HomeAssistant, announce_calls: list[ServiceCall]
) -> None:
    await automate(
        hass,
        QUEUE_NUMBER,
        "input_number.ticket",
        ("0.0", "7.0"),
        number_entity="input_number.ticket",
        streams=["media_player.hall"],
        counter="2",
        times=2,
    )

    assert [call.data["message"] for call in announce_calls] == [
        "Number 7, counter 2",
        "Number 7, counter 2",
    ]
    assert [call.data["preannounce"] for call in announce_calls] == [True, False]


@pytest.mark.usefixtures("blueprint_folder")
async def test_queue_number_ignores_non_numbers_and_attributes(
    hass: HomeAssistant, announce_calls: list[ServiceCall]
) -> None:
    hass.states.async_set("input_number.ticket", "5.0")
    await setup_automations(
        hass,
        instance(QUEUE_NUMBER, number_entity="input_number.ticket", streams=STREAMS),
    )

    hass.states.async_set("input_number.ticket", "5.0", {"max": 99})
    hass.states.async_set("input_number.ticket", "unavailable")
    # Coming back from unavailable is not a new number being called.
    hass.states.async_set("input_number.ticket", "5.0")
    await hass.async_block_till_done()
    assert announce_calls == []

    hass.states.async_set("input_number.ticket", "6.0")
    await hass.async_block_till_done()
    assert [call.data["message"] for call in announce_calls] == ["Number 6, counter 1"]
