"""The settings of each bundle config, and the check that runs before anything else.

Each config's ``initialize`` list starts with ``$scripts.settings.check('<config>')``
(``initialize`` is what ``python -m monai.bundle run`` evaluates before the run itself):

1. every top-level key of the running config must be one the named configs define
   (``configs/<config>.yaml``). A key typed on the command line, in an ``--args_file`` or in
   an extra config file that they do not define stops the run with the closest known keys,
   or with the config that does define it. Keys are read from the configs themselves, so a
   key added to a config is accepted at once. Nested overrides (``--train#trainer#max_epochs``)
   of a key the config defines pass, as do the ids MONAI's experiment tracking adds.
   (:mod:`scripts.setting_keys`).
2. values typed on the command line as strings get the types of their defaults
   (:mod:`scripts.setting_types`); then the values of the settings in
   :data:`scripts.setting_rules.RULES` are checked (types, ranges, the device, the folders,
   the checkpoint), every problem named with its key and the fix; a setting whose expression
   fails is named with the error.

The lists of files are not made here: a config must parse, and ``initialize`` pass, before
its data exist (MONAI's ``create_workflow`` runs ``initialize``). :func:`check_data`, the
first expression of each config's ``run``, makes them, so that a missing split or file
stops the run before any image is read.

The settings a user is meant to change, with their meanings, are documented by
``python commands/settings_table.py`` (``commands/settings_table.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from monai.bundle import ConfigParser
from monai.bundle.config_item import ConfigExpression
from monai.bundle.reference_resolver import ReferenceResolver

from .datalist import DeferredList
from .errors import SettingsError, real_error, report_errors_plainly
from .setting_keys import BUNDLE_DIR, CONFIG_DIR, unknown_key_problems
from .setting_rules import RULES
from .setting_types import read_typed_values

logger = logging.getLogger(__name__)

PACKAGE = __name__.rpartition(".")[0]  # `scripts`, as the configs import it


def running_config() -> ConfigParser:
    """The ConfigParser evaluating the current expression.

    MONAI hands an expression no handle to its config (its globals are shared by every config
    of the process), and only the running config shows which keys the command line, an args
    file or an extra config file added. The parser is found as the ``self`` of the nearest
    ConfigParser method on the call stack, where MONAI evaluates expressions; a test checks
    that it still does.
    """
    frame = inspect.currentframe()
    while frame is not None:
        owner = frame.f_locals.get("self")
        if isinstance(owner, ConfigParser):
            return owner
        frame = frame.f_back
    raise RuntimeError(
        "no ConfigParser on the call stack: scripts.settings runs from a bundle config's expressions; "
        "if it does and this MONAI version evaluates them elsewhere, update scripts.settings.running_config"
    )


def _use_bundle(config: ConfigParser, configs: tuple[str, ...]) -> ModuleType | None:
    """Makes ``config`` evaluate ``scripts`` as the package of the folder its ``bundle_root`` names.

    The configs' ``initialize`` puts that folder first on ``sys.path`` (MONAI adds the bundle
    folder only in ``run()``, after ``initialize``), but the config's imports ran before that:
    ``$import scripts`` bound MONAI's placeholder for a failed import, or a ``scripts`` imported
    earlier (another bundle's, or a folder of that name where the process started), which stays
    in ``sys.modules``. Returns the settings module of the right bundle when this one is not
    it, None once the config's imports are this bundle's.

    Raises:
        SettingsError: ``bundle_root`` is not a folder holding this bundle's configs and helpers.
    """
    root = Path(str(config.get_parsed_content("bundle_root"))).absolute()
    needed = [f"configs/{name}.yaml" for name in configs] + ["scripts/__init__.py", "scripts/settings.py"]
    missing = [part for part in needed if not (root / part).is_file()]
    if missing:
        raise SettingsError(
            f"bundle_root {root}: not a complete bundle folder (no {', '.join(missing)}); "
            "run from the bundle folder or give --bundle_root the folder that holds configs/ and scripts/"
        )
    entry = str(root)
    sys.path[:] = [entry] + [path for path in sys.path if path != entry]
    if root.resolve() != BUNDLE_DIR:
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
        return importlib.import_module(f"{PACKAGE}.settings")
    # the config's imports once more, now that the bundle is on sys.path: they bind the names
    # (`scripts`, a standalone bundle's vendored `networks`) in the globals its expressions share
    for statement in config.get("imports", []):
        if ConfigExpression.is_import_statement(statement):
            ConfigExpression(statement, globals=config.globals).evaluate()
    return None


def from_train(id: str) -> Any:
    """``configs/train.yaml``'s item ``id``, its references resolved against the running config.

    ``evaluate.yaml`` takes the network and the preprocessing from ``train.yaml`` so that the
    two cannot drift apart. A ``%configs/train.yaml#id`` macro would name the file relative to
    the current folder, which is not the bundle's when MONAI's tools run it from elsewhere.

    Raises:
        SettingsError: the item refers to a key the running config does not define.
    """
    config = running_config()
    item = ConfigParser.load_config_file(CONFIG_DIR / "train.yaml")[id]
    values = {}
    own = ReferenceResolver.normalize_id(id)
    for ref in ReferenceResolver.find_refs_in_config(item, own):
        if ref == own or ref.startswith(f"{own}{ReferenceResolver.sep}"):
            continue  # the item's own parts
        if ref not in config:
            raise SettingsError(f"{id}: configs/train.yaml's {id} needs {ref}, which the running config does not define; add it")
        values[ref] = config.get_parsed_content(ref)
    part = ConfigParser({id: item}, globals=config.globals)
    for ref, value in values.items():
        part.set(value, ref, recursive=True)
    return part.get_parsed_content(id)


def _dataset_data_ids(config: ConfigParser) -> list[str]:
    """The ``data`` of each dataset: ``dataset#data`` and one level down (``train#dataset#data``)."""
    sep = ReferenceResolver.sep
    content = config.get()
    sections = [content] + [value for value in content.values() if isinstance(value, dict)]
    prefixes = [""] + [f"{key}{sep}" for key, value in content.items() if isinstance(value, dict)]
    return [
        f"{prefix}dataset{sep}data"
        for prefix, section in zip(prefixes, sections)
        if isinstance(section.get("dataset"), dict) and "data" in section["dataset"]
    ]


def check(*configs: str) -> None:
    """Checks the running config against ``configs/<configs>.yaml`` before anything runs.

    First it makes the running config use the helpers of the bundle its ``bundle_root`` names
    (:func:`_use_bundle`), wherever the process runs.

    Raises:
        SettingsError: one line per unknown key, else one line per bad value (naming the key
            and the fix).
    """
    report_errors_plainly()
    config = running_config()
    other = _use_bundle(config, configs)
    if other is not None:
        return other.check(*configs)
    problems = unknown_key_problems(set(config.get()), list(configs))
    if problems:
        raise SettingsError("\n".join(problems))
    problems = read_typed_values(config)
    if problems:  # the other settings' expressions read the device
        raise SettingsError("\n".join(problems))
    for key, rule in RULES.items():
        if key not in config:
            continue
        try:
            value = config.get_parsed_content(key)
        except Exception as error:  # an expression typed on the command line, or one reading such a value
            problems.append(f"{key}: cannot be evaluated ({type(real_error(error)).__name__}: {real_error(error)})")
            continue
        problem = rule(value, config)
        if problem:
            problems.append(f"{key} {value}: {problem}")
    if problems:
        raise SettingsError("\n".join(problems))
    logger.info("settings checked against %s", ", ".join(f"configs/{name}.yaml" for name in configs))


def check_data() -> None:
    """Lists the files of every dataset of the running config, before the run reads any.

    The first expression of each config's ``run``: the datalists are made lazily
    (:class:`scripts.datalist.DeferredList`) so that a config parses before its data exist,
    and this makes them, so that a missing split or an unreadable file stops the run before
    anything is trained or written.

    A list given in place of a datalist (MONAI Label's train task gives ``train#dataset#data``
    and ``validate#dataset#data`` from its datastore) must hold cases, except the validation
    one: without validation cases, training keeps the last epoch's weights.

    Raises:
        SettingsError: the first list that cannot be made, naming the file and the fix, or
            an empty one.
    """
    config = running_config()
    for data_id in _dataset_data_ids(config):
        data = config.get_parsed_content(data_id)
        if isinstance(data, DeferredList):
            try:
                data.items()
            except (OSError, ValueError) as error:
                raise SettingsError(str(error)) from error
        elif len(data) == 0 and not data_id.startswith(f"validate{ReferenceResolver.sep}"):
            raise SettingsError(
                f"{data_id}: no cases, nothing to run on. In MONAI Label: save final labels for some images "
                "before training; on the command line: leave it to dataset_dir (a folder made by `python -m prepare`)"
            )
