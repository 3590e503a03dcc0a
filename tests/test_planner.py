"""The offline todo planner: phrasings -> tool calls, title lookups, replies, the SDK loop."""

from __future__ import annotations

import html
import json
import re
from datetime import date
from importlib import resources
from typing import Any

import pytest
from agents import Agent, Runner, function_tool

from chatkit_backend.agent.offline import Conversation, OfflineModel, Plan, ToolRequest, ToolResult
from chatkit_backend.agent.planner import OFFLINE_NOTE, make_todo_planner

# A Wednesday: "friday" is 2026-11-20, "next wednesday" 2026-11-25.
TODAY = date(2026, 11, 18)
TOOLS = frozenset({"add_task", "list_tasks", "complete_task", "delete_task", "update_task"})
planner = make_todo_planner(lambda: TODAY)


def plan(text: str, *results: ToolResult) -> Plan:
    return planner(Conversation(user_text=text, tool_results=results, tool_names=TOOLS))


def task(
    task_id: int,
    title: str,
    *,
    completed: bool = False,
    priority: str = "medium",
    due_date: str | None = None,
) -> dict[str, Any]:
    return {
        "id": task_id,
        "title": title,
        "description": "",
        "completed": completed,
        "priority": priority,
        "due_date": due_date,
        "tags": [],
        "created_at": "2026-11-01T09:00:00Z",
        "updated_at": "2026-11-01T09:00:00Z",
        "completed_at": "2026-11-02T09:00:00Z" if completed else None,
    }


def listed(*tasks: dict[str, Any]) -> str:
    return json.dumps({"ok": True, "count": len(tasks), "tasks": list(tasks)})


def one(t: dict[str, Any]) -> str:
    return json.dumps({"ok": True, "task": t})


