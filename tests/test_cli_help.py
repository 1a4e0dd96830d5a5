"""Help texts: every subcommand has a description, every option says what it does, and no help text
carries reStructuredText markup (it is printed as is in a terminal)."""

from __future__ import annotations

import re

import pytest

from polyqa.cli import build_parser, main

RST = re.compile(r"``|:(class|func|mod|meth|attr|obj|ref|doc):`")


def _subparsers():
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return action.choices


SUBCOMMANDS = sorted(_subparsers())


def test_the_known_subcommands_are_all_here():
    assert set(SUBCOMMANDS) == {"build-corpus", "import-parallel", "validate", "translate", "tiny-models", "train",
                                "evaluate", "study", "languages", "export", "mine-negatives"}


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_has_a_description_and_no_rst_markup(name):
    sub = _subparsers()[name]
    text = sub.format_help()
    assert not RST.search(text), f"polyqa {name} --help shows markup: {RST.search(text).group(0)!r}"
    assert sub.description and len(sub.description.split()) >= 8, f"polyqa {name} --help has no description"


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_option_is_explained(name):
    sub = _subparsers()[name]
    silent = [a.option_strings[0] if a.option_strings else a.dest for a in sub._actions
              if a.dest != "help" and not (a.help and a.help.strip())]
    assert silent == [], f"polyqa {name}: options without help: {silent}"


def test_top_level_help_lists_every_subcommand_without_markup(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert not RST.search(out)
    for name in SUBCOMMANDS:
        assert name in out


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_help_exits_0(name, capsys):
    assert main([name, "--help"]) == 0
    assert capsys.readouterr().out.startswith("usage: polyqa " + name)
