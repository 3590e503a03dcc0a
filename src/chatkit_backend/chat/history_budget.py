"""Fit a thread's history into a token budget (HISTORY_TOKENS), offline.

Tokens are estimated, not counted: an exact count needs the model's own tokenizer, and
tiktoken downloads its files at run time. The estimate is one token per 3 bytes of
UTF-8 text, plus a few per item for its role and separators. English runs about 4
characters a token, so this overestimates it by about a third; a CJK character (3
bytes) counts as one token, close to what tokenizers make of it.

What is cut, in this order, until the history fits:
1. the oldest oversized tool outputs of earlier turns are shortened (the model rarely
   needs all of an old search result, but does need to know the call happened);
2. the oldest turns are dropped whole. A turn starts at a user message, so the history
   still starts with one, and a tool call is never parted from its output (both sit in
   the turn that made them, next to each other).
The newest turn, the message being answered (with its quote, and any hidden context or
widget note stored right before it), is always kept, even when it alone is over the
budget: answering without the question would be worse than a long request.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from typing import Any, cast

from agents import TResponseInputItem

log = logging.getLogger(__name__)

BYTES_PER_TOKEN = 3
# The role, separators and framing every item costs on top of its text.
TOKENS_PER_ITEM = 4
# An old tool output bigger than this share of the budget is oversized, and is cut to it.
OUTPUT_SHARE = 8
# ... but never below this many tokens: a few lines of the output stay readable.
MIN_OUTPUT_TOKENS = 100
CUT_MARK = "\n[cut to fit the conversation: {} more characters]"


def _text_tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)


# An image part costs the model about this much whatever its size (a high-detail
# OpenAI image is 765 to 1,105 tokens); its data URL's length says nothing about it.
IMAGE_TOKENS = 1100


def _value_tokens(value: Any) -> int:
    if isinstance(value, str):
        return _text_tokens(value)
    if isinstance(value, list):
        return sum(
            IMAGE_TOKENS
            if isinstance(part, dict) and part.get("type") == "input_image"
            else _text_tokens(json.dumps(part))
            for part in value
        )
    return _text_tokens(json.dumps(value))


def estimate_tokens(item: TResponseInputItem) -> int:
    """About how many tokens `item` takes in a request (on the high side)."""
    tokens = TOKENS_PER_ITEM
    for value in cast(dict[str, Any], item).values():
        tokens += _value_tokens(value)
    return tokens


def _is_user(item: TResponseInputItem) -> bool:
    return cast(dict[str, Any], item).get("role") == "user"


def split_turns(items: Sequence[TResponseInputItem]) -> list[list[TResponseInputItem]]:
    """The items in turns: each starts at user items (a message, its quote, hidden context)."""
    turns: list[list[TResponseInputItem]] = []
    for item in items:
        if not turns or (_is_user(item) and not _is_user(turns[-1][-1])):
            turns.append([item])
        else:
            turns[-1].append(item)
    return turns


def shorten_output(item: TResponseInputItem, tokens: int) -> TResponseInputItem:
    """A copy of a tool output item whose text is cut to about `tokens` tokens."""
    fields = dict(cast(dict[str, Any], item))
    text: str = fields["output"]
    kept = text.encode("utf-8")[: tokens * BYTES_PER_TOKEN].decode("utf-8", errors="ignore")
    fields["output"] = kept + CUT_MARK.format(len(text) - len(kept))
    return cast(TResponseInputItem, fields)


def _oversized_output(item: TResponseInputItem, size: int, cap: int) -> bool:
    fields = cast(dict[str, Any], item)
    return (
        fields.get("type") == "function_call_output"
        and isinstance(fields.get("output"), str)
        and size > cap
    )


def fit_history(items: Sequence[TResponseInputItem], budget: int) -> list[TResponseInputItem]:
    """`items` (oldest first, the new message last) cut to about `budget` tokens."""
    turns = split_turns(items)
    sizes = [[estimate_tokens(item) for item in turn] for turn in turns]
    total = sum(map(sum, sizes))
    if total <= budget:
        return list(items)

    cap = max(budget // OUTPUT_SHARE, MIN_OUTPUT_TOKENS)
    shortened = 0
    for turn, turn_sizes in zip(turns[:-1], sizes[:-1], strict=True):
        for index, item in enumerate(turn):
            if total <= budget:
                break
            if not _oversized_output(item, turn_sizes[index], cap):
                continue
            short = shorten_output(item, cap)
            size = estimate_tokens(short)
            # Just over the cap, the note on the cut can outweigh what it cuts.
            if size < turn_sizes[index]:
                turn[index] = short
                total -= turn_sizes[index] - size
                turn_sizes[index] = size
                shortened += 1

    first = 0
    while total > budget and first < len(turns) - 1:
        total -= sum(sizes[first])
        first += 1

    log.debug(
        "history over its token budget: %d tool outputs shortened, %d turns dropped, "
        "about %d of %d tokens",
        shortened,
        first,
        total,
        budget,
    )
    return [item for turn in turns[first:] for item in turn]