PHRASINGS: list[tuple[str, str, dict[str, Any]]] = [
    # Adding: titles, due dates, priorities, politeness.
    ("add a task to buy bread tomorrow", "add_task",
     {"title": "Buy bread", "due_date": "2026-11-19"}),
    ("Add milk", "add_task", {"title": "Milk"}),
    ("please add “Call the bank” to my list.", "add_task", {"title": "Call the bank"}),
    ("add buy eggs to my tasks", "add_task", {"title": "Buy eggs"}),
    ("Can you add a high priority task to call mom by friday?", "add_task",
     {"title": "Call mom", "due_date": "2026-11-20", "priority": "high"}),
    ("remind me to call mom tonight", "add_task", {"title": "Call mom", "due_date": "2026-11-18"}),
    ("remind me tomorrow to water the plants", "add_task",
     {"title": "Water the plants", "due_date": "2026-11-19"}),
    ("create a new task called 'Pay rent' due next monday", "add_task",
     {"title": "Pay rent", "due_date": "2026-11-23"}),
    ("add an urgent task: renew passport", "add_task",
     {"title": "Renew passport", "priority": "high"}),
    ("add task to submit report, it's important", "add_task",
     {"title": "Submit report", "priority": "high"}),
    ("add stretch with low priority", "add_task", {"title": "Stretch", "priority": "low"}),
    ("add buy eggs in 3 days", "add_task", {"title": "Buy eggs", "due_date": "2026-11-21"}),
    ("add renew insurance in two weeks", "add_task",
     {"title": "Renew insurance", "due_date": "2026-12-02"}),
    ("add a task: file taxes on 2026-12-01", "add_task",
     {"title": "File taxes", "due_date": "2026-12-01"}),
    ("add dentist this friday, low priority", "add_task",
     {"title": "Dentist", "due_date": "2026-11-20", "priority": "low"}),
    ("add task water plants this wednesday", "add_task",
     {"title": "Water plants", "due_date": "2026-11-18"}),
    ("add task water plants on wednesday", "add_task",
     {"title": "Water plants", "due_date": "2026-11-25"}),
    ("add call grandma next tuesday", "add_task",
     {"title": "Call grandma", "due_date": "2026-11-24"}),
    ("add pick up parcel the day after tomorrow", "add_task",
     {"title": "Pick up parcel", "due_date": "2026-11-20"}),
    ("add a task for Jan 5: plan the year", "add_task",
     {"title": "Plan the year", "due_date": "2027-01-05"}),
    ("add a task to buy a sun hat", "add_task", {"title": "Buy a sun hat"}),
    ("new task: read Friday Black", "add_task", {"title": "Read Friday Black"}),
    ("add a task to delete old mail", "add_task", {"title": "Delete old mail"}),
    ("add review PR #work", "add_task", {"title": "Review PR", "tags": ["work"]}),
    ("hey, could you please make a task to book flights?", "add_task", {"title": "Book flights"}),
    # Listing.
    ("show my tasks", "list_tasks", {"status": "all"}),
    ("What are my tasks?", "list_tasks", {"status": "all"}),
    ("list pending tasks", "list_tasks", {"status": "pending"}),
    ("what's left to do", "list_tasks", {"status": "pending"}),
    ("show my open todos", "list_tasks", {"status": "pending"}),
    ("show completed tasks", "list_tasks", {"status": "completed"}),
    ("what have I finished?", "list_tasks", {"status": "completed"}),
    ("what is done?", "list_tasks", {"status": "completed"}),
    ("buy bread is done", "list_tasks", {"search": "buy bread"}),
    ("high priority tasks", "list_tasks", {"status": "all", "priority": "high"}),
    ("show my urgent pending tasks", "list_tasks", {"status": "pending", "priority": "high"}),
    ("tasks", "list_tasks", {"status": "all"}),
    ("find bread", "list_tasks", {"status": "all", "search": "bread"}),
    # Completing, by id and by title words.
    ("complete task 3", "complete_task", {"task_id": 3}),
    ("mark #4 as done", "complete_task", {"task_id": 4}),
    ("check off 5", "complete_task", {"task_id": 5}),
    ("set task 6 to done", "complete_task", {"task_id": 6}),
    ("mark buy bread as done", "list_tasks", {"search": "buy bread"}),
    ("I finished the bread task", "list_tasks", {"search": "bread"}),
    ("cross buy bread off my list", "list_tasks", {"search": "buy bread"}),
    # Deleting.
    ("delete task 7", "delete_task", {"task_id": 7}),
    ("please remove buy bread from my list", "list_tasks", {"search": "buy bread"}),
    # Updating.
    ("rename task 2 to buy rye bread", "update_task", {"task_id": 2, "title": "Buy rye bread"}),
    ("rename buy bread to buy rye bread", "list_tasks", {"search": "buy bread"}),
    ("make task 2 high priority", "update_task", {"task_id": 2, "priority": "high"}),
    ("set the priority of task 2 to low", "update_task", {"task_id": 2, "priority": "low"}),
    ("mark task 2 as urgent", "update_task", {"task_id": 2, "priority": "high"}),
    ("move task 2 to friday", "update_task", {"task_id": 2, "due_date": "2026-11-20"}),
    ("change the due date of task 2 to tomorrow", "update_task",
     {"task_id": 2, "due_date": "2026-11-19"}),
    ("postpone go to gym to next week", "list_tasks", {"search": "go to gym"}),
    ("reopen task 2", "update_task", {"task_id": 2, "completed": False}),
    ("mark task 2 as not done", "update_task", {"task_id": 2, "completed": False}),
    ("change task 2 to buy milk", "update_task", {"task_id": 2, "title": "Buy milk"}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "tool", "arguments"), PHRASINGS)
def test_phrasing_becomes_tool_call(text: str, tool: str, arguments: dict[str, Any]) -> None:
    assert plan(text) == Plan(tool_calls=(ToolRequest(tool, arguments),))


# Everyday phrasings, the page's own suggestions among them. Today is Wednesday 18 Nov:
# this week runs to Sunday the 22nd, next week is the 23rd to the 29th.
Call = tuple[str, dict[str, Any]]


def add(title: str, due: str | None = None) -> Call:
    """add_task; `due` is "MM-DD" this year, or a whole ISO date."""
    if due is None:
        return ("add_task", {"title": title})
    return ("add_task", {"title": title, "due_date": due if len(due) == 10 else f"2026-{due}"})


