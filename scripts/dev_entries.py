"""The dev instance's config entry (scripts/develop).

    python scripts/dev_entries.py has ENTRIES_FILE URL
        exits 0 if an RTSP Announcer entry in ENTRIES_FILE publishes to URL, else 1
    python scripts/dev_entries.py seed ENTRIES_FILE URL CONFIG_FLOW_PY
        writes ENTRIES_FILE with one entry "Announcer" publishing to URL

The seeded file is written with Home Assistant's own code (ConfigEntry.as_dict is
what as_storage_fragment serialises; the store's version, minor version and key),
so it is exactly what Home Assistant 2025.4 would have saved after the user step.
The entry's version is the integration's ConfigFlow.VERSION / MINOR_VERSION.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path


def has_entry(path: str, url: str) -> bool:
    """Whether an RTSP Announcer entry in the storage file publishes to `url`."""
    with Path(path).open(encoding="utf-8") as file:
        entries = json.load(file)["data"]["entries"]
    return any(
        e["domain"] == "rtsp_announcer" and e["data"].get("url") == url for e in entries
    )


def flow_versions(flow_file: str) -> tuple[int, int]:
    """VERSION and MINOR_VERSION of the integration's config flow (default 1, 1)."""
    versions = {"VERSION": 1, "MINOR_VERSION": 1}
    try:
        tree = ast.parse(Path(flow_file).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return 1, 1
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and any(
            getattr(base, "id", getattr(base, "attr", None)) == "ConfigFlow"
            for base in node.bases
        ):
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and stmt.targets[0].id in versions
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, int)
                ):
                    versions[stmt.targets[0].id] = stmt.value.value
    return versions["VERSION"], versions["MINOR_VERSION"]


def seed_entry(path: str, url: str, flow_file: str) -> None:
    """Write the storage file with one entry "Announcer" publishing to `url`."""
    # Only seeding needs Home Assistant.
    from homeassistant.config_entries import (
        SOURCE_USER,
        STORAGE_KEY,
        STORAGE_VERSION,
        STORAGE_VERSION_MINOR,
        ConfigEntry,
    )
    from homeassistant.helpers.json import save_json

    version, minor_version = flow_versions(flow_file)
    entry = ConfigEntry(
        domain="rtsp_announcer",
        title="Announcer",
        data={"name": "Announcer", "url": url},
        options={"rtsp_transport": "udp"},
        unique_id=url,
        source=SOURCE_USER,
        version=version,
        minor_version=minor_version,
        discovery_keys={},
        subentries_data=None,
    )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_json(
        path,
        {
            "version": STORAGE_VERSION,
            "minor_version": STORAGE_VERSION_MINOR,
            "key": STORAGE_KEY,
            "data": {"entries": [entry.as_dict()]},
        },
    )


if __name__ == "__main__":
    match sys.argv[1:]:
        case ["has", path, url]:
            sys.exit(0 if has_entry(path, url) else 1)
        case ["seed", path, url, flow_file]:
            seed_entry(path, url, flow_file)
        case _:
            sys.exit(__doc__)
