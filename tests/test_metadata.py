"""Offline checks of the integration's metadata, in the spirit of hassfest.

Home Assistant's package does not ship hassfest, so the checks that matter for a
custom integration are made here against what the installed package does ship:
the loader, the manifest type, the service description schema, the selectors,
the common strings and the quality scale files of the core integrations.
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, get_args, get_type_hints

import homeassistant
import pytest
import voluptuous as vol
from awesomeversion import AwesomeVersion
from homeassistant import const as ha_const
from homeassistant.core import HomeAssistant
from homeassistant.helpers import selector
from homeassistant.helpers.service import _SERVICES_SCHEMA
from homeassistant.loader import Manifest, async_get_integration
from homeassistant.util.yaml import load_yaml_dict
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from custom_components.rtsp_announcer import config_flow
from custom_components.rtsp_announcer.const import DOMAIN
from custom_components.rtsp_announcer.services import ANNOUNCE_FIELDS, ANNOUNCE_SCHEMA
from tests.test_requirements import (
    FLOOR,
    NEWEST_TESTED,
    RELEASES,
    Release,
    parse_constraints,
)

ROOT = Path(__file__).parent.parent
INTEGRATION = ROOT / "custom_components" / DOMAIN
TRANSLATIONS = INTEGRATION / "translations"
HA_PACKAGE = Path(homeassistant.__file__).parent
HA_COMPONENTS = HA_PACKAGE / "components"

# The Integration Quality Scale of the newest release, by tier: the ALL_RULES
# of hassfest (script/hassfest/quality_scale.py) in Home Assistant 2026.10,
# which added docs-conditions and docs-triggers to 2025.4's rules. The test
# below checks it against the rules the installed core integrations use.
QUALITY_SCALE_RELEASE = "2026.10.0"
QUALITY_SCALE: dict[str, tuple[str, ...]] = {
    "bronze": (
        "action-setup",
        "appropriate-polling",
        "brands",
        "common-modules",
        "config-flow",
        "config-flow-test-coverage",
        "dependency-transparency",
        "docs-actions",
        "docs-conditions",
        "docs-high-level-description",
        "docs-installation-instructions",
        "docs-removal-instructions",
        "docs-triggers",
        "entity-event-setup",
        "entity-unique-id",
        "has-entity-name",
        "runtime-data",
        "test-before-configure",
        "test-before-setup",
        "unique-config-entry",
    ),
    "silver": (
        "action-exceptions",
        "config-entry-unloading",
        "docs-configuration-parameters",
        "docs-installation-parameters",
        "entity-unavailable",
        "integration-owner",
        "log-when-unavailable",
        "parallel-updates",
        "reauthentication-flow",
        "test-coverage",
    ),
    "gold": (
        "devices",
        "diagnostics",
        "discovery",
        "discovery-update-info",
        "docs-data-update",
        "docs-examples",
        "docs-known-limitations",
        "docs-supported-devices",
        "docs-supported-functions",
        "docs-troubleshooting",
        "docs-use-cases",
        "dynamic-devices",
        "entity-category",
        "entity-device-class",
        "entity-disabled-by-default",
        "entity-translations",
        "exception-translations",
        "icon-translations",
        "reconfiguration-flow",
        "repair-issues",
        "stale-devices",
    ),
    "platinum": ("async-dependency", "inject-websession", "strict-typing"),
}
ALL_RULES = frozenset(rule for rules in QUALITY_SCALE.values() for rule in rules)
STATUSES = frozenset({"done", "todo", "exempt"})

# hassfest's manifest schema, as far as plain values go.
IOT_CLASSES = frozenset(
    {
        "assumed_state",
        "calculated",
        "cloud_polling",
        "cloud_push",
        "local_polling",
        "local_push",
    }
)
HACS_KEYS = frozenset(
    {
        "name",
        "content_in_root",
        "zip_release",
        "filename",
        "hide_default_branch",
        "country",
        "homeassistant",
        "hacs",
        "persistent_directory",
        "render_readme",
    }
)
# Top-level sections hassfest accepts in an integration's strings.json.
STRINGS_SECTIONS = frozenset(
    {
        "title",
        "config",
        "options",
        "config_subentries",
        "selector",
        "device",
        "device_automation",
        "entity",
        "entity_component",
        "exceptions",
        "issues",
        "services",
        "system_health",
        "application_credentials",
        "conversation",
    }
)
SERVICE_FIELD_KEYS = frozenset(
    {"advanced", "collapsed", "default", "example", "fields", "filter"}
    | {"required", "selector"}
)

# Home Assistant rewords some of the strings that strings.json refers to. Its
# loader reads a custom integration's translations as they are (only Home
# Assistant's own build resolves `[%key:…%]` references), so en.json holds one
# wording whatever the release: any promised release's wording is accepted.
REWORDED_STRINGS: dict[str, dict[str, str]] = {
    "common::config_flow::abort::already_in_progress": {
        FLOOR.version: "Configuration flow is already in progress",
        NEWEST_TESTED.version: "This is already being configured. Finish the "
        "existing configuration before starting again.",
    },
    "common::config_flow::abort::reconfigure_successful": {
        FLOOR.version: "Re-configuration was successful",
        NEWEST_TESTED.version: "Reconfiguration was successful",
    },
}

_REFERENCE = re.compile(r"\[%key:([a-z0-9_]+(?:::[a-z0-9_@-]+)+)%\]")
_PLACEHOLDER = re.compile(r"(?<!\{)\{(\w+)\}(?!\})")


def load_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), path
    return data


@cache
def strings() -> dict[str, Any]:
    return load_json(INTEGRATION / "strings.json")


@cache
def manifest() -> dict[str, Any]:
    return load_json(INTEGRATION / "manifest.json")


@cache
def services() -> dict[str, Any]:
    return load_yaml_dict(INTEGRATION / "services.yaml")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """`{"a": {"b": "x"}}` becomes `{"a::b": "x"}`."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        path = f"{prefix}::{key}" if prefix else key
        if isinstance(value, Mapping):
            flat.update(flatten(value, path))
        else:
            assert isinstance(value, str), f"{path} is not a string"
            flat[path] = value
    return flat


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


