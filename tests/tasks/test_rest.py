"""REST /api/tasks on SQLite and PostgreSQL: CRUD, filters, sorts, pages, validation, isolation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from chatkit_backend.auth import current_context
from chatkit_backend.context import RequestContext
from chatkit_backend.tasks.routes import get_task_service, router
from chatkit_backend.tasks.service import TaskService

TODAY = date(2026, 3, 10)
ALICE = "alice"
BOB = "bob"

SwitchUser = Callable[[str], None]


@pytest.fixture
def app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    app.include_router(router)
    app.state.engine = engine
    app.dependency_overrides[get_task_service] = lambda: TaskService(engine, today=lambda: TODAY)
    app.dependency_overrides[current_context] = lambda: RequestContext(user_id=ALICE)
    return app


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


@pytest.fixture
def as_user(app: FastAPI) -> SwitchUser:
    """Make every following request come from `user_id`."""

    def switch(user_id: str) -> None:
        app.dependency_overrides[current_context] = lambda: RequestContext(user_id=user_id)

    return switch


async def create(client: httpx.AsyncClient, title: str = "a task", **fields: Any) -> Any:
    response = await client.post("/api/tasks", json={"title": title, **fields})
    assert response.status_code == 201, response.text
    return response.json()


async def listing(client: httpx.AsyncClient, **params: Any) -> Any:
    response = await client.get("/api/tasks", params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def titles(client: httpx.AsyncClient, **params: Any) -> list[str]:
    return [task["title"] for task in (await listing(client, **params))["items"]]


def error_fields(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    return {str(error["loc"][-1]) for error in response.json()["detail"]}


# CRUD -----------------------------------------------------------------------


async def test_create_applies_defaults_and_normalises(client: httpx.AsyncClient) -> None:
    task = await create(
        client, "  Buy bread  ", due_date="2026-03-12", tags=[" shop ", "Shop", "food"]
    )
    assert task["title"] == "Buy bread"
    assert task["description"] == ""
    assert task["priority"] == "medium"
    assert task["completed"] is False
    assert task["completed_at"] is None
    assert task["due_date"] == "2026-03-12"
    assert task["tags"] == ["shop", "food"]
    assert task["created_at"].endswith("Z")
    assert task["created_at"] == task["updated_at"]

    fetched = await client.get(f"/api/tasks/{task['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == task


async def test_patch_changes_only_the_fields_sent(client: httpx.AsyncClient) -> None:
    task = await create(
        client, "draft", description="notes", priority="high", due_date="2026-04-01", tags=["x"]
    )
    response = await client.patch(f"/api/tasks/{task['id']}", json={"title": " final "})
    assert response.status_code == 200
    patched = response.json()
    assert patched["title"] == "final"
    unchanged = ("description", "priority", "due_date", "tags", "completed", "created_at")
    assert {k: patched[k] for k in unchanged} == {k: task[k] for k in unchanged}
    assert patched["updated_at"] >= task["updated_at"]


async def test_patch_null_due_date_clears_it(client: httpx.AsyncClient) -> None:
    task = await create(client, due_date="2026-04-01")
    response = await client.patch(f"/api/tasks/{task['id']}", json={"due_date": None})
    assert response.json()["due_date"] is None


async def test_patch_null_on_a_required_field_is_422(client: httpx.AsyncClient) -> None:
    task = await create(client)
    for field in ("title", "priority", "completed", "tags", "description"):
        response = await client.patch(f"/api/tasks/{task['id']}", json={field: None})
        assert error_fields(response) == {field}


async def test_patch_empty_body_changes_nothing(client: httpx.AsyncClient) -> None:
    task = await create(client)
    response = await client.patch(f"/api/tasks/{task['id']}", json={})
    assert response.status_code == 200
    assert response.json() == task


async def test_patch_completed_sets_and_clears_completed_at(client: httpx.AsyncClient) -> None:
    task = await create(client)
    done = (await client.patch(f"/api/tasks/{task['id']}", json={"completed": True})).json()
    assert done["completed"] is True
    assert done["completed_at"] is not None
    reopened = (await client.patch(f"/api/tasks/{task['id']}", json={"completed": False})).json()
    assert reopened["completed"] is False
    assert reopened["completed_at"] is None


async def test_complete_and_reopen_are_idempotent(client: httpx.AsyncClient) -> None:
    task = await create(client)
    first = (await client.post(f"/api/tasks/{task['id']}/complete")).json()
    second = (await client.post(f"/api/tasks/{task['id']}/complete")).json()
    assert first["completed"] is True
    assert first["completed_at"] is not None
    assert second == first

    reopened = (await client.post(f"/api/tasks/{task['id']}/reopen")).json()
    again = (await client.post(f"/api/tasks/{task['id']}/reopen")).json()
    assert reopened["completed"] is False
    assert reopened["completed_at"] is None
    assert again == reopened


async def test_delete_returns_the_task_and_removes_it(client: httpx.AsyncClient) -> None:
    task = await create(client)
    response = await client.delete(f"/api/tasks/{task['id']}")
    assert response.status_code == 200
    assert response.json() == task
    assert (await client.get(f"/api/tasks/{task['id']}")).status_code == 404
    assert (await client.delete(f"/api/tasks/{task['id']}")).status_code == 404


@pytest.mark.parametrize("task_id", ["999999", "0", "-1", str(2**70)])
async def test_unknown_id_is_404_everywhere(client: httpx.AsyncClient, task_id: str) -> None:
    path = f"/api/tasks/{task_id}"
    responses = [
        await client.get(path),
        await client.patch(path, json={"title": "x"}),
        await client.delete(path),
        await client.post(f"{path}/complete"),
        await client.post(f"{path}/reopen"),
    ]
    for response in responses:
        assert response.status_code == 404
        assert response.json() == {"detail": "Task not found"}


# validation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({}, "title"),
        ({"title": "ok", "priority": "urgent"}, "priority"),
        ({"title": "ok", "due_date": "2026-02-30"}, "due_date"),
        ({"title": "ok", "due_date": "next friday"}, "due_date"),
        ({"title": "ok", "description": "x" * 1001}, "description"),
        ({"title": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags"),
        ({"title": "ok", "tags": ["x" * 31]}, 0),
        ({"title": "ok", "tags": [" "]}, 0),
        ({"title": "ok", "tags": ["a\nb"]}, 0),
        ({"title": "ok", "done": True}, "done"),
    ],
)
async def test_create_rejects_invalid_fields(
    client: httpx.AsyncClient, body: dict[str, Any], field: str | int
) -> None:
    response = await client.post("/api/tasks", json=body)
    assert error_fields(response) == {str(field)}


async def test_title_is_trimmed_before_its_length_is_checked(client: httpx.AsyncClient) -> None:
    task = await create(client, "  " + "x" * 200 + "  ")
    assert task["title"] == "x" * 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 101}, "limit"),
        ({"limit": 0}, "limit"),
        ({"offset": -1}, "offset"),
        ({"priority": "urgent"}, "priority"),
        ({"sort": "id"}, "sort"),
        ({"order": "up"}, "order"),
        ({"due_before": "soon"}, "due_before"),
        ({"due_after": "2026-13-01"}, "due_after"),
        ({"completed": "maybe"}, "completed"),
    ],
)
async def test_list_rejects_invalid_params(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/tasks", params=params)
    assert error_fields(response) == {field}


async def test_patch_rejects_invalid_fields(client: httpx.AsyncClient) -> None:
    task = await create(client)
    response = await client.patch(f"/api/tasks/{task['id']}", json={"title": "", "priority": "x"})
    assert error_fields(response) == {"title", "priority"}


# filters --------------------------------------------------------------------


async def test_filter_by_completed_and_priority(client: httpx.AsyncClient) -> None:
    await create(client, "low open", priority="low")
    high = await create(client, "high done", priority="high")
    await client.post(f"/api/tasks/{high['id']}/complete")

    assert await titles(client, completed="true") == ["high done"]
    assert await titles(client, completed="false") == ["low open"]
    assert await titles(client, priority="low") == ["low open"]
    assert await titles(client, priority="medium") == []


async def test_filter_by_tag_matches_whole_tags_ignoring_case(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "work", tags=["Work", "urgent"])
    await create(client, "homework", tags=["homework"])
    await create(client, "odd", tags=["50%_off"])

    assert await titles(client, tag="work") == ["work"]
    assert await titles(client, tag=" WORK ") == ["work"]
    assert await titles(client, tag="rk") == []
    # LIKE wildcards in a tag are literal characters.
    assert await titles(client, tag="50%_off") == ["odd"]
    assert await titles(client, tag="5%") == []


async def test_search_matches_title_or_description_ignoring_case(
    client: httpx.AsyncClient,
) -> None:
    await create(client, "Buy BREAD")
    await create(client, "Call mum", description="ask about the bread recipe")
    await create(client, "Über-Planung")
    await create(client, "Save 100%")

    assert sorted(await titles(client, search="bread")) == ["Buy BREAD", "Call mum"]
    assert await titles(client, search="  recipe ") == ["Call mum"]
    # Non-ASCII case folding must work on SQLite too, whose lower() folds ASCII only.
    assert await titles(client, search="über") == ["Über-Planung"]
    assert await titles(client, search="100%") == ["Save 100%"]
    assert await titles(client, search="1_0") == []


async def test_due_before_and_after_are_inclusive(client: httpx.AsyncClient) -> None:
    for day in (9, 10, 11):
        await create(client, f"due {day}", due_date=f"2026-03-{day:02d}")
    await create(client, "no due date")

    assert await titles(client, due_before="2026-03-10", sort="due_date") == ["due 9", "due 10"]
    assert await titles(client, due_after="2026-03-10", sort="due_date") == ["due 10", "due 11"]
    both = await titles(client, due_after="2026-03-10", due_before="2026-03-10")
    assert both == ["due 10"]


async def test_overdue_filter_uses_today_and_ignores_completed(client: httpx.AsyncClient) -> None:
    await create(client, "late", due_date="2026-03-09")
    done = await create(client, "late but done", due_date="2026-03-01")
    await client.post(f"/api/tasks/{done['id']}/complete")
    await create(client, "due today", due_date="2026-03-10")
    await create(client, "someday")

    assert await titles(client, overdue="true") == ["late"]
    not_overdue = await titles(client, overdue="false")
    assert sorted(not_overdue) == ["due today", "late but done", "someday"]


# sorting --------------------------------------------------------------------


async def test_sort_by_created_at_defaults_to_newest_first(client: httpx.AsyncClient) -> None:
    for title in ("first", "second", "third"):
        await create(client, title)
    assert await titles(client) == ["third", "second", "first"]
    assert await titles(client, sort="created_at", order="asc") == ["first", "second", "third"]


async def test_sort_by_priority_is_by_rank_not_spelling(client: httpx.AsyncClient) -> None:
    for priority in ("medium", "low", "high"):
        await create(client, priority, priority=priority)
    assert await titles(client, sort="priority") == ["high", "medium", "low"]
    assert await titles(client, sort="priority", order="desc") == ["high", "medium", "low"]
    assert await titles(client, sort="priority", order="asc") == ["low", "medium", "high"]


async def test_sort_by_due_date_puts_missing_dates_last(client: httpx.AsyncClient) -> None:
    await create(client, "none")
    await create(client, "late", due_date="2026-05-01")
    await create(client, "soon", due_date="2026-03-11")
    assert await titles(client, sort="due_date") == ["soon", "late", "none"]
    assert await titles(client, sort="due_date", order="asc") == ["soon", "late", "none"]
    assert await titles(client, sort="due_date", order="desc") == ["late", "soon", "none"]


async def test_sort_by_title_ignores_case(client: httpx.AsyncClient) -> None:
    for title in ("banana", "Cherry", "apple"):
        await create(client, title)
    assert await titles(client, sort="title") == ["apple", "banana", "Cherry"]
    assert await titles(client, sort="title", order="desc") == ["Cherry", "banana", "apple"]


async def test_sort_by_updated_at_follows_the_last_change(client: httpx.AsyncClient) -> None:
    first = await create(client, "first")
    await create(client, "second")
    await client.patch(f"/api/tasks/{first['id']}", json={"description": "touched"})
    assert await titles(client, sort="updated_at") == ["first", "second"]
    assert await titles(client, sort="updated_at", order="asc") == ["second", "first"]


# pagination -----------------------------------------------------------------


async def test_pages_cover_every_task_once_and_report_the_total(
    client: httpx.AsyncClient,
) -> None:
    for i in range(5):
        await create(client, f"task {i}")

    seen: list[int] = []
    for offset in (0, 2, 4):
        page = await listing(client, limit=2, offset=offset, sort="title", order="asc")
        assert (page["total"], page["limit"], page["offset"]) == (5, 2, offset)
        seen += [task["id"] for task in page["items"]]
    assert len(seen) == len(set(seen)) == 5

    beyond = await listing(client, offset=10)
    assert beyond["items"] == []
    assert beyond["total"] == 5


async def test_total_counts_only_matching_tasks(client: httpx.AsyncClient) -> None:
    for i in range(3):
        await create(client, f"high {i}", priority="high")
    await create(client, "low", priority="low")
    page = await listing(client, priority="high", limit=1)
    assert page["total"] == 3
    assert len(page["items"]) == 1


async def test_default_limit_is_50(client: httpx.AsyncClient) -> None:
    assert (await listing(client))["limit"] == 50


# isolation ------------------------------------------------------------------


async def test_another_user_cannot_see_or_touch_a_task(
    client: httpx.AsyncClient, as_user: SwitchUser
) -> None:
    task = await create(client, "alice's secret", due_date="2026-03-01")

    as_user(BOB)
    path = f"/api/tasks/{task['id']}"
    assert (await client.get(path)).status_code == 404
    assert (await client.patch(path, json={"title": "mine"})).status_code == 404
    assert (await client.post(f"{path}/complete")).status_code == 404
    assert (await client.post(f"{path}/reopen")).status_code == 404
    assert (await client.delete(path)).status_code == 404
    assert await listing(client) == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert (await client.get("/api/tasks/stats")).json()["total"] == 0

    as_user(ALICE)
    assert (await client.get(path)).json() == task


# stats ----------------------------------------------------------------------


async def test_stats_count_with_a_fixed_today(client: httpx.AsyncClient) -> None:
    await create(client, "overdue high", priority="high", due_date="2026-03-09")
    await create(client, "today low", priority="low", due_date="2026-03-10")
    await create(client, "later", due_date="2026-03-20")
    await create(client, "no date")
    done = await create(client, "done and late", priority="high", due_date="2026-03-01")
    await client.post(f"/api/tasks/{done['id']}/complete")

    response = await client.get("/api/tasks/stats")
    assert response.status_code == 200
    assert response.json() == {
        "total": 5,
        "completed": 1,
        "pending": 4,
        "overdue": 1,
        "due_today": 1,
        "by_priority": {"low": 1, "medium": 2, "high": 1},
    }


async def test_stats_of_a_user_without_tasks_are_zero(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/tasks/stats")
    assert response.json() == {
        "total": 0,
        "completed": 0,
        "pending": 0,
        "overdue": 0,
        "due_today": 0,
        "by_priority": {"low": 0, "medium": 0, "high": 0},
    }
