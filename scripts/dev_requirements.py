"""Print the Python requirements a dev instance needs that are not installed yet.

The dev instance runs with `--skip-pip`, so everything Home Assistant sets up on
its own at start-up (frontend, conversation, camera, …), everything the dev
configuration names and everything the integration depends on must already be
installed: this lists their requirements, following each integration's
dependencies, read from the installed Home Assistant's own manifests.

    python scripts/dev_requirements.py CONFIG_YAML MANIFEST_JSON
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from homeassistant import bootstrap
from homeassistant.util.package import is_installed

COMPONENTS = Path(bootstrap.__file__).parent / "components"
# Sets of integrations Home Assistant sets up by itself, by their names in
# homeassistant.bootstrap (not every release has each of them).
_BOOTSTRAP_SETS = (
    "CORE_INTEGRATIONS",
    "LOGGING_AND_HTTP_DEPS_INTEGRATIONS",
    "FRONTEND_INTEGRATIONS",
    "DEFAULT_INTEGRATIONS",
)
# Discovery listens beyond loopback: the dev configuration leaves it out.
_SKIPPED = {"bluetooth", "dhcp", "ssdp", "usb", "zeroconf", "go2rtc"}
_TOP_LEVEL_KEY = re.compile(r"^([a-z_][a-z0-9_]*):", re.MULTILINE)


def _manifest(domain: str) -> dict[str, object] | None:
    path = COMPONENTS / domain / "manifest.json"
    if not path.is_file():
        return None
    manifest: dict[str, object] = json.loads(path.read_text())
    return manifest


def _names(manifest: dict[str, object], key: str) -> list[str]:
    value = manifest.get(key, [])
    return [str(item) for item in value] if isinstance(value, list) else []


def needed(config_yaml: Path, own_manifest: Path) -> list[str]:
    """Requirements of every integration the dev instance loads, not installed."""
    todo: set[str] = set()
    for name in _BOOTSTRAP_SETS:
        todo.update(getattr(bootstrap, name, ()))
    todo.update(_TOP_LEVEL_KEY.findall(config_yaml.read_text()))
    own: dict[str, object] = json.loads(own_manifest.read_text())
    todo.update(_names(own, "dependencies"))
    todo.update(_names(own, "after_dependencies"))
    seen: set[str] = set()
    requirements: list[str] = []
    while todo:
        domain = todo.pop()
        if domain in seen or domain in _SKIPPED:
            continue
        seen.add(domain)
        manifest = _manifest(domain)
        if manifest is None:
            continue
        requirements.extend(_names(manifest, "requirements"))
        todo.update(_names(manifest, "dependencies"))
        todo.update(_names(manifest, "after_dependencies"))
    return sorted({r for r in requirements if not is_installed(r)})


if __name__ == "__main__":
    print(" ".join(needed(Path(sys.argv[1]), Path(sys.argv[2]))))
