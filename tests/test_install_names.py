"""The top-level packages this project installs (`networks`, `prepare`) are this checkout's, and
no other installed distribution ships a package of the same name (CONTRIBUTING.md, "The
installed package names"): a collision fails here instead of shadowing one package silently."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

from commands import REPO

TOP_LEVEL = ("networks", "prepare")
DISTRIBUTION = "ultralight-vmunet"


def other_providers(package: str, providers: dict[str, list[str]]) -> set[str]:
    """Distributions other than this project that ship the top-level ``package``."""
    return {name for name in providers.get(package, []) if name.lower().replace("_", "-") != DISTRIBUTION}


@pytest.mark.parametrize("package", TOP_LEVEL)
def test_no_other_distribution_ships_the_package(package):
    providers = importlib.metadata.packages_distributions()
    assert other_providers(package, providers) == set(), (
        f"another installed distribution ships a top-level '{package}' and collides with this project's: "
        "install ultralight-vmunet into a virtual environment of its own"
    )


@pytest.mark.parametrize("package", TOP_LEVEL)
def test_the_imported_package_is_this_checkout(package):
    module = importlib.import_module(package)
    assert Path(module.__file__).resolve().parent == REPO / package, f"'{package}' imported from {module.__file__}"


def test_a_foreign_provider_is_reported():
    """The check itself: a second distribution shipping `networks` is found."""
    providers = {"networks": ["ultralight-vmunet", "networks"], "prepare": ["ultralight_vmunet"]}
    assert other_providers("networks", providers) == {"networks"}
    assert other_providers("prepare", providers) == set()