def pending(**filters: Any) -> Call:
    return ("list_tasks", {"status": "pending", **filters})


def days(first: str, last: str | None = None) -> dict[str, str]:
    return {"due_after": f"2026-{first}", "due_before": f"2026-{last or first}"}


def update(task_id: int, **changes: Any) -> Call:
    return ("update_task", {"task_id": task_id, **changes})


CLEAR = ("list_tasks", {"status": "completed"})
EVERYDAY: list[tuple[str, Call]] = [
    # Adding, with dates written as people write them.
    ("Add a task to buy bread tomorrow", add("Buy bread", "11-19")),
    ("add a task: book dentist on 12/15", add("Book dentist", "12-15")),
    ("add pay rent 12/1", add("Pay rent", "12-01")),
    ("add renew passport by 1/15/2027", add("Renew passport", "2027-01-15")),
    ("add call the bank on 25/12", add("Call the bank", "12-25")),
    ("add buy 1/2 cup flour", add("Buy 1/2 cup flour")),
    ("buy eggs", add("Buy eggs")),
    ("do laundry", add("Do laundry")),
    ("call mom friday", add("Call mom", "11-20")),
    ("water the plants tomorrow", add("Water the plants", "11-19")),
    ("I need to renew my passport", add("Renew my passport")),
    ("don't forget to feed the cat tonight", add("Feed the cat", "11-18")),
    ("remind me to pay rent next monday", add("Pay rent", "11-23")),
    # Listing, filtered by due date, priority and state.
    ("Show my tasks", ("list_tasks", {"status": "all"})),
    ("What is due this week?", pending(**days("11-18", "11-22"))),
    ("what's due this week", pending(**days("11-18", "11-22"))),
    ("what's due today?", pending(**days("11-18"))),
    ("what do I have to do today", pending(**days("11-18"))),
    ("what needs to be done today?", pending(**days("11-18"))),
    ("what's on my plate today", pending(**days("11-18"))),
    ("anything due tomorrow?", pending(**days("11-19"))),
    ("what's due next week", pending(**days("11-23", "11-29"))),
    ("show tasks due by friday", pending(due_before="2026-11-20")),
    ("what's due on friday?", pending(**days("11-20"))),
    ("what's overdue?", pending(overdue=True)),
    ("show my overdue tasks", pending(overdue=True)),
    ("list high priority tasks", ("list_tasks", {"status": "all", "priority": "high"})),
    ("show urgent tasks due this week", pending(priority="high", **days("11-18", "11-22"))),
    ("show completed tasks", ("list_tasks", {"status": "completed"})),
    ("show tasks about late fees", ("list_tasks", {"status": "all", "search": "late fees"})),
    # Completing and reopening.
    ("mark task 3 as done", ("complete_task", {"task_id": 3})),
    ("done with task 4", ("complete_task", {"task_id": 4})),
    ("I finished task 5", ("complete_task", {"task_id": 5})),
    ("tick off buy bread", ("list_tasks", {"search": "buy bread"})),
    ("reopen task 2", update(2, completed=False)),
    ("mark task 2 as not done", update(2, completed=False)),
    ("uncheck task 6", update(6, completed=False)),
    # Deleting one, and clearing the completed ones.
    ("delete task 8", ("delete_task", {"task_id": 8})),
    ("remove the dentist task", ("list_tasks", {"search": "dentist"})),
    ("clear all completed tasks", CLEAR),
    ("delete completed tasks", CLEAR),
    ("remove all done tasks", CLEAR),
    ("clean up my finished tasks", CLEAR),
    ("clear completed", CLEAR),
    ("delete the tasks that are done", CLEAR),
    # Changing due date, priority and title.
    ("move task 2 to 12/20", update(2, due_date="2026-12-20")),
    ("change the due date of task 2 to next friday", update(2, due_date="2026-11-20")),
    ("postpone task 2 until tomorrow", update(2, due_date="2026-11-19")),
    ("make task 2 low priority", update(2, priority="low")),
    ("set the priority of task 3 to high", update(3, priority="high")),
    ("rename task 2 to call the plumber", update(2, title="Call the plumber")),
    ("change task 2's title to pay the gas bill", update(2, title="Pay the gas bill")),
]  # fmt: skip


