"""Benchmark: read_page through MCP vs a plain GET of the same page through the page API.

Starts its own stack (robot init + robot run on free ports in a temp dir), creates a wiki, a token
and two pages, then times each path in one run, interleaved in rounds so machine noise hits all.
Goal: MCP / page API <= 1.5.

    .venv/bin/python bench/mcp.py [--calls 100] [--rounds 5]
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


def _timed(call, calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


def time_page_api(stack: Stack, secret: str, page: str, calls: int) -> list[float]:
    """Seconds per plain GET of the page through the page API."""
    headers = {"Host": HOST, "Authorization": f"Bearer {secret}"}
    base = f"http://127.0.0.1:{stack.port('otterwiki')}"
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:

        def get():
            response = client.get(f"/api/v1/pages/{page}")
            response.raise_for_status()
            response.json()

        return _timed(get, calls)


def time_mcp_wire(stack: Stack, secret: str, page: str, calls: int) -> list[float]:
    """Seconds per read_page as one JSON-RPC POST (the whole MCP exchange, stateless server)."""
    headers = {
        "Host": HOST,
        "Authorization": f"Bearer {secret}",
        "Accept": "application/json, text/event-stream",
    }
    base = f"http://127.0.0.1:{stack.port('mcp')}"
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "read_page", "arguments": {"path": page}},
    }
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:

        def call():
            response = client.post("/mcp", json=body)
            response.raise_for_status()
            if response.json()["result"].get("isError"):
                sys.exit(f"read_page failed: {response.text[:300]}")

        return _timed(call, calls)


async def time_mcp_client(stack: Stack, secret: str, page: str, calls: int) -> list[float]:
    """Seconds per read_page tool call through fastmcp's Client (one session)."""
    url = f"http://127.0.0.1:{stack.port('mcp')}/mcp"
    transport = StreamableHttpTransport(
        url, headers={"Host": HOST, "Authorization": f"Bearer {secret}"}
    )
    samples = []
    async with Client(transport, timeout=60) as client:
        for _ in range(calls):
            start = time.perf_counter()
            result = await client.call_tool("read_page", {"path": page})
            samples.append(time.perf_counter() - start)
            if "Section 39" not in result.content[0].text:
                sys.exit("read_page returned the wrong page")
    return samples


def measure(stack: Stack, secret: str, page: str, calls: int, rounds: int) -> dict:
    """Median milliseconds of each path, interleaved in rounds so noise hits all of them."""
    found = {"page API GET": [], "MCP, fastmcp Client": [], "MCP, one JSON-RPC POST": []}
    for _ in range(rounds):
        found["page API GET"] += time_page_api(stack, secret, page, calls)
        found["MCP, fastmcp Client"] += asyncio.run(time_mcp_client(stack, secret, page, calls))
        found["MCP, one JSON-RPC POST"] += time_mcp_wire(stack, secret, page, calls)
    return {name: statistics.median(samples) * 1000 for name, samples in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per path per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    options = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="robot-bench-mcp-") as root:
        stack = Stack(Path(root))
        try:
            stack.start()
            secret = prepare(stack)
            for page in PAGES:
                measure(stack, secret, page, 10, 1)  # warm every path up
                results[page] = measure(stack, secret, page, options.calls, options.rounds)
        finally:
            stack.stop()
    print(
        f"read_page vs GET /api/v1/pages/<page>: medians of {options.calls * options.rounds} calls"
    )
    for page, medians in results.items():
        api = medians["page API GET"]
        print(f"\n{page} page ({len(PAGES[page].encode())} bytes)")
        for name, value in medians.items():
            print(f"  {name:24} {value:7.2f} ms   ratio {value / api:.2f}x")
    headline = results["Typical"]["MCP, fastmcp Client"] / results["Typical"]["page API GET"]
    verdict = "met" if headline <= 1.5 else "NOT met"
    print(f"\nheadline (typical page, fastmcp Client): {headline:.2f}x  (goal <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
