"""The history budget's parts: the token estimate, the trimming (chat/history_budget.py)
and each model's budget (agent/context_window.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest
from agents import TResponseInputItem

from chatkit_backend.agent import context_window as windows
from chatkit_backend.agent.context_window import (
    DEFAULT_HISTORY_TOKENS,
    context_window,
    history_token_budget,
)
from chatkit_backend.agent.models import OFFLINE, ModelChoice
from chatkit_backend.chat.history_budget import (
    MIN_OUTPUT_TOKENS,
    TOKENS_PER_ITEM,
    estimate_tokens,
    fit_history,
    shorten_output,
    split_turns,
)
from chatkit_backend.config import ConfigError, load_settings

Item = TResponseInputItem


def user(text: str) -> Item:
    return cast(Item, {"role": "user", "content": text})


def assistant(text: str) -> Item:
    return cast(Item, {"role": "assistant", "content": text})


def call(call_id: str, output: str) -> list[Item]:
    return [
        cast(Item, {"type": "function_call", "call_id": call_id, "name": "f", "arguments": "{}"}),
        cast(Item, {"type": "function_call_output", "call_id": call_id, "output": output}),
    ]


def total(items: list[Item]) -> int:
    return sum(estimate_tokens(item) for item in items)


def field(item: Item, name: str) -> Any:
    return cast(dict[str, Any], item)[name]


# --- the estimate ---


def test_the_estimate_is_a_token_per_three_bytes_plus_the_items_framing() -> None:
    assert estimate_tokens(user("x" * 30)) == TOKENS_PER_ITEM + 10 + 2  # "user": 4 bytes
    # A CJK character is three bytes: one token.
    assert estimate_tokens(user("字" * 30)) == TOKENS_PER_ITEM + 30 + 2
    # Values that are not text count as their JSON.
    listed = cast(Item, {"role": "user", "content": [{"type": "input_text", "text": "hi"}]})
    assert estimate_tokens(listed) > estimate_tokens(user("hi"))


def test_english_is_overestimated_by_about_a_third() -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 100
    # About 4 characters a token is what tokenizers make of English.
    assert estimate_tokens(user(text)) >= len(text) / 4 * 1.3


# --- turns ---


def test_turns_start_at_user_items_and_keep_calls_with_their_outputs() -> None:
    items = [
        user("q1"),
        *call("a", "out"),
        assistant("a1"),
        user("hidden"),
        user("q2"),
        assistant("a2"),
    ]
    turns = split_turns(items)
    assert turns == [items[:4], items[4:]]
    assert split_turns([]) == []
    # History cut mid-turn (HISTORY_ITEMS) starts with what is left of that turn.
    assert split_turns([assistant("a0"), user("q")]) == [[assistant("a0")], [user("q")]]


# --- trimming ---


def test_a_history_under_the_budget_is_sent_as_it_is() -> None:
    items = [user("q1"), *call("a", "x" * 300), assistant("a1"), user("q2")]
    assert fit_history(items, total(items)) == items
    assert fit_history([], 100) == []


def test_old_tool_outputs_are_shortened_before_any_turn_is_dropped() -> None:
    big = "y" * 3000  # about 1,000 tokens
    items = [user("q1"), *call("a", big), assistant("a1"), user("q2")]
    budget = 600
    fitted = fit_history(items, budget)
    assert len(fitted) == len(items), "nothing dropped"
    output = field(fitted[2], "output")
    assert output.startswith("y" * 200) and output.endswith(
        "[cut to fit the conversation: 2700 more characters]"
    )
    assert field(items[2], "output") == big, "the caller's items are left alone"
    assert total(fitted) <= budget


def test_only_as_many_outputs_as_needed_are_shortened_oldest_first() -> None:
    items = [
        user("q1"),
        *call("a", "a" * 1500),
        *call("b", "b" * 1500),
        assistant("a1"),
        user("q2"),
    ]
    fitted = fit_history(items, total(items) - 200)
    assert "[cut" in field(fitted[2], "output")
    assert field(fitted[4], "output") == "b" * 1500


def test_small_outputs_are_not_cut_and_outputs_of_the_new_turn_are_kept() -> None:
    # Outputs under the cap stay whole; the oldest turn goes instead.
    items = [user("q1"), *call("a", "z" * 200), user("q2" * 400)]
    fitted = fit_history(items, total(items) - 10)
    assert fitted == [items[-1]]
    # A tool output of the newest turn is never shortened, even over the budget.
    newest = [user("q"), *call("n", "n" * 3000)]
    assert fit_history(newest, 50) == newest


def test_oldest_turns_go_first_whole_and_the_new_message_always_stays() -> None:
    turns = [
        [user(f"q{n}" + "." * 300), *call(f"c{n}", "o" * 90), assistant(f"a{n}")] for n in range(4)
    ]
    new = [user("now")]
    items = [item for turn in turns for item in turn] + new
    budget = total(items) - total(turns[0]) - 1
    fitted = fit_history(items, budget)
    assert fitted == [item for turn in turns[2:] for item in turn] + new
    assert total(fitted) <= budget
    # A new message over the budget on its own is sent, alone.
    huge = [assistant("a"), user("h" * 3000)]
    assert fit_history(items + huge, 100) == huge[1:]


def test_a_cap_never_falls_below_the_minimum() -> None:
    out = cast(Item, {"type": "function_call_output", "call_id": "c", "output": "é" * 1000})
    short = shorten_output(out, MIN_OUTPUT_TOKENS)
    kept = field(short, "output").split("\n")[0]
    assert len(kept.encode()) <= MIN_OUTPUT_TOKENS * 3 and kept == "é" * len(kept)
    assert field(short, "output").endswith(f"{1000 - len(kept)} more characters]")
    # A budget of 200 gives a cap of 100 tokens, not 25.
    items = [user("q"), *call("c", "w" * 3000), assistant("a"), user("next")]
    fitted = fit_history(items, 200)
    assert len(field(fitted[2], "output").split("\n")[0]) == MIN_OUTPUT_TOKENS * 3


def test_an_output_just_over_the_cap_is_not_made_longer_by_its_cut_note() -> None:
    items = [user("q"), *call("c", "v" * (MIN_OUTPUT_TOKENS * 3 + 30)), assistant("a"), user("n")]
    fitted = fit_history(items, total(items) - 1)
    assert fitted == [items[-1]], "the output stays whole, and its turn goes"


# --- each model's budget ---


def settings(**values: Any) -> Any:
    return load_settings(database_url="sqlite:///:memory:", **values)


def choice(name: str) -> ModelChoice:
    return ModelChoice(name, "test")


@pytest.mark.parametrize(
    ("model", "budget"),
    [
        ("openai/gpt-4o-mini", 64_000),
        ("litellm/openai/gpt-4o-mini", 64_000),
        ("gemini/gemini-2.5-flash", 524_288),
        ("anthropic/claude-sonnet-4-5", 100_000),
        ("openai/my-local-model", DEFAULT_HISTORY_TOKENS),
        (OFFLINE, DEFAULT_HISTORY_TOKENS),
    ],
)
def test_the_default_budget_is_half_the_models_window_when_litellm_knows_it(
    model: str, budget: int
) -> None:
    assert history_token_budget(settings(), choice(model)) == budget


def test_history_tokens_wins_for_every_model() -> None:
    chosen = settings(history_tokens="3000")
    assert history_token_budget(chosen, choice("gemini/gemini-2.5-flash")) == 3000
    assert history_token_budget(chosen, choice(OFFLINE)) == 3000
    assert settings(history_tokens="").history_tokens is None
    with pytest.raises(ConfigError, match=r"^HISTORY_TOKENS: "):
        settings(history_tokens="50")


def test_a_window_is_read_from_input_tokens_else_max_tokens() -> None:
    model_map = {
        "a": {"max_input_tokens": 1000, "max_tokens": 10},
        "b": {"max_tokens": 500},
        "c": {"max_input_tokens": "many"},
        "d": "not an entry",
    }
    assert context_window("a", model_map) == 1000
    assert context_window("provider/b", model_map) == 500
    assert context_window("c", model_map) is None
    assert context_window("d", model_map) is None


def test_without_litellms_map_every_model_gets_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    try:
        windows._model_map.cache_clear()
        monkeypatch.setattr(windows.importlib.util, "find_spec", lambda name: None)
        assert windows._model_map() == {}

        windows._model_map.cache_clear()
        monkeypatch.undo()
        monkeypatch.setattr(windows, "MODEL_MAP", "missing.json")
        assert windows._model_map() == {}
        assert history_token_budget(settings(), choice("openai/gpt-4o-mini")) == (
            DEFAULT_HISTORY_TOKENS
        )

        windows._model_map.cache_clear()
        (tmp_path / "litellm").mkdir()
        (tmp_path / "litellm" / "__init__.py").write_text("")
        (tmp_path / "litellm" / "missing.json").write_text(json.dumps(["not", "a", "map"]))
        monkeypatch.syspath_prepend(str(tmp_path))
        assert windows._model_map() == {}
    finally:
        windows._model_map.cache_clear()
