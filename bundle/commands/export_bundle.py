"""Builds the standalone bundle: this folder plus a copy of the repository's ``networks`` package.

    python bundle/commands/export_bundle.py --out DIR

writes ``DIR/ultralight_vmunet/`` and ``DIR/ultralight_vmunet.zip`` (the folder, zipped: what
goes to a model zoo). The copy of ``networks/`` sits at the bundle root, where the configs'
``$import networks`` finds it when ``python -m monai.bundle`` runs from there, so the
standalone bundle needs neither this repository nor the project installed.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from pathlib import Path

logger = logging.getLogger("export_bundle")

BUNDLE_NAME = "ultralight_vmunet"
BUNDLE_DIR = Path(__file__).resolve().parents[1]
NETWORKS_DIR = BUNDLE_DIR.parent / "networks"
# outputs of the demo commands, caches, and this script (it needs the repository around it)
EXCLUDED = ("data", "runs", "eval", "predictions", "__pycache__", "*.pyc", ".gitignore", "export_bundle.py")


# a Markdown link whose target climbs out of bundle/docs/ past the bundle root: `[text](../../x)`
_LINK_OUT = re.compile(r"\[([^\]]+)\]\(\.\./\.\./([^)#\s]+)(#[^)\s]*)?\)")


def standalone_links(markdown: str) -> str:
    """``markdown`` of ``docs/`` with each link into the repository outside the bundle written as
    plain text naming the file, since the standalone bundle does not hold those files."""
    return _LINK_OUT.sub(lambda m: f"{m[1]} (`{m[2]}` in the ultralight-vmunet repository)", markdown)


def export_bundle(out: Path, overwrite: bool = False) -> tuple[Path, Path]:
    """Writes ``out/ultralight_vmunet/`` and its zip; returns both paths."""
    folder = out / BUNDLE_NAME
    if BUNDLE_DIR in (out.resolve(), *out.resolve().parents):
        raise ValueError(f"--out {out} lies inside the bundle {BUNDLE_DIR}: choose a folder outside it")
    if folder.exists():
        if not overwrite:
            raise FileExistsError(f"{folder} exists: pass --overwrite to replace it")
        shutil.rmtree(folder)
    if not (NETWORKS_DIR / "__init__.py").is_file():
        raise FileNotFoundError(f"{NETWORKS_DIR}: the network package to vendor is missing")
    missing = [p for p in ("models/model.pt", "configs/metadata.json") if not (BUNDLE_DIR / p).is_file()]
    if missing:
        raise FileNotFoundError(f"{BUNDLE_DIR}: missing {', '.join(missing)}")
    shutil.copytree(BUNDLE_DIR, folder, ignore=shutil.ignore_patterns(*EXCLUDED))
    for page in (folder / "docs").glob("*.md"):
        page.write_text(standalone_links(page.read_text()))
    shutil.copytree(NETWORKS_DIR, folder / "networks", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    archive = Path(shutil.make_archive(str(out / BUNDLE_NAME), "zip", root_dir=out, base_dir=BUNDLE_NAME))
    logger.info("wrote %s and %s", folder, archive)
    return folder, archive


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the bundle folder and zip")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier export in --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        export_bundle(args.out, args.overwrite)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        logger.error("error: %s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