@cache
def _source_strings(source: str) -> dict[str, str]:
    """Flattened strings a reference may point into: `common` or a domain."""
    if source == "common":
        return flatten(load_json(HA_PACKAGE / "strings.json")["common"])
    if source == DOMAIN:
        return flatten(strings())
    return flatten(load_json(HA_COMPONENTS / source / "strings.json"))


def resolve(text: str, depth: int = 0) -> str:
    """Replace `[%key:…%]` references the way Home Assistant's build does."""
    assert depth < 10, f"reference loop in {text!r}"

    def lookup(match: re.Match[str]) -> str:
        parts = match[1].split("::")
        if parts[0] == "common":
            source, path = "common", parts[1:]
        else:
            assert parts[0] == "component", f"unknown reference {match[0]}"
            source, path = parts[1], parts[2:]
        target = _source_strings(source).get("::".join(path))
        assert target is not None, f"{match[0]} points nowhere"
        return resolve(target, depth + 1)

    return _REFERENCE.sub(lookup, text)


def resolved_strings() -> dict[str, str]:
    return {key: resolve(value) for key, value in flatten(strings()).items()}


def service_fields(service: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Every field of a service, looking into sections."""
    for name, field in (service.get("fields") or {}).items():
        if isinstance(field, Mapping) and "fields" in field:
            yield from field["fields"].items()
        else:
            yield name, field


def test_manifest_keys_and_types() -> None:
    data = manifest()
    hints = get_type_hints(Manifest)
    assert set(data) <= set(hints), f"unknown keys: {set(data) - set(hints)}"
    for key in (
        "domain",
        "name",
        "version",
        "codeowners",
        "config_flow",
        "documentation",
        "issue_tracker",
        "iot_class",
        "integration_type",
        "requirements",
    ):
        assert key in data, f"manifest.json lacks {key}"
    assert data["domain"] == DOMAIN == INTEGRATION.name
    assert isinstance(data["name"], str)
    assert data["name"].strip()
    assert data["config_flow"] is True
    assert data["iot_class"] in IOT_CLASSES
    assert data["integration_type"] in get_args(hints["integration_type"])
    for key in ("documentation", "issue_tracker"):
        assert isinstance(data[key], str)
        assert data[key].startswith("https://"), key
    assert data["codeowners"]
    assert all(
        re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner) for owner in data["codeowners"]
    )
    assert all(isinstance(logger, str) for logger in data.get("loggers", []))
    # hassfest: domain and name first, then alphabetical.
    keys = list(data)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])


def test_manifest_version_is_accepted_by_the_loader() -> None:
    version = AwesomeVersion(manifest()["version"])
    # The loader refuses custom integrations whose version has no strategy.
    assert version.strategy is not version.strategy.UNKNOWN


def test_requirements_leave_home_assistant_pins_alone() -> None:
    """A package Home Assistant constrains is listed bare; any other is pinned.

    Home Assistant installs requirements under its own package constraints and
    changes its pins every few releases (numpy, av): a version in the manifest
    for one of its packages breaks every release that pins another, while a bare
    name resolves to the pin of the release it is installed on. Everything else
    is pinned exactly. tests/test_requirements.py asks pip's resolver the same
    for each promised release.
    """
    allowed = parse_constraints(
        (HA_PACKAGE / "package_constraints.txt").read_text(encoding="utf-8"),
        f"Home Assistant {ha_const.__version__}",
    )
    for text in manifest()["requirements"]:
        requirement = Requirement(text)
        assert text == str(requirement), f"{text}: write it as {requirement}"
        assert requirement.url is None, text
        assert requirement.marker is None, text
        name = canonicalize_name(requirement.name)
        if name in allowed:
            assert not requirement.specifier, (
                f"{text}: Home Assistant {ha_const.__version__} constrains "
                f"{name} ({allowed[name]}): list it without a version"
            )
        else:
            specifiers = list(requirement.specifier)
            assert len(specifiers) == 1, f"{text} is not pinned"
            assert specifiers[0].operator == "==", f"{text} is not pinned"


def test_dependencies_are_home_assistant_components() -> None:
    for key in ("dependencies", "after_dependencies"):
        for dependency in manifest().get(key, []):
            assert (HA_COMPONENTS / dependency / "manifest.json").is_file(), dependency


async def test_loader_accepts_the_integration(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert not integration.is_built_in
    assert integration.version == AwesomeVersion(manifest()["version"])
    assert integration.config_flow
    for dependency in integration.dependencies:
        assert (await async_get_integration(hass, dependency)).is_built_in


def test_hacs_json() -> None:
    data = load_json(ROOT / "hacs.json")
    assert set(data) <= HACS_KEYS, f"unknown keys: {set(data) - HACS_KEYS}"
    assert isinstance(data["name"], str)
    assert data["name"] == manifest()["name"]
    assert isinstance(data["render_readme"], bool)
    assert isinstance(data["homeassistant"], str)
    minimum = AwesomeVersion(data["homeassistant"])
    assert minimum.strategy is minimum.strategy.CALVER
    assert minimum <= AwesomeVersion(ha_const.__version__)


def test_promised_minimum_is_the_tested_floor() -> None:
    """hacs.json and the blueprints promise the month of the floor release.

    The floor (FLOOR in tests/test_requirements.py) is the release the floor
    test environment runs; hacs.json and the blueprints name that month's first
    release.
    """
    floor = AwesomeVersion(FLOOR.version)
    promised = f"{floor.major}.{floor.minor}.0"
    assert load_json(ROOT / "hacs.json")["homeassistant"] == promised
    blueprints = sorted((ROOT / "blueprints").rglob("*.yaml"))
    assert blueprints
    for path in blueprints:
        metadata = load_yaml_dict(path)["blueprint"]
        assert metadata["homeassistant"]["min_version"] == promised, path.name


def test_test_environments_run_the_promised_releases() -> None:
    """Each requirements file installs the release RELEASES names for it."""
    plugin = "pytest-homeassistant-custom-component"
    environments: dict[str, tuple[str, Release]] = {}
    for name, release in (
        ("requirements_test_floor.txt", FLOOR),
        ("requirements_test.txt", NEWEST_TESTED),
    ):
        text = (ROOT / name).read_text(encoding="utf-8")
        assert f"Home Assistant {release.version} " in text, name
        pin = re.search(rf"^{plugin}==(\S+)$", text, re.MULTILINE)
        assert pin is not None, f"{name} does not pin {plugin}"
        environments[pin[1]] = (name, release)
    installed = importlib.metadata.version(plugin)
    assert installed in environments, (
        f"{plugin} {installed} is pinned by no requirements file: run scripts/setup"
    )
    name, release = environments[installed]
    assert ha_const.__version__ == release.version, name
    python = tuple(int(part) for part in release.python.split("."))
    assert sys.version_info[:2] == python[:2], name
    assert sys.version_info[:3] >= python, name


def test_services_yaml_is_valid() -> None:
    data = _SERVICES_SCHEMA(services())
    for service_name, service in data.items():
        if target := service.get("target"):
            selector.TargetSelector(target)
        for name, field in service_fields(service):
            assert set(field) <= SERVICE_FIELD_KEYS, f"{service_name}.{name}"
            if "selector" not in field:
                continue
            selector.validate_selector(field["selector"])
            if "default" in field:
                vol.Schema(selector.selector(field["selector"]))(field["default"])


def test_announce_schema_matches_services_yaml() -> None:
    announce = services()["announce"]
    fields = dict(service_fields(announce))
    schema_keys = {str(key) for key in ANNOUNCE_FIELDS}
    assert schema_keys == set(fields)
    defaults = ANNOUNCE_SCHEMA({"entity_id": "media_player.hall"})
    for name, field in fields.items():
        if "default" in field:
            assert defaults[name] == field["default"], name
        else:
            assert name not in defaults or defaults[name] == {}, name


def test_services_and_strings_agree() -> None:
    described = strings().get("services", {})
    assert set(described) == set(services())
    for service_name, service in services().items():
        texts = described[service_name]
        assert texts.get("name"), service_name
        assert texts.get("description"), service_name
        fields = dict(service_fields(service))
        field_texts = texts.get("fields", {})
        assert set(field_texts) == set(fields), service_name
        for name in fields:
            assert field_texts[name].get("name"), f"{service_name}.{name}"
            assert field_texts[name].get("description"), f"{service_name}.{name}"
        for field in fields.values():
            config = (field.get("selector") or {}).get("select") or {}
            if key := config.get("translation_key"):
                labels = strings()["selector"][key]["options"]
                assert set(labels) == {str(option) for option in config["options"]}


def test_icons_cover_services_and_entities() -> None:
    icons = load_json(INTEGRATION / "icons.json")
    assert set(icons.get("services", {})) == set(services())
    for service_name, icon in icons["services"].items():
        assert icon["service"].startswith("mdi:"), service_name
    entity_icons = icons.get("entity", {})
    entity_strings = strings().get("entity", {})
    for platform, keys in entity_icons.items():
        for key, icon in keys.items():
            assert key in entity_strings.get(platform, {}), f"{platform}.{key}"
            assert icon["default"].startswith("mdi:")


def test_strings_sections_are_known() -> None:
    assert set(strings()) <= STRINGS_SECTIONS


def test_config_flow_fields_have_labels() -> None:
    config_steps = strings()["config"]["step"]
    schemas = {
        ("config", "user"): config_flow.USER_SCHEMA,
        ("config", "reconfigure"): config_flow.RECONFIGURE_SCHEMA,
        ("options", "init"): config_flow._options_schema({}),
    }
    for (section, step), schema in schemas.items():
        texts = (config_steps if section == "config" else strings()[section]["step"])[
            step
        ]
        for key, validator in schema.schema.items():
            assert str(key) in texts["data"], f"{section}.{step}.{key}"
            assert str(key) in texts["data_description"], f"{section}.{step}.{key}"
            if isinstance(validator, selector.SelectSelector):
                translation_key = validator.config.get("translation_key")
                assert translation_key, f"{section}.{step}.{key}"
                labels = strings()["selector"][translation_key]["options"]
                options = {str(option) for option in validator.config["options"]}
                assert set(labels) == options


def test_translation_keys_used_in_code_exist() -> None:
    known = set(strings().get("exceptions", {})) | set(strings().get("issues", {}))
    entities = strings().get("entity", {})
    for path in INTEGRATION.glob("*.py"):
        source = path.read_text(encoding="utf-8")
        keys = re.findall(r'\btranslation_key="(\w+)"', source)
        keys += re.findall(
            r'\b(?:validation_error|failure|not_ready)\(\s*"(\w+)"', source
        )
        for key in keys:
            assert key in known, f"{path.name}: {key} is not in strings.json"
        for key in re.findall(r'_attr_translation_key = "(\w+)"', source):
            assert key in entities.get(path.stem, {}), f"{path.name}: {key}"


def test_en_json_is_strings_json_resolved() -> None:
    english = flatten(load_json(TRANSLATIONS / "en.json"))
    expected = resolved_strings()
    assert set(english) == set(expected)
    for key, text in english.items():
        if text == expected[key]:
            continue
        # Home Assistant's wording of this release differs from en.json's.
        reference = _REFERENCE.fullmatch(flatten(strings())[key])
        assert reference is not None, f"{key}: en.json says {text!r}"
        wordings = REWORDED_STRINGS.get(reference[1], {})
        assert text in wordings.values(), (
            f"{key}: en.json says {text!r}, {reference[0]} is "
            f"{expected[key]!r} in Home Assistant {ha_const.__version__}"
        )


def test_reworded_strings_are_home_assistants() -> None:
    for reference, wordings in REWORDED_STRINGS.items():
        assert len(set(wordings.values())) == len(wordings), reference
        assert set(wordings) <= {release.version for release in RELEASES}
        if (wording := wordings.get(ha_const.__version__)) is not None:
            assert resolve(f"[%key:{reference}%]") == wording, reference


@pytest.mark.parametrize(
    "path", sorted(TRANSLATIONS.glob("*.json")), ids=lambda path: path.stem
)
def test_translation_is_complete(path: Path) -> None:
    expected = resolved_strings()
    translated = flatten(load_json(path))
    assert set(translated) - set(expected) == set(), "keys strings.json lacks"
    assert set(expected) - set(translated) == set(), "untranslated keys"
    for key, text in translated.items():
        assert text.strip(), key
        assert "[%key:" not in text, key
        assert placeholders(text) == placeholders(expected[key]), key


def test_chinese_translation_exists() -> None:
    chinese = flatten(load_json(TRANSLATIONS / "zh-Hans.json"))
    # Names and descriptions are really translated, not copied.
    english = resolved_strings()
    copied = [
        key
        for key, text in chinese.items()
        if text == english[key] and re.search(r"[a-z]{4,}", text)
    ]
    assert copied == []


@cache
def installed_quality_scale_rules() -> frozenset[str]:
    """Every rule the core integrations' quality_scale.yaml files name."""
    rules: set[str] = set()
    for path in HA_COMPONENTS.glob("*/quality_scale.yaml"):
        rules |= set(load_yaml_dict(path)["rules"])
    return frozenset(rules)


def test_quality_scale_rule_list_is_the_installed_one() -> None:
    installed = installed_quality_scale_rules()
    # An older release knows fewer rules, never others; the release the list
    # comes from (and any newer one until hassfest changes) knows all of them.
    assert installed <= ALL_RULES
    if AwesomeVersion(ha_const.__version__) >= AwesomeVersion(QUALITY_SCALE_RELEASE):
        assert installed == ALL_RULES


def quality_scale() -> dict[str, dict[str, str]]:
    rules = load_yaml_dict(INTEGRATION / "quality_scale.yaml")["rules"]
    normalized: dict[str, dict[str, str]] = {}
    for name, value in rules.items():
        normalized[name] = {"status": value} if isinstance(value, str) else value
    return normalized


def test_quality_scale_lists_every_rule() -> None:
    rules = quality_scale()
    assert set(rules) == ALL_RULES
    for name, rule in rules.items():
        assert set(rule) <= {"status", "comment"}, name
        assert rule["status"] in STATUSES, name
        if rule["status"] != "done":
            comment = rule.get("comment")
            assert isinstance(comment, str), f"{name} needs a comment"
            assert comment.strip(), f"{name} needs a comment"


def _source() -> str:
    return "\n".join(path.read_text() for path in INTEGRATION.rglob("*.py"))


def test_quality_scale_matches_the_code() -> None:
    """Rules whose presence shows in the files are `done` exactly when present."""
    rules = quality_scale()
    source = _source()
    present = {
        "config-flow": manifest()["config_flow"],
        "diagnostics": (INTEGRATION / "diagnostics.py").is_file(),
        "reauthentication-flow": "async_step_reauth" in source,
        "reconfiguration-flow": "async_step_reconfigure" in source,
        "repair-issues": "async_create_issue" in source,
        "runtime-data": "runtime_data" in source,
        "entity-device-class": "_attr_device_class" in source,
        "icon-translations": (INTEGRATION / "icons.json").is_file(),
        "brands": (INTEGRATION / "brand" / "icon.png").is_file(),
    }
    for name, is_present in present.items():
        assert (rules[name]["status"] == "done") == is_present, name


def test_readme_documents_the_action() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name in dict(service_fields(services()["announce"])):
        assert f"`{name}`" in readme, name
    assert f"{DOMAIN}_announcement" in readme
    for event_type in ("started", "finished", "failed", "interrupted", "cancelled"):
        assert f"`{event_type}`" in readme, event_type
    assert "scripts/develop" in readme
    assert "scripts/test" in readme
