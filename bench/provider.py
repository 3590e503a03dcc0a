"""The scripted provider (tests/scripted_provider.py) in a process of its own.

A separate process keeps the provider's work off the benchmark client's GIL. It is
steered over stdin/stdout, one JSON object a line:
  -> {"cmd": "mode", "mode": "<name>"}   every non-title request gets that mode's reply
  -> {"cmd": "streams", "last": N}       the last N streamed responses as the provider saw them
  -> {"cmd": "reset"}                    forget recorded requests and streams
  <- {"ok": true, ...}
The first line it prints is {"base_url": ...}. Title requests (system prompt
TITLE_PROMPT) get a short fixed title, except in mode "conversation", which answers
them like any other request.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from chatkit_backend.agent.titles import TITLE_PROMPT
from tests.scripted_provider import ScriptedProvider, Text

# 240 characters in 8-character pieces: 30 text deltas, sent as fast as possible.
OVERHEAD_TEXT = ("The quick brown fox jumps over the lazy dog. " * 6)[:240]

# name -> reply. Chunks counted by the provider include the role delta, the finish
# chunk, the usage chunk and [DONE] (4 besides the text pieces).
MODES: dict[str, Text] = {
    "overhead": Text(OVERHEAD_TEXT, chunk_chars=8),
    # 30 pieces, one SSE chunk every 20 ms (34 chunks, about 0.7 s).
    "slow": Text("x" * 120, chunk_chars=4, delay=0.02),
    # Exactly 100 chunks (96 text pieces + 4), one every 20 ms: the stop test.
    "stop": Text("y" * 96, chunk_chars=1, delay=0.02),
    # A slow model: one character a second for two minutes; the capacity section holds
    # many such streams open at once (its streams hang up when measured).
    "hold": Text("h" * 120, chunk_chars=1, delay=1.0),
    # The conversations section: as "overhead", and title requests get this reply too, so
    # a title costs the provider and the model route as much as a reply does.
    "conversation": Text(OVERHEAD_TEXT, chunk_chars=8),
}
TITLE = Text("Bench title")


def is_title(body: dict[str, Any]) -> bool:
    messages = body.get("messages") or []
    return bool(messages) and messages[0].get("content") == TITLE_PROMPT


def main() -> None:
    mode = ["overhead"]
    provider = ScriptedProvider()
    provider.route(lambda body: is_title(body) and mode[0] != "conversation", TITLE)
    for name, reply in MODES.items():
        provider.route(lambda _body, name=name: mode[0] == name, reply)
    provider.start()
    print(json.dumps({"base_url": provider.base_url}), flush=True)
    try:
        for line in sys.stdin:
            command = json.loads(line)
            answer: dict[str, Any] = {"ok": True}
            if command["cmd"] == "mode":
                if command["mode"] not in MODES:
                    answer = {"ok": False, "error": f"unknown mode {command['mode']}"}
                else:
                    mode[0] = command["mode"]
            elif command["cmd"] == "streams":
                with provider._changed:  # the provider's own lock, so records are whole
                    records = provider.streams[-int(command.get("last", 1)) :]
                    answer["count"] = len(provider.streams)
                    answer["streams"] = [
                        {k: v for k, v in asdict(r).items() if k != "reply"} for r in records
                    ]
            elif command["cmd"] == "reset":
                with provider._changed:
                    provider.requests.clear()
                    provider.streams.clear()
            else:
                answer = {"ok": False, "error": "unknown command"}
            print(json.dumps(answer), flush=True)
    finally:
        provider.stop()


if __name__ == "__main__":
    main()