@pytest.mark.parametrize(("text", "call"), EVERYDAY)
def test_everyday_phrasings(text: str, call: Call) -> None:
    assert plan(text) == Plan(tool_calls=(ToolRequest(*call),))


def page_suggestions() -> list[str]:
    page = resources.files("chatkit_backend.web").joinpath("static/index.html").read_text()
    return [html.unescape(text) for text in re.findall(r'class="suggestion">([^<]+)<', page)]


def test_the_page_offers_suggestions() -> None:
    assert len(page_suggestions()) >= 3


@pytest.mark.parametrize("text", page_suggestions())
def test_every_suggestion_of_the_page_works_offline(text: str) -> None:
    result = plan(text)
    assert result.tool_calls, result.text


@pytest.mark.parametrize(
    "text",
    [
        "tell me a joke",
        "yes",
        "I'm tired",
        "what's the weather like?",
        "buy eggs?",
        "good night",
        "do you know me",
    ],
)
def test_chat_and_questions_are_not_added_as_tasks(text: str) -> None:
    result = plan(text)
    assert not result.tool_calls
    assert result.text.startswith("Sorry, I didn't understand that.")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("add a task", "What's the task?"),
        ("add task pay by 2026-02-30", "couldn't read the date “2026-02-30”"),
        ("move task 2 to someday", "couldn't read the date “someday”"),
        ("delete all tasks", "one task at a time"),
        ("thanks!", "Glad to help"),
    ],
)
def test_questions_back_need_no_tool(text: str, expected: str) -> None:
    result = plan(text)
    assert not result.tool_calls
    assert expected in result.text


def test_greeting_says_hello_then_help_and_the_offline_note() -> None:
    text = plan("Hello!").text
    assert text.startswith("Hi! 👋")
    assert "add a task to buy bread tomorrow" in text
    assert text.endswith(OFFLINE_NOTE)


@pytest.mark.parametrize("text", ["help", "what can you do?", "tell me a joke", ""])
def test_help_and_anything_else_end_with_the_offline_note(text: str) -> None:
    result = plan(text)
    assert not result.tool_calls
    assert "“show my pending tasks”" in result.text
    assert result.text.endswith(OFFLINE_NOTE)


def test_without_task_tools_it_says_so_instead_of_calling() -> None:
    result = planner(Conversation(user_text="show my tasks"))
    assert not result.tool_calls
    assert "aren't available" in result.text


# --- Title lookups: the list_tasks result decides the next step ---------------------


def lookup(words: str, output: str) -> ToolResult:
    return ToolResult("list_tasks", {"search": words}, output)


def test_one_match_is_acted_on() -> None:
    found = lookup("buy bread", listed(task(3, "Buy bread")))
    assert plan("mark buy bread as done", found).tool_calls == (
        ToolRequest("complete_task", {"task_id": 3}),
    )


def test_a_pending_match_is_preferred_for_completing() -> None:
    found = lookup("bread", listed(task(1, "Bread", completed=True), task(3, "Buy bread")))
    assert plan("finish bread", found).tool_calls == (ToolRequest("complete_task", {"task_id": 3}),)


def test_a_done_match_is_preferred_for_reopening() -> None:
    found = lookup("bread", listed(task(1, "Bake bread", completed=True), task(3, "Buy bread")))
    assert plan("reopen bread", found).tool_calls == (
        ToolRequest("update_task", {"task_id": 1, "completed": False}),
    )


def test_an_exact_title_wins_over_longer_ones() -> None:
    found = lookup("buy bread", listed(task(3, "Buy bread"), task(5, "Buy bread rolls")))
    assert plan("delete buy bread", found).tool_calls == (
        ToolRequest("delete_task", {"task_id": 3}),
    )


