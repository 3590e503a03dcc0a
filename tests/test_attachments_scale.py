"""Attachments with two instances on one PostgreSQL and S3 storage: any instance takes
any step (create, upload, send, preview)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from .s3_server import S3_ENV, new_bucket, s3_endpoint  # noqa: F401 (a fixture)
from .scripted_provider import ScriptedProvider, Text
from .test_attachments import PNG, message
from .test_scale import database_env, env, instances, pg_url  # noqa: F401 (fixtures)


def on(instance_url: str, url: str) -> str:
    """`url` (made by one instance) sent to another instance instead."""
    parts = urlsplit(url)
    return instance_url.rstrip("/") + parts.path + "?" + parts.query


async def test_any_instance_takes_any_step(
    env: dict[str, str],  # noqa: F811
    s3_endpoint: str,  # noqa: F811
    provider: ScriptedProvider,
    tmp_path: Path,
) -> None:
    env = {
        **env,
        **S3_ENV,
        "ATTACHMENTS_URL": f"s3://{new_bucket(s3_endpoint)}/scale",
        "ATTACHMENTS_S3_ENDPOINT": s3_endpoint,
    }
    with instances(env, tmp_path, 1, 1) as (a, b):
        on_a, on_b = a.client("alice"), b.client("alice")
        try:
            created = await on_a.call(
                "attachments.create", name="chart.png", size=len(PNG), mime_type="image/png"
            )
            async with httpx.AsyncClient() as browser:
                upload = on(b.url, created["upload_descriptor"]["url"])
                uploaded = await browser.post(upload, files={"file": ("chart.png", PNG)})
                assert uploaded.status_code == 200, uploaded.text
                preview = await browser.get(on(a.url, uploaded.json()["preview_url"]))
                assert preview.content == PNG

            provider.enqueue(Text("A chart."))
            events = await on_b.stream("threads.create", input=message("what?", created["id"]))
            assert events[0]["type"] == "thread.created"
            bodies = [json.dumps(r) for r in provider.requests]
            assert any("data:image/png;base64," in body for body in bodies)

            thread_id = events[0]["thread"]["id"]
            await on_a.call("threads.delete", thread_id=thread_id)
            async with httpx.AsyncClient() as browser:
                gone = await browser.get(on(b.url, uploaded.json()["preview_url"]))
            assert gone.status_code == 404
        finally:
            await on_a.aclose()
            await on_b.aclose()
