"""Which characters the API accepts in text: one rule for SQLite and PostgreSQL.

PostgreSQL cannot store NUL (U+0000) in a text column nor cast JSON holding one to
JSONB, and neither database can encode a lone surrogate (U+D800-U+DFFF, which a JSON
`\\ud800` escape smuggles into a Python string). SQLite stores NUL happily, so without
one rule the same request works on one database and fails with a 500 on the other.

- Free text (message text, quoted text, tag text and data, task descriptions, tool
  output, every other string of a request body): any character but NUL and lone
  surrogates. A request carrying one is refused, not silently changed: 400 on the
  chat endpoints, 422 on REST, an "invalid" tool result for the model.
- Names and ids (thread and item ids, titles, tags, search terms, Idempotency-Key, the
  token's user id): no control character at all either (Unicode Cc: U+0000-U+001F and
  U+007F-U+009F), nor a line or paragraph separator (U+2028, U+2029). They end up
  in one-line places (log lines, lists, file names, headers) where a newline or an
  escape sequence would forge or garble what follows.
- Titles (threads and tasks): 1 to 200 characters once surrounding whitespace is
  trimmed; the trimmed title is stored.
- Text the model writes (replies, tool arguments) has no client to refuse it: where it
  is stored, NUL is dropped and a lone surrogate becomes U+FFFD. Titles the server
  derives or the model writes lose their control characters (`as_name`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, StringConstraints
from pydantic_core import PydanticSerializationError

MAX_TITLE_CHARS = 200

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _describe(char: str) -> str:
    if char == "\x00":
        return "a NUL character (U+0000)"
    if _SURROGATE.match(char):
        return "an unpaired surrogate (not valid Unicode)"
    if char in "\u2028\u2029":
        return f"a line separator (U+{ord(char):04X})"
    return f"a control character (U+{ord(char):04X})"


def free_text_problem(text: str) -> str | None:
    """Why `text` cannot be stored as free text, or None when it can."""
    found = _UNSTORABLE.search(text)
    return f"contains {_describe(found.group())}" if found else None


def name_problem(text: str) -> str | None:
    """Why `text` cannot be a name or an id, or None when it can."""
    found = _NOT_IN_NAMES.search(text)
    return f"contains {_describe(found.group())}" if found else None


def check_free_text(text: str) -> str:
    """`text`, or ValueError saying why it cannot be stored (a pydantic validator)."""
    if problem := free_text_problem(text):
        raise ValueError(problem)
    return text


def check_name(text: str) -> str:
    """`text`, or ValueError saying why it cannot be a name or an id (a pydantic validator)."""
    if problem := name_problem(text):
        raise ValueError(problem)
    return text


FreeText = Annotated[str, AfterValidator(check_free_text)]
Name = Annotated[str, AfterValidator(check_name)]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TITLE_CHARS),
    AfterValidator(check_name),
]


def as_name(text: str) -> str:
    """`text` with whatever a name may not hold dropped: for names the server derives
    from free text or asks the model for (thread titles)."""
    return _NOT_IN_NAMES.sub("", text)


def unstorable_in(value: Any, path: tuple[str | int, ...] = ()) -> tuple[str, str] | None:
    """The first string (or dict key) in a JSON-like value that is not storable free
    text: (its dotted path, why), or None."""
    for where, text in _strings(value, path):
        if problem := free_text_problem(text):
            return ".".join(str(p) for p in where), problem
    return None


def _strings(
    value: Any, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    # Iterative: a request may nest as deep as the JSON parser allows.
    stack = [(path, value)]
    while stack:
        where, current = stack.pop()
        if isinstance(current, str):
            yield where, current
        elif isinstance(current, dict):
            for key, item in current.items():
                if isinstance(key, str):
                    yield (*where, key), key
                stack.append(((*where, key), item))
        elif isinstance(current, list | tuple):
            stack.extend(((*where, i), item) for i, item in enumerate(current))


def storable(value: Any) -> Any:
    """A JSON-like value with NUL dropped and lone surrogates replaced, in every string."""
    if isinstance(value, str):
        if not _UNSTORABLE.search(value):
            return value
        return _SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def storable_json(model: BaseModel) -> str:
    """`model` as JSON text both databases can store and PostgreSQL can cast to JSONB.

    Only model-written text can still hold NUL or a lone surrogate here (requests are
    checked at the edge); the fast path is pydantic's own serializer.
    """
    try:
        data = model.model_dump_json()
    except PydanticSerializationError:  # a lone surrogate cannot be encoded
        data = None
    # NUL is serialized as the escape \u0000 (a literal backslash-u-0000 text also
    # matches: harmless, the slow path then changes nothing).
    if data is None or "\\u0000" in data:
        cleaned = storable(model.model_dump(mode="json"))
        return json.dumps(cleaned, ensure_ascii=False, separators=(",", ":"))
    return data
