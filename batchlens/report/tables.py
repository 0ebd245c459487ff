"""The terminal report's tables: they fit the width, wrap between words, or stack.

rich fits a table to a narrow terminal by folding cells in the middle of a word and then
cropping what is left, which cuts exactly the values a reader acts on: a batch id, an error
code, a model name. Here each column says what its values are, and the width is shared out
before rich draws the table:

- `key`: an id, a code, a status, an endpoint, an account or a model; always whole, on one
  line: it is copied into the next command.
- `number`: right-aligned and whole.
- `words`: wraps between words (a status and its flags, a date and a time), never inside one.
- `text`: free text from the API (an error message): wraps between words, and a single word
  longer than the column (a URL) is elided with "…"; the row's code is what to act on.

Headers wrap between their words. A table that cannot fit with every key whole, at the
narrowest its words allow, is printed as records instead: the row's leading values on one
line, its other values as `header: value` pairs packed under it. Every cell is a `Text`:
text from the API is never read as rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

KINDS = ("key", "number", "words", "text")
TEXT_MIN = 24  # a message column narrower than this reads as a column of fragments
GAP = "  "  # between the values of a record's line
INDENT = "   "  # a record's lines under its leading values


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "words"
    lead: bool = False  # stacked: on the record's first line, without its header

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"a column's kind is one of {KINDS}, got {self.kind!r}")


class ReportTable:
    """A titled table of the report; `show` prints it at the console's width."""

    def __init__(self, title: str, columns: Sequence[Column], empty: str = "(none)") -> None:
        self.title = title
        self.columns = list(columns)
        self.empty = empty
        self.rows: list[list[Text]] = []

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns")
        self.rows.append([cell if isinstance(cell, Text) else Text(cell) for cell in cells])

    def show(self, console: Console) -> None:
        """The title, then the table (or its records), then a blank line."""
        console.print(Text(self.title, style="bold"))
        widths = self.widths(console.width)
        if widths is None:
            self._records(console)
        else:
            console.print(self._table(widths))
        console.print()

    # --- the width ---------------------------------------------------------------------------

    def bounds(self) -> list[tuple[int, int]]:
        """Each column's (narrowest, natural) width: nothing cut, and nothing wrapped."""
        found = []
        for index, column in enumerate(self.columns):
            cells = [row[index] for row in self.rows]
            lines = [_widest_line(cell.plain) for cell in cells]
            natural = max([cell_len(column.header), *lines])
            header = _widest_word(column.header)
            if column.kind in ("key", "number"):
                narrowest = max([header, *lines])
            elif column.kind == "words":
                narrowest = max([header, *(_widest_word(cell.plain) for cell in cells)])
            else:
                narrowest = max(header, min(natural, TEXT_MIN))
            found.append((narrowest, natural))
        return found

    def widths(self, width: int) -> list[int] | None:
        """Column widths for a table `width` columns wide; None when it cannot fit.

        Natural widths when they fit. Else every column at its narrowest, and what is left
        goes first to the columns that are not free text (so that a header or a status
        wraps less, the smallest needs first), then to the free text.
        """
        bounds = self.bounds()
        room = width - (len(self.columns) - 1)  # one space between two columns
        natural = [most for _, most in bounds]
        if sum(natural) <= room:
            return natural
        widths = [least for least, _ in bounds]
        spare = room - sum(widths)
        if spare < 0:
            return None
        others = [i for i, column in enumerate(self.columns) if column.kind != "text"]
        for index in sorted(others, key=lambda i: natural[i] - widths[i]):
            given = min(spare, natural[index] - widths[index])
            widths[index] += given
            spare -= given
        texts = [i for i, column in enumerate(self.columns) if column.kind == "text"]
        while spare > 0 and texts:
            index = max(texts, key=lambda i: natural[i] - widths[i])
            if natural[index] <= widths[index]:
                break
            widths[index] += 1
            spare -= 1
        return widths

    # --- drawing -----------------------------------------------------------------------------

    def _table(self, widths: list[int]) -> Table:
        table = Table(
            box=box.SIMPLE_HEAD,  # no vertical rules: one space between columns
            show_edge=False,
            padding=(0, 0),
            pad_edge=False,
            header_style="bold",
            caption=None if self.rows else self.empty,
            caption_justify="left",
        )
        for column, width in zip(self.columns, widths, strict=True):
            table.add_column(
                Text(column.header),
                justify="right" if column.kind == "number" else "left",
                width=width,
                overflow="ellipsis",  # never "fold": a word is whole or visibly elided
            )
        for row in self.rows:
            table.add_row(*map(_cell, row, self.columns))
        return table

    def _records(self, console: Console) -> None:
        if not self.rows:
            console.print(Text(self.empty))
        width = console.width
        leads = [i for i, column in enumerate(self.columns) if column.lead] or [0]
        for row in self.rows:
            # the first leading value opens the record; the others join it while they fit
            # on its line, and are labelled under it when they do not
            first = _one_line(row[leads[0]])
            joining = leads[1:]
            while joining:
                joined = Text.assemble(first, GAP, _one_line(row[joining[0]]))
                if cell_len(joined.plain) > width:
                    break
                first = joined
                joining.pop(0)
            _print_line(console, first)
            labelled = joining + [
                i for i in range(len(self.columns)) if i not in leads and row[i].plain.strip()
            ]
            rest = [
                (Text(f"{self.columns[i].header}: ", style="dim") + _one_line(row[i]),
                 self.columns[i].kind)
                for i in labelled
            ]  # fmt: skip
            for line in _pack(console, rest, width - len(INDENT)):
                _print_line(console, Text(INDENT) + line)


def _cell(cell: Text, column: Column) -> Text:
    shown = cell.copy()
    shown.no_wrap = column.kind in ("key", "number")
    shown.overflow = "ellipsis"
    return shown


def _one_line(cell: Text) -> Text:
    """A value for a record's line: its line breaks as spaces."""
    shown = cell.copy()
    shown.plain = " ".join(shown.plain.split("\n")) if "\n" in shown.plain else shown.plain
    return shown


def _pack(console: Console, pieces: list[tuple[Text, str]], width: int) -> list[Text]:
    """`pieces` on lines `width` wide, GAP between two, each whole unless it alone is wider:
    then free text wraps between words (a word too long elided) and anything else stays
    whole, wider than the line, rather than cut."""
    lines: list[Text] = []
    line = Text()
    for piece, kind in pieces:
        joined = Text.assemble(line, GAP, piece) if line.plain else piece
        if cell_len(joined.plain) <= width:
            line = joined
            continue
        if line.plain:
            lines.append(line)
        if cell_len(piece.plain) <= width:
            line = piece
            continue
        overflow = "ellipsis" if kind == "text" else "ignore"
        wrapped = piece.wrap(console, width, overflow=overflow)
        lines.extend(wrapped)
        line = Text()
    if line.plain:
        lines.append(line)
    return lines


def _print_line(console: Console, line: Text) -> None:
    console.print(line, no_wrap=True, overflow="ignore", crop=False)


def _widest_line(text: str) -> int:
    return max((cell_len(line) for line in text.split("\n")), default=0)


def _widest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)
