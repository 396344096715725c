"""Every command in the docs is checked: the fenced ``bash`` blocks of README.md, CONTRIBUTING.md,
docs/*.md and bundle/docs/*.md are parsed, and each command that names something of this
project is checked against it, without running it:

- ``python -m monai.bundle ...`` (also under ``torchrun``): its ``--config_file`` files exist,
  and for ``run`` every ``--key`` override (nested ids like ``validate#dataset#data`` too) and
  the run id are ids the configs define, read with MONAI's ``ConfigParser``;
- ``python -m prepare ...``: parses with ``prepare.cli.build_parser()``;
- ``python path.py ...``, ``python -m module ...`` and ``bash path.sh``: the file or module
  exists, and each ``--option`` of a script of this repository appears in its source;
- relative links of the same files lead to files (and headings) that exist, and the links of
  the bundle's docs that leave the bundle are rewritten by the standalone export.

A block starts in the repository root (the bundle root for bundle/docs/), and ``cd DIR`` moves
it. ``[--option VALUE]`` (optional parts of a synopsis) is checked as ``--option VALUE``.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from monai.bundle import ConfigParser

from prepare.cli import build_parser

from commands import BUNDLE, REPO

sys.path.insert(0, str(BUNDLE / "commands"))  # export_bundle.py is a command-line tool of the bundle
import export_bundle

DOCS = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md"), *(BUNDLE / "docs").glob("*.md")])
# `python -m monai.bundle run` options that are not config ids
BUNDLE_OPTIONS = {"config_file", "meta_file", "logging_file", "args_file", "tracking", "workflow_type", "init_id", "final_id"}
OPERATORS = {"&&", "||", ";", "|", "&"}


def bash_blocks(path: Path) -> Iterator[tuple[int, str]]:
    """(first line number, text) of each fenced ``bash`` block."""
    lines = path.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```bash":
            start = number
        elif start is not None and line.strip() == "```":
            yield start + 1, "\n".join(lines[start : number - 1])
            start = None


def commands(block: str) -> Iterator[list[str]]:
    """The simple commands of a block, as argv lists (continuations joined, comments dropped,
    split at ``&&``, ``;``, ``|``; shell keywords of loops dropped)."""
    for line in block.replace("\\\n", " ").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.commenters = ""
        lexer.wordchars += "#$[]{},:@%+"  # ids (`--train#trainer#max_epochs`), lists, variables
        argv: list[str] = []
        for token in [*lexer, ";"]:
            if token in OPERATORS:
                while argv and argv[0] in ("do", "then", "else", "time"):
                    argv = argv[1:]
                if argv and argv[0] not in ("for", "done", "fi", "if"):
                    yield argv
                argv = []
            else:
                argv.append(token)


def unbracketed(args: list[str]) -> list[str]:
    """``[--option VALUE]`` of a synopsis as ``--option VALUE`` (a list value such as ``[]`` stays)."""
    plain, optional = [], False
    for arg in args:
        if arg.startswith("[-"):
            arg, optional = arg[1:], True
        if optional and arg.endswith("]") and not arg.startswith("["):
            arg, optional = arg[:-1], False
        plain.append(arg)
    return plain


def config_files(value: str, cwd: Path) -> list[Path]:
    names = re.findall(r"'([^']+)'", value) if value.startswith("[") else [value]
    return [cwd / name for name in names]


def bundle_problems(args: list[str], cwd: Path) -> list[str]:
    """Problems of ``python -m monai.bundle ARGS`` run in ``cwd``."""
    if not args:
        return ["no monai.bundle command"]
    command, rest = args[0], args[1:]
    options: dict[str, str] = {}
    positional = []
    i = 0
    while i < len(rest):
        if rest[i].startswith("--"):
            key, _, value = rest[i][2:].partition("=")
            if not value and i + 1 < len(rest) and not rest[i + 1].startswith("--"):
                i, value = i + 1, rest[i + 1]
            options[key] = value
        else:
            positional.append(rest[i])
        i += 1
    problems = []
    files = config_files(options["config_file"], cwd) if "config_file" in options else []
    for key in ("meta_file",):
        if key in options:
            files_key = cwd / options[key]
            if not files_key.is_file():
                problems.append(f"--{key} {options[key]}: no such file in {cwd}")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        return [*problems, f"--config_file: no such file {', '.join(missing)}"]
    if command != "run" or not files:
        return problems
    parser = ConfigParser()
    parser.read_config([str(f) for f in files])
    for run_id in positional[:1]:
        if run_id not in parser:
            problems.append(f"run id {run_id!r}: not defined by {options['config_file']}")
    for key in options:
        if key not in BUNDLE_OPTIONS and key not in parser:
            problems.append(f"--{key}: not an id of {options['config_file']}")
    return problems


def module_file(module: str, cwd: Path) -> Path | None:
    """The source of ``module`` found from ``cwd`` (as ``python -m`` run there would), else None."""
    # the installed packages are found from any folder; the bundle's `scripts` only from its root
    roots = [cwd, REPO] if module.split(".")[0] in ("networks", "prepare") else [cwd]
    for root in roots:
        base = root.joinpath(*module.split("."))
        for candidate in (base.with_suffix(".py"), base / "__main__.py"):
            if candidate.is_file():
                return candidate
    return None


def options_in_source(args: list[str], source: Path) -> list[str]:
    text = source.read_text()
    return [
        f"{arg}: not an option of {source.name}" for arg in args if arg.startswith("--") and f'"{arg.split("=")[0]}"' not in text
    ]


def command_problems(argv: list[str], cwd: Path) -> list[str]:
    """What is wrong with one documented command run in ``cwd`` (empty: nothing found)."""
    while argv and re.fullmatch(r"\w+=\S*", argv[0]):  # VAR=value before the command
        argv = argv[1:]
    if not argv:
        return []
    program, args = Path(argv[0]).name, unbracketed(argv[1:])
    if program == "torchrun":
        if "-m" not in args:
            return ["torchrun without -m MODULE"]
        program, args = "python", args[args.index("-m") :]
    if program == "bash":
        script = next((a for a in args if not a.startswith("-")), None)
        return [] if script is None or (cwd / script).is_file() else [f"bash {script}: no such file in {cwd}"]
    if not re.fullmatch(r"python3?", program) or not args:
        return []
    if args[0] == "-m":
        module, rest = args[1], args[2:]
        if module == "monai.bundle":
            return bundle_problems(rest, cwd)
        if module == "prepare":
            try:
                build_parser().parse_args(rest)
            except SystemExit:
                return [f"python -m prepare {' '.join(rest)}: refused by prepare's parser"]
            return []
        source = module_file(module, cwd)
        if source is not None:
            return options_in_source(rest, source)
        if module.split(".")[0] in ("scripts", "networks", "prepare", "bench", "tests"):
            return [f"python -m {module}: no such module in {cwd}"]
        return [] if importlib.util.find_spec(module) is not None else [f"python -m {module}: not installed"]
    if args[0].endswith(".py"):
        script = cwd / args[0]
        return options_in_source(args[1:], script) if script.is_file() else [f"python {args[0]}: no such file in {cwd}"]
    return []


def block_problems(block: str, cwd: Path) -> list[str]:
    problems = []
    for argv in commands(block):
        if argv[0] == "cd" and len(argv) == 2:
            cwd = (cwd / argv[1]).resolve()
            continue
        problems += [f"{' '.join(argv)}: {problem}" for problem in command_problems(argv, cwd)]
    return problems


def documented_blocks() -> Iterator[tuple[str, str, Path]]:
    for path in DOCS:
        start = BUNDLE if path.is_relative_to(BUNDLE) else REPO
        for line, block in bash_blocks(path):
            yield f"{path.relative_to(REPO)}:{line}", block, start


@pytest.mark.parametrize(
    ("where", "block", "cwd"), list(documented_blocks()), ids=lambda v: v if isinstance(v, str) and ":" in v else ""
)
def test_documented_commands(where, block, cwd):
    assert block_problems(block, cwd) == [], where


def test_every_guide_has_a_command_block_that_is_checked():
    blocks = list(documented_blocks())
    assert len(blocks) >= 20
    checked = [argv for _, block, _ in blocks for argv in commands(block) if argv[:3] == ["python", "-m", "monai.bundle"]]
    assert len(checked) >= 10, "the bundle commands are found in the docs"


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            "cd bundle\npython -m monai.bundle run training --config_file configs/train.yaml --num_epoch 20",
            "--num_epoch: not an id",
        ),
        (
            "cd bundle && python -m monai.bundle run --config_file configs/train.yaml --validate#dataset#datum []",
            "--validate#dataset#datum",
        ),
        ("cd bundle && python -m monai.bundle run trainig --config_file configs/train.yaml", "run id 'trainig'"),
        ("cd bundle && python -m monai.bundle run --config_file configs/trian.yaml", "no such file"),
        ("python -m prepare isic2018 --src A --out B --mask-extension .bmp", "refused by prepare's parser"),
        ("python -m prepare synthetic --out data/demo --num_images 200", "refused by prepare's parser"),
        ("python bench/bench_speeed.py", "no such file"),
        ("python bench/bench_speed.py --compiled", "--compiled: not an option"),
        ("cd bundle\npython -m scripts.settings_tabel", "no such module"),
        ("python -m networks.nnunet 101 --pvm_groups 2", "--pvm_groups: not an option"),
        ("bash bench/gpu_check.sh", "no such file"),
    ],
)
def test_a_broken_command_is_found(block, expected):
    """The checker itself: each deliberately broken command is reported, by the function that
    checks the docs."""
    (problem,) = block_problems(block, REPO)
    assert expected in problem


def test_commands_that_hold_pass_the_checker():
    block = """cd bundle