def test_updates_carry_their_changes_to_the_found_task() -> None:
    found = lookup("buy bread", listed(task(3, "Buy bread")))
    assert plan("move buy bread to friday", found).tool_calls == (
        ToolRequest("update_task", {"task_id": 3, "due_date": "2026-11-20"}),
    )
    assert plan("rename buy bread to buy rye bread", found).tool_calls == (
        ToolRequest("update_task", {"task_id": 3, "title": "Buy rye bread"}),
    )


def test_several_matches_are_listed_with_ids_and_a_question() -> None:
    found = lookup("bread", listed(task(3, "Buy bread"), task(5, "Bake bread")))
    result = plan("delete the bread task", found)
    assert not result.tool_calls
    assert "I found 2 tasks matching “bread”" in result.text
    assert "- #3 Buy bread" in result.text
    assert "- #5 Bake bread" in result.text
    assert "“delete task #3”" in result.text


def test_no_match_says_so() -> None:
    result = plan("complete buy bread", lookup("buy bread", listed()))
    assert not result.tool_calls
    assert result.text == "I couldn't find a task matching “buy bread”."


def test_the_only_match_already_done_is_not_completed_again() -> None:
    found = lookup("buy bread", listed(task(3, "Buy bread", completed=True)))
    result = plan("mark buy bread as done", found)
    assert not result.tool_calls
    assert "already done" in result.text


def test_after_the_action_the_turn_ends_with_its_result() -> None:
    found = lookup("buy bread", listed(task(3, "Buy bread")))
    done = ToolResult("complete_task", {"task_id": 3}, one(task(3, "Buy bread", completed=True)))
    assert plan("mark buy bread as done", found, done) == Plan(
        text="Marked **Buy bread** as done. ✓"
    )


def test_clearing_completed_tasks_deletes_each_then_counts_them() -> None:
    found = ToolResult(
        "list_tasks",
        {"status": "completed"},
        listed(task(1, "Pay rent", completed=True), task(4, "Buy bread", completed=True)),
    )
    assert plan("clear all completed tasks", found).tool_calls == (
        ToolRequest("delete_task", {"task_id": 1}),
        ToolRequest("delete_task", {"task_id": 4}),
    )
    deleted = [
        ToolResult("delete_task", {"task_id": i}, one(task(i, "x", completed=True))) for i in (1, 4)
    ]
    assert plan("clear all completed tasks", found, *deleted) == Plan(
        text="Cleared 2 completed tasks."
    )


def test_clearing_with_nothing_completed_says_so() -> None:
    found = ToolResult("list_tasks", {"status": "completed"}, listed())
    assert plan("clear completed", found) == Plan(text="You have no completed tasks to clear.")


def test_a_task_added_without_saying_add_says_how_to_take_it_back() -> None:
    added = ToolResult("add_task", {"title": "Buy eggs"}, one(task(7, "Buy eggs")))
    assert plan("buy eggs", added) == Plan(
        text="Added **Buy eggs** (medium priority) as task #7. "
        "(Not what you meant? Say “delete task 7”.)"
    )


# --- Replies from tool output -------------------------------------------------------


def reply(text: str, name: str, arguments: dict[str, Any], output: str) -> str:
    result = plan(text, ToolResult(name, arguments, output))
    assert not result.tool_calls
    return result.text


def test_added_reply() -> None:
    added = task(4, "Buy bread", due_date="2026-11-19")
    text = reply("add a task to buy bread tomorrow", "add_task", {}, one(added))
    assert text == "Added **Buy bread** (due tomorrow, medium priority) as task #4."


def test_added_reply_names_a_later_date() -> None:
    added = task(4, "Pay rent", priority="high", due_date="2026-11-23")
    text = reply("add pay rent on monday", "add_task", {}, one(added))
    assert text == "Added **Pay rent** (due Mon 23 Nov, high priority) as task #4."


def test_a_listing_answers_in_one_sentence_the_widget_shows_the_tasks() -> None:
    tasks = listed(
        task(1, "Pay rent", priority="high", due_date="2026-11-16"),
        task(2, "Buy bread", due_date="2026-11-18"),
        task(3, "Call mom"),
    )
    text = reply("show my pending tasks", "list_tasks", {"status": "pending"}, tasks)
    assert text == "You have 3 pending tasks."


