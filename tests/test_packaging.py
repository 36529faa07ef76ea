"""What a new user meets before the first run: the licence and citation files, ``dgcn
--version``, each sub-command's help (purpose, defaults, one example that parses), and a conda
file that lists what pyproject.toml needs, from conda-forge only."""

import argparse
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import dgcn
from dgcn.cli import main
from dgcn.cli_parser import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
#: the address the notebooks' first cell clones from
REPO = "https://github.com/dgcn-book/dgcn-book"
#: pyproject's (pip) names whose conda-forge package is called otherwise
CONDA_NAMES = {"torch": "pytorch"}


def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def requirement(text: str) -> tuple[str, str]:
    """(normalised name, version specifier) of a requirement such as ``torch>=2.4``."""
    name, spec = re.fullmatch(r"\s*([A-Za-z0-9._-]+)\s*([^#]*?)\s*", text).groups()
    return re.sub(r"[-_.]+", "-", name).lower(), spec.replace(" ", "")


def test_dgcn_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"dgcn {dgcn.__version__}\n"
    assert pyproject()["project"]["version"] == dgcn.__version__
    command = [sys.executable, "-m", "dgcn", "--version"]
    shown = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert (shown.returncode, shown.stdout) == (0, f"dgcn {dgcn.__version__}\n")


def test_the_licence_and_the_project_urls_are_those_pyproject_declares():
    project = pyproject()["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 the dgcn-book authors\n")
    assert "Permission is hereby granted, free of charge" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS"' in text
    urls = project["urls"]
    assert urls["Repository"] == urls["Homepage"] == REPO
    # the address the Colab cell clones is this one
    setup = (ROOT / "notebooks" / "00_quick_start.py").read_text()
    assert f'REPO, BOOK_VERSION = "{REPO}", "{dgcn.__version__}"' in setup


def test_the_citation_file_cites_this_package_and_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["version"] == dgcn.__version__ and cff["license"] == "MIT"
    assert cff["repository-code"] == REPO
    assert all("name" in a or "family-names" in a for a in cff["authors"])
    paper = cff["preferred-citation"]
    assert paper["title"] == "Dual Graph Convolutional Network for Semantic Segmentation"
    assert [a["family-names"] for a in paper["authors"]] == [
        "Zhang",
        "Li",
        "Arnab",
        "Yang",
        "Tong",
        "Torr",
    ]
    assert paper["year"] == 2019 and "BMVC" in paper["conference"]["name"]
    assert "1909.06121" in paper["url"]
    assert {"type": "other", "value": "arXiv:1909.06121"}.items() <= paper["identifiers"][0].items()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def help_text(name: str, capsys) -> str:
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def option_entries(text: str) -> dict[str, str]:
    """Each option's entry of a help text (its lines joined), by its first option string."""
    entries, current = {}, None
    for line in text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0].splitlines():
        if line.startswith("  -"):
            current = line.split()[0].rstrip(",")
            entries[current] = line.strip()
        elif current:
            entries[current] += " " + line.strip()
    return entries


def test_every_command_is_described_and_every_option_documented():
    assert set(subcommands()) == set(COMMANDS)
    for name, parser in subcommands().items():
        assert parser.description and parser.description[0].isupper(), name
        for action in parser._actions:
            assert action.help, f"dgcn {name} {action.option_strings} has no help"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_each_commands_help_says_its_purpose_its_defaults_and_one_example(name, capsys):
    text = help_text(name, capsys)
    purpose = text.split("\n\n")[1]
    assert len(purpose.split()) >= 8 and purpose.rstrip().endswith("."), purpose
    example = text.rsplit("\nexample:\n", 1)[1].strip()
    assert example.startswith(f"dgcn {name}") and "\n" not in example
    build_parser().parse_args(shlex.split(example)[1:])  # the example is a valid command
    entries = option_entries(text)
    for action in subcommands()[name]._actions:
        default = action.default
        if not action.option_strings or action.required or action.nargs == 0:
            continue  # positional, required or a flag: no default to show
        if default is None:  # nothing unless given, or the config's: the help says which
            continue
        # the value itself, as one would type it
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else default
        assert f"(default: {shown}" in entries[action.option_strings[0]], action.option_strings
    # where the value comes from the config, the help names it
    for option in ("--mode", "--tile", "--split"):
        if option in entries:
            assert "(default: the " in entries[option], entries[option]


def test_the_top_level_help_lists_the_commands_with_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in COMMANDS) and "--version" in text
    assert "\nexamples:\n  dgcn reproduce" in text


def test_environment_yml_lists_every_dependency_from_conda_forge_only():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge", "nodefaults"]
    listed = {}
    for entry in env["dependencies"]:
        if isinstance(entry, str):
            name, spec = requirement(entry)
            listed[name] = spec
        else:  # the pip part: the package itself from the checkout, nothing else
            assert entry == {"pip": ["-e ."]}, entry
    project = pyproject()["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    for text in wanted:
        name, spec = requirement(text)
        conda = CONDA_NAMES.get(name, name)
        assert conda in listed, f"environment.yml lacks {conda} ({text} in pyproject.toml)"
        assert listed[conda] == spec, f"{conda}{listed[conda]} vs {text} in pyproject.toml"
    assert requirement(f"python{listed['python']}") == requirement(
        f"python{project['requires-python']}"
    )
