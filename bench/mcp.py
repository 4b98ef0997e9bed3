"""Benchmark: read_page through MCP vs a plain GET of the same page through the page API.

Starts two stacks (robot init + robot run on free ports in a temp dir), one with the platform DB
on SQLite and one on a throwaway PostgreSQL (tests/postgres.py), creates a wiki, a token and two
pages in each, then times each path on each stack in one run, taking turns call by call:

- page API GET: the baseline, one request with a plain HTTP client;
- MCP request: the very request fastmcp's Client sends for `read_page` (headers and JSON-RPC body
  recorded from it), sent by the same HTTP client as the GET. The two differ only in what the
  platform does with them, so their ratio is the goal's measure: MCP / page API <= 1.5
  (on SQLite, the embedded default; PostgreSQL's figures are printed beside it);
- MCP, fastmcp Client: the whole client library's call, which adds its own Python on top.

    .venv/bin/python bench/mcp.py [--calls 500] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path, where its own name would shadow
# the `mcp` package: put the repository root there instead.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

import httpx2  # noqa: E402
from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import StreamableHttpTransport  # noqa: E402

from tests.conftest import Stack  # noqa: E402
from tests.postgres import PostgresCluster  # noqa: E402

ENGINES = ("SQLite", "PostgreSQL")  # the platform DB under each stack; goals hold on SQLite
SLUG = "bench-mcp"
HOST = f"{SLUG}.localhost"
OWNER = "did:plc:bench-owner"


def page_text(sections: int) -> str:
    """Markdown like a real wiki page: headings, text, links, lists and code blocks."""
    return "# Bench\n\n" + "\n".join(
        f"## Section {n}\n\nSome text about item {n}, with a [[Link{n}]].\n\n- one\n- two\n\n"
        f"```python\nprint({n})\n```\n"
        for n in range(sections)
    )


# A typical page (~4 KB) and a long one (~20 KB, the size bench/tenancy.py uses).
PAGES = {"Typical": page_text(40), "Long": page_text(200)}


def prepare(stack: Stack) -> str:
    """Create the bench wiki, its owner's token and the pages; return the token."""
    for args in (
        ("user", "add", "--did", OWNER, "--handle", "bench.test"),
        ("wiki", "create", SLUG, "--owner", OWNER),
    ):
        done = stack.robot(*args)
        if done.returncode:
            sys.exit(f"robot {' '.join(args)} failed: {done.stdout}{done.stderr}")
    token = stack.robot("token", "create", SLUG, "--user", OWNER, "--role", "editor")
    secret = token.stdout.strip().splitlines()[-1]
    with stack.client("otterwiki", host=HOST) as client:
        for name, content in PAGES.items():
            put = client.put(
                f"/api/v1/pages/{name}",
                json={"content": content},
                headers={"Authorization": f"Bearer {secret}"},
            )
            put.raise_for_status()
    return secret


def _timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


class RecordedCall:
    """The last `tools/call` request a client sent: its headers and body, to send again as is."""

    def __init__(self):
        self.headers: dict[str, str] = {}
        self.body = b""

    async def hook(self, request: httpx2.Request) -> None:
        if request.method == "POST" and b'"tools/call"' in request.content:
            skip = {"content-length", "host"}
            self.headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
            self.body = request.content

    def client_factory(self, **kwargs) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(**kwargs, event_hooks={"request": [self.hook]})


async def measure(stack: Stack, secret: str, page: str, calls: int) -> dict[str, float]:
    """Median milliseconds of each path; the paths take turns call by call, so load that
    comes and goes on a shared machine hits all of them alike."""
    auth = {"Host": HOST, "Authorization": f"Bearer {secret}"}
    wiki = httpx2.Client(base_url=f"http://127.0.0.1:{stack.port('otterwiki')}", headers=auth)
    mcp_base = f"http://127.0.0.1:{stack.port('mcp')}"
    wire = httpx2.Client(base_url=mcp_base, headers=auth, timeout=30)
    recorded = RecordedCall()
    transport = StreamableHttpTransport(
        f"{mcp_base}/mcp", headers=auth, httpx_client_factory=recorded.client_factory
    )

    def get():
        response = wiki.get(f"/api/v1/pages/{page}")
        response.raise_for_status()
        response.json()

    def post():
        response = wire.post("/mcp", content=recorded.body, headers=recorded.headers)
        response.raise_for_status()
        if response.json()["result"].get("isError"):
            sys.exit(f"read_page failed: {response.text[:300]}")

    async def call_tool():
        result = await client.call_tool("read_page", {"path": page})
        if not any("Section 39" in block.text for block in result.content):
            sys.exit("read_page returned the wrong page")

    samples = {"page API GET": [], "MCP request": [], "MCP, fastmcp Client": []}
    with wiki, wire:
        async with Client(transport, timeout=60) as client:
            await call_tool()  # the request to send again
            for _ in range(calls):
                samples["page API GET"].append(_timed(get))
                samples["MCP request"].append(_timed(post))
                start = time.perf_counter()
                await call_tool()
                samples["MCP, fastmcp Client"].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1000 for name, values in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="calls per path, page and run")
    parser.add_argument("--runs", type=int, default=3, help="measurements of each page")
    options = parser.parse_args()
    runs = {engine: {page: [] for page in PAGES} for engine in ENGINES}
    with (
        tempfile.TemporaryDirectory(prefix="robot-bench-mcp-") as root,
        PostgresCluster() as cluster,
    ):
        cluster.create_database("bench")
        stacks = {}
        try:
            for engine in ENGINES:
                folder = Path(root) / engine
                folder.mkdir()
                env = {"ROBOT_DB_URL": cluster.url("bench")} if engine == "PostgreSQL" else {}
                stacks[engine] = Stack(folder, **env)
                stacks[engine].start()
            secrets = {engine: prepare(stack) for engine, stack in stacks.items()}
            for engine, stack in stacks.items():
                for page in PAGES:
                    asyncio.run(measure(stack, secrets[engine], page, 20))  # warm every path
            # Engines and pages take turns run by run, so a burst of other load hits all alike.
            for _ in range(options.runs):
                for engine, stack in stacks.items():
                    for page in PAGES:
                        measured = asyncio.run(measure(stack, secrets[engine], page, options.calls))
                        runs[engine][page].append(measured)
        finally:
            for stack in stacks.values():
                stack.stop()
    print(
        f"read_page vs GET /api/v1/pages/<page>: medians of {options.calls} calls each, "
        f"{options.runs} run(s); the figures below are the median run"
    )
    for engine in ENGINES:
        report(engine, runs[engine])
    print()
    for engine in ENGINES:
        headline = statistics.median(
            run["MCP request"] / run["page API GET"] for run in runs[engine]["Typical"]
        )
        verdict = "met" if headline <= 1.5 else "NOT met"
        print(
            f"headline on {engine} (typical page, MCP request vs GET, same HTTP client, median "
            f"run): {headline:.2f}x  (goal <= 1.5x: {verdict})"
        )


def report(engine: str, runs: dict[str, list[dict[str, float]]]) -> None:
    """Print one engine's figures: per page and path, the median run's ms and ratio to GET."""
    for page, measured in runs.items():
        print(f"\n{page} page ({len(PAGES[page].encode())} bytes), platform DB on {engine}")
        for name in measured[0]:
            value = statistics.median(run[name] for run in measured)
            ratios = [run[name] / run["page API GET"] for run in measured]
            each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            print(
                f"  {name:24} {value:7.2f} ms   ratio {statistics.median(ratios):.2f}x"
                f"   (runs: {each})"
            )


if __name__ == "__main__":
    main()