def test_list_reply_counts_done_ones() -> None:
    tasks = listed(task(1, "Pay rent", completed=True), task(2, "Buy bread"))
    text = reply("show my tasks", "list_tasks", {"status": "all"}, tasks)
    assert text == "You have 2 tasks (1 done)."
    one_task = reply("show my tasks", "list_tasks", {"status": "all"}, listed(task(1, "Pay")))
    assert one_task == "You have 1 task."


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"status": "all"}, "Your list is empty."),
        ({"status": "pending"}, "You have no pending tasks. 🎉"),
        ({"status": "all", "priority": "high"}, "You have no high-priority tasks."),
        ({"status": "all", "search": "bread"}, "You have no tasks matching “bread”."),
        (
            {"status": "pending", "due_after": "2026-11-18", "due_before": "2026-11-22"},
            "You have no pending tasks due this week.",
        ),
        ({"status": "pending", "overdue": True}, "You have no overdue tasks."),
    ],
)
def test_empty_list_replies(arguments: dict[str, Any], expected: str) -> None:
    assert reply("show my tasks", "list_tasks", arguments, listed()).startswith(expected)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            {"due_after": "2026-11-18", "due_before": "2026-11-18"},
            "You have 1 pending task due today.",
        ),
        (
            {"due_after": "2026-11-19", "due_before": "2026-11-19"},
            "You have 1 pending task due tomorrow.",
        ),
        (
            {"due_after": "2026-11-20", "due_before": "2026-11-20"},
            "You have 1 pending task due Fri 20 Nov.",
        ),
        (
            {"due_after": "2026-11-18", "due_before": "2026-11-22"},
            "You have 1 pending task due this week.",
        ),
        (
            {"due_after": "2026-11-23", "due_before": "2026-11-29"},
            "You have 1 pending task due next week.",
        ),
        ({"due_before": "2026-11-20"}, "You have 1 pending task due by Fri 20 Nov."),
        ({"overdue": True}, "You have 1 overdue task."),
    ],
)
def test_list_replies_say_which_due_dates_they_cover(
    arguments: dict[str, Any], expected: str
) -> None:
    found = listed(task(1, "Pay rent", due_date="2026-11-18"))
    assert reply("what is due?", "list_tasks", {"status": "pending", **arguments}, found) == (
        expected
    )


def test_a_listing_longer_than_the_page_says_so() -> None:
    tasks = [task(i, f"Task {i}") for i in range(1, 101)]
    output = json.dumps({"ok": True, "count": 130, "tasks": tasks})
    text = reply("tasks", "list_tasks", {"status": "all"}, output)
    assert text == "You have 130 tasks. The list below shows the first 100."


def test_a_long_list_of_matches_is_cut_short() -> None:
    found = lookup("task", listed(*(task(i, f"Task {i}") for i in range(1, 16))))
    text = plan("delete task called task", found).text
    assert "- #10 Task 10" in text
    assert "#11" not in text
    assert "- …and 5 more" in text


def test_completed_deleted_and_updated_replies() -> None:
    bread = task(4, "Buy bread")
    assert reply("complete task 4", "complete_task", {"task_id": 4}, one(bread)) == (
        "Marked **Buy bread** as done. ✓"
    )
    assert reply("delete task 4", "delete_task", {"task_id": 4}, one(bread)) == (
        "Deleted task #4 **Buy bread**."
    )
    assert reply(
        "make task 4 high priority",
        "update_task",
        {"task_id": 4, "priority": "high"},
        one(task(4, "Buy bread", priority="high")),
    ) == ("**Buy bread** (#4) is now high priority.")
    assert reply(
        "move task 4 to friday",
        "update_task",
        {"task_id": 4, "due_date": "2026-11-20"},
        one(task(4, "Buy bread", due_date="2026-11-20")),
    ) == ("**Buy bread** (#4) is now due Fri 20 Nov.")
    assert reply(
        "rename task 4 to buy rye bread",
        "update_task",
        {"task_id": 4, "title": "Buy rye bread"},
        one(task(4, "Buy rye bread")),
    ) == ("Renamed task #4 to **Buy rye bread**.")
    assert reply(
        "reopen task 4", "update_task", {"task_id": 4, "completed": False}, one(bread)
    ) == ("Reopened **Buy bread** (#4).")


