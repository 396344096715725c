"""Writes the table of every documented setting into the bundle's ``docs/settings.md``.

    python commands/settings_table.py     # from the bundle root, or with its path from anywhere

The settings a user is meant to change are the keys under the line
``# ---- settings users override ----`` of each config, up to the next blank line, each with
its meaning in the comment after it (:func:`documented_settings`). The table has one row per setting with its meaning (the comment after the key) and its default in each
config, ``-`` where a config does not have it. A test keeps that page and the configs in step.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # the bundle's `scripts` package
from scripts.setting_keys import CONFIG_DIR, SETTINGS_PAGE, config_names

logger = logging.getLogger(__name__)

SETTINGS_HEADER = "# ---- settings users override ----"
TABLE_BEGIN = "<!-- settings table: written by `python commands/settings_table.py`, do not edit -->"
TABLE_END = "<!-- end of settings table -->"


def documented_settings(name: str) -> dict[str, tuple[str, str]]:
    """The settings block of ``configs/<name>.yaml``: key -> (default as written, meaning)."""
    lines = (CONFIG_DIR / f"{name}.yaml").read_text().splitlines()
    if SETTINGS_HEADER not in lines:
        return {}
    settings = {}
    for line in lines[lines.index(SETTINGS_HEADER) + 1 :]:
        if not line.strip():
            break
        # `key: value  # meaning`; a '#' inside a value (an id) has no space before it
        match = re.fullmatch(r"(\w+):\s*(.*?)\s*(?:\s#\s*(.*))?", line)
        if match:
            settings[match[1]] = (match[2], match[3] or "")
    return settings


def _shown(raw: str) -> str:
    """A default as the user would type it: quotes that YAML needs removed."""
    value = yaml.safe_load(raw)
    return f"`{value if isinstance(value, str) else raw}`"


def settings_table() -> str:
    """The markdown table of every documented setting, the config with most settings first."""
    documented = {name: documented_settings(name) for name in config_names()}
    configs = sorted((n for n in documented if documented[n]), key=lambda n: -len(documented[n]))
    keys = list(dict.fromkeys(key for name in configs for key in documented[name]))
    rows = [["setting", "meaning", *(f"`{name}.yaml`" for name in configs)], ["---"] * (2 + len(configs))]
    for key in keys:
        # one meaning per config where they differ (output_dir: what each config writes)
        meanings = (documented[n][key][1] for n in configs if key in documented[n] and documented[n][key][1])
        defaults = [_shown(documented[n][key][0]) if key in documented[n] else "-" for n in configs]
        rows.append([f"`{key}`", "; ".join(dict.fromkeys(meanings)), *defaults])
    return "".join("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |\n" for row in rows)


def readme_with_table(readme: str) -> str:
    """``readme`` with the text between the table markers replaced by :func:`settings_table`."""
    begin, end = readme.index(TABLE_BEGIN) + len(TABLE_BEGIN), readme.index(TABLE_END)
    return readme[:begin] + "\n\n" + settings_table() + "\n" + readme[end:]


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    SETTINGS_PAGE.write_text(readme_with_table(SETTINGS_PAGE.read_text()))
    logger.info("wrote the settings table into %s", SETTINGS_PAGE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
