"""The dashboard's files, served by the gateway: its page at `/`, and every module the page loads
(a module that imports a file that is not there breaks the whole page)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx

from .conftest import Running

MODULE_REFERENCES = re.compile(
    r"""(?:\bfrom\s+|\bimport\s*\(\s*)["']([^"']+)["']"""  # from "./x.js", import("./x.js")
    r"""|["'](/dashboard/[^"']+)["']"""  # "/dashboard/worklets.js"
)
"""What a module loads: its imports (static or dynamic), and the dashboard files it names."""


async def test_the_dashboard_is_served_at_the_root(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/dashboard/app.js">' in page.text
    # Only its own files run: no inline script, nothing from elsewhere.
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-cache"


async def test_every_file_the_dashboard_loads_is_served(running: Running) -> None:
    loaded: dict[str, httpx.Response] = {}
    to_load = ["/dashboard/app.js", "/dashboard/style.css", "/dashboard/icon.svg"]
    async with httpx.AsyncClient(base_url=running.http_url) as client:
        while to_load:
            path = to_load.pop()
            if path in loaded:
                continue
            loaded[path] = response = await client.get(path)
            assert response.status_code == 200, path
            if path.endswith(".js"):
                assert "javascript" in response.headers["content-type"], path
                for relative, absolute in MODULE_REFERENCES.findall(response.text):
                    to_load.append(absolute or urljoin(path, relative))
    assert {"/dashboard/worklets.js", "/dashboard/pages/call.js"} <= loaded.keys()
    assert all(r.headers["cache-control"] == "no-cache" for r in loaded.values())