python -m monai.bundle run training --config_file "['configs/train.yaml','configs/multi_gpu_train.yaml']" \\
    --validate#dataset#data [] --train#trainer#max_epochs 2   # nested ids
python -m prepare isic2018 --src A --out B [--mask-ext .bmp]"""
    assert block_problems(block, REPO) == []


# ---- links ----

LINK = re.compile(r"\]\(([^)\s]+)\)")


def anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {anchor(line.lstrip("#")) for line in path.read_text().splitlines() if re.match(r"#{1,6} ", line)}


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_lead_somewhere(path):
    for target in LINK.findall(path.read_text()):
        if re.match(r"\w+:", target):
            continue
        file, _, fragment = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        assert resolved.exists(), f"{path.name}: link {target}"
        if fragment and resolved.suffix == ".md":
            assert fragment in anchors(resolved), f"{path.name}: no heading for #{fragment} in {resolved.name}"


def test_the_standalone_bundle_has_no_link_out_of_it():
    """The exported bundle ships bundle/ alone: links that leave it become plain text there."""
    for path in (BUNDLE / "docs").glob("*.md"):
        text = export_bundle.standalone_links(path.read_text())
        for target in LINK.findall(text):
            if not re.match(r"\w+:", target):
                resolved = (path.parent / target.partition("#")[0]).resolve()
                assert resolved.is_relative_to(BUNDLE), f"{path.name}: {target} leaves the bundle"
