"""Plain text of Markdown for one-line previews: the words a reader sees, no markup.

Parsed with markdown-it-py (CommonMark, plus the GFM tables and strikethrough that
models write), not with patterns: emphasis, links (their text), images (their alt
text), inline code and code blocks (their code), headings, list items, quotes and
table cells come out as a renderer would show them, and `snake_case` or `2*3` that
are no markup stay as they are. Raw HTML is dropped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt
    from markdown_it.token import Token

# How much Markdown to parse per character of preview wanted: a preview needs the
# start of a reply only, and a long reply should not cost a listing its full parse.
# Markup seldom takes more than this; where it does, the cut lands after the preview.
_SOURCE_PER_CHAR = 20


@cache
def _parser() -> MarkdownIt:
    # Imported on first use: it costs start-up about 0.1 s, and only listings need it.
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _inline_text(children: Sequence[Token]) -> Iterator[str]:
    for token in children:
        if token.type in ("text", "code_inline"):
            yield token.content
        elif token.type in ("softbreak", "hardbreak"):
            yield " "
        elif token.type == "image":
            yield from _inline_text(token.children or ())
        # Markup (em/strong/s/link open and close) and inline HTML show no text.


def plain_text(markdown: str, limit: int) -> str:
    """The first `limit` characters of what `markdown` reads as, on one line."""
    blocks: list[str] = []
    for token in _parser().parse(markdown[: limit * _SOURCE_PER_CHAR]):
        if token.type == "inline":
            blocks.append("".join(_inline_text(token.children or ())))
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content)
    # Blocks (paragraphs, headings, list items, table cells, code lines) run on with
    # single spaces between them.
    return " ".join(" ".join(blocks).split())[:limit]
