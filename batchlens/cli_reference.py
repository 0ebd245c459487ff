"""docs/cli.md, rendered from the parser: `python -m batchlens.cli_reference --write`.

Rendered from the parser's actions, not from `--help`, whose layout follows the terminal's
width and the Python version: the same parser gives the same page anywhere. `make docs`
rewrites the page; tests/unit/test_docs.py fails when the page and the parser disagree.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from batchlens.cli import build_parser

PAGE = Path("docs") / "cli.md"  # in the working folder: `make docs` runs at the root
USAGE_WIDTH = 88
REGENERATE = "make docs"

HEADER = f"""\
# CLI reference

<!-- Generated from batchlens.cli.build_parser() by `{REGENERATE}`
     (python -m batchlens.cli_reference --write): edit the parser, not this page. -->

Every command also takes `-h` / `--help`, which lists the same options. What the exit
codes mean in detail: the README's *Exit codes*; `batchlens check` has its own
([alerts.md](alerts.md)).
"""


def render(parser: argparse.ArgumentParser) -> str:
    """The whole page: the top-level command, then each subcommand in the parser's order."""
    commands = _subcommands(parser)
    summary = [f"- [`{p.prog}`](#{_anchor(p.prog)}): {_markdown(h)}" for p, h in commands]
    sections = [_section(parser, parser.description), *(_section(p, h) for p, h in commands)]
    return "\n".join([HEADER, *summary, "", *sections]).rstrip("\n") + "\n"


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[argparse.ArgumentParser, str]]:
    """(parser, one-line help) of every subcommand, in the order they were added."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            found += [(sub, helps.get(name, "")) for name, sub in action.choices.items()]
    return found


def _section(parser: argparse.ArgumentParser, summary: str | None) -> str:
    lines = [f"## `{parser.prog}`", ""]
    for text in dict.fromkeys(t for t in (summary, parser.description) if t):
        lines += [_markdown(text), ""]
    lines += ["```text", _usage(parser), "```", ""]
    shown = [action for action in parser._actions if _listed(action)]
    if shown:
        lines += [_option(action, parser.prog) for action in shown] + [""]
    if parser.epilog:
        lines += [_markdown(parser.epilog), ""]
    return "\n".join(lines)


def _hidden(action: argparse.Action) -> bool:
    return isinstance(action, argparse._HelpAction) or action.help == argparse.SUPPRESS


def _listed(action: argparse.Action) -> bool:
    """The options listed under a command: its subcommands have sections of their own."""
    return not _hidden(action) and not isinstance(action, argparse._SubParsersAction)


def _usage(parser: argparse.ArgumentParser) -> str:
    """argparse's usage line, wrapped at a fixed width whatever the terminal's."""
    words = []
    for action in parser._actions:
        if _hidden(action):
            continue
        if isinstance(action, argparse._SubParsersAction):
            words.append(f"{action.metavar or 'COMMAND'} ...")
        elif not action.option_strings:
            words.append(_value(action))
        else:
            call = _invocation(action)
            words.append(call if action.required else f"[{call}]")
    return _wrap(parser.prog, words)


def _wrap(prog: str, words: list[str]) -> str:
    """`prog` and its words in lines of at most USAGE_WIDTH, never breaking inside a word
    (`[--header 'Name: value']` is one), continued under the first word as argparse does."""
    lines = [prog]
    indent = " " * (len(prog) + 1)
    for word in words:
        if len(lines[-1]) + 1 + len(word) > USAGE_WIDTH and lines[-1].strip():
            lines.append(indent + word)
        else:
            lines[-1] += " " + word
    return "\n".join(lines)


def _invocation(action: argparse.Action) -> str:
    """`--db DB`, `--full`: the longest option string and the value it takes."""
    option = max(action.option_strings, key=len)
    return option if action.nargs == 0 else f"{option} {_value(action)}"


def _value(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        return "{" + ",".join(map(str, action.choices)) + "}"
    return action.dest.upper() if action.option_strings else action.dest


def _option(action: argparse.Action, prog: str) -> str:
    """One line: the option, its help, and its default when the help does not say it."""
    name = _invocation(action) if action.option_strings else _value(action)
    help_text = (action.help or "") % {**vars(action), "prog": prog}  # as argparse expands it
    extra = []
    if isinstance(action, argparse._AppendAction) and "repeatable" not in help_text:
        extra.append("repeatable")
    if action.default not in (None, False, argparse.SUPPRESS) and "default" not in help_text:
        extra.append(f"default: {action.default}")
    described = "; ".join(part for part in (help_text, *extra) if part)
    return f"- `{name}`" + (f": {_markdown(described)}" if described else "")


def _markdown(text: str) -> str:
    """Help text as one Markdown line: `<name>` would be read as an HTML tag and vanish."""
    return " ".join(text.split()).replace("<", "\\<")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a `## \\`batchlens extract\\`` heading."""
    return heading.lower().replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    options = argparse.ArgumentParser(
        prog="python -m batchlens.cli_reference",
        description="Print docs/cli.md as the parser defines it, or --write it.",
    )
    options.add_argument(
        "--write", action="store_true", help=f"write {PAGE} (in the working folder) instead"
    )
    args = options.parse_args(argv)
    text = render(build_parser())
    if not args.write:
        sys.stdout.write(text)
        return 0
    from batchlens.output import write_atomically

    write_atomically(PAGE, text, "CLI reference")
    print(f"batchlens: wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