def test_titles_are_escaped_in_markdown() -> None:
    text = reply("complete task 1", "complete_task", {"task_id": 1}, one(task(1, "a*b_c")))
    assert text == r"Marked **a\*b\_c** as done. ✓"


def test_error_replies() -> None:
    missing = json.dumps({"ok": False, "error": "not_found", "message": "No task with id 9."})
    assert reply("complete task 9", "complete_task", {"task_id": 9}, missing) == (
        "I couldn't find task #9."
    )
    invalid = json.dumps({"ok": False, "error": "invalid", "message": "title: too long"})
    assert reply("add x", "add_task", {"title": "X"}, invalid) == (
        "I couldn't add that task: title: too long"
    )
    assert reply("complete task 9", "complete_task", {"task_id": 9}, "boom").startswith(
        "Sorry, that didn't work: boom"
    )


def test_a_failed_lookup_is_reported() -> None:
    broken = json.dumps({"ok": False, "error": "invalid", "message": "search: too long"})
    result = plan("complete buy bread", lookup("buy bread", broken))
    assert result == Plan(text="That didn't work: search: too long")


# --- The real Agents SDK loop -------------------------------------------------------


async def test_the_sdk_runs_the_planned_tool_and_ends_with_its_reply() -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    tasks: dict[int, dict[str, Any]] = {}

    @function_tool
    def add_task(
        title: str,
        description: str = "",
        priority: str = "medium",
        due_date: str | None = None,
        tags: list[str] | None = None,
    ) -> str:
        """Add a task."""
        calls.append(("add_task", {"title": title, "priority": priority, "due_date": due_date}))
        new = task(len(tasks) + 1, title, priority=priority, due_date=due_date)
        tasks[new["id"]] = new
        return one(new)

    @function_tool
    def list_tasks(
        status: str = "all", priority: str | None = None, search: str | None = None
    ) -> str:
        """List tasks."""
        calls.append(("list_tasks", {"status": status, "search": search}))
        found = [t for t in tasks.values() if (search or "").lower() in t["title"].lower()]
        return listed(*found)

    @function_tool
    def complete_task(task_id: int) -> str:
        """Complete a task."""
        calls.append(("complete_task", {"task_id": task_id}))
        tasks[task_id]["completed"] = True
        return one(tasks[task_id])

    @function_tool
    def delete_task(task_id: int) -> str:
        """Delete a task."""
        calls.append(("delete_task", {"task_id": task_id}))
        return one(tasks.pop(task_id))

    @function_tool
    def update_task(
        task_id: int,
        title: str | None = None,
        description: str | None = None,
        priority: str | None = None,
        due_date: str | None = None,
        completed: bool | None = None,
    ) -> str:
        """Update a task."""
        calls.append(("update_task", {"task_id": task_id}))
        return one(tasks[task_id])

    agent: Agent[Any] = Agent(
        name="t",
        model=OfflineModel(make_todo_planner(lambda: TODAY), delta_delay=0),
        tools=[add_task, list_tasks, complete_task, delete_task, update_task],
    )

    added = await Runner.run(agent, "add a task to buy bread tomorrow")
    assert calls == [
        ("add_task", {"title": "Buy bread", "priority": "medium", "due_date": "2026-11-19"})
    ]
    assert "Buy bread" in added.final_output
    assert added.final_output == "Added **Buy bread** (due tomorrow, medium priority) as task #1."

    calls.clear()
    done = await Runner.run(agent, "I finished buy bread")
    assert calls == [
        ("list_tasks", {"status": "all", "search": "buy bread"}),
        ("complete_task", {"task_id": 1}),
    ]
    assert done.final_output == "Marked **Buy bread** as done. ✓"
