"""Benchmark: read_page through MCP vs a plain GET of the same page through the page API.

Starts its own stack (robot init + robot run on free ports in a temp dir), creates a wiki, a token
and a page, then times both paths in one run, interleaved in rounds so machine noise hits both.
Goal: MCP / page API <= 1.5.

    .venv/bin/python bench/mcp.py [--calls 200] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx2  # noqa: E402
from fastmcp import Client  # noqa: E402
from fastmcp.client.transports import StreamableHttpTransport  # noqa: E402

from tests.conftest import Stack  # noqa: E402

SLUG = "bench-mcp"
HOST = f"{SLUG}.localhost"
OWNER = "did:plc:bench-owner"
# A typical wiki page: a few KB of Markdown with headings, lists and code.
PAGE = "# Bench\n\n" + "\n".join(
    f"## Section {n}\n\nSome text about item {n}, with a [[Link{n}]].\n\n- one\n- two\n\n"
    f"```python\nprint({n})\n```\n"
    for n in range(40)
)


def prepare(stack: Stack) -> str:
    """Create the bench wiki, its owner's token and the page; return the token."""
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
        put = client.put(
            "/api/v1/pages/Bench",
            json={"content": PAGE},
            headers={"Authorization": f"Bearer {secret}"},
        )
        put.raise_for_status()
    return secret


def time_page_api(stack: Stack, secret: str, calls: int) -> list[float]:
    """Seconds per plain GET of the page through the page API (one keep-alive client)."""
    headers = {"Host": HOST, "Authorization": f"Bearer {secret}"}
    base = f"http://127.0.0.1:{stack.port('otterwiki')}"
    samples = []
    with httpx2.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(calls):
            start = time.perf_counter()
            response = client.get("/api/v1/pages/Bench")
            response.raise_for_status()
            response.json()
            samples.append(time.perf_counter() - start)
    return samples


async def time_mcp(stack: Stack, secret: str, calls: int) -> list[float]:
    """Seconds per read_page tool call through MCP (one fastmcp client session)."""
    url = f"http://127.0.0.1:{stack.port('mcp')}/mcp"
    transport = StreamableHttpTransport(
        url, headers={"Host": HOST, "Authorization": f"Bearer {secret}"}
    )
    samples = []
    async with Client(transport, timeout=60) as client:
        for _ in range(calls):
            start = time.perf_counter()
            result = await client.call_tool("read_page", {"path": "Bench"})
            samples.append(time.perf_counter() - start)
            if "Section 39" not in result.content[0].text:
                sys.exit("read_page returned the wrong page")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per path per round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="robot-bench-mcp-") as root:
        stack = Stack(Path(root))
        try:
            stack.start()
            secret = prepare(stack)
            time_page_api(stack, secret, 20)  # warm both paths up
            asyncio.run(time_mcp(stack, secret, 20))
            api, mcp = [], []
            for _ in range(options.rounds):
                api += time_page_api(stack, secret, options.calls)
                mcp += asyncio.run(time_mcp(stack, secret, options.calls))
        finally:
            stack.stop()
    api_ms, mcp_ms = statistics.median(api) * 1000, statistics.median(mcp) * 1000
    print(f"page size: {len(PAGE.encode())} bytes; {len(api)} calls per path")
    print(f"page API GET     median {api_ms:7.2f} ms   mean {statistics.mean(api) * 1000:7.2f} ms")
    print(f"MCP read_page    median {mcp_ms:7.2f} ms   mean {statistics.mean(mcp) * 1000:7.2f} ms")
    ratio = mcp_ms / api_ms
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print(f"ratio MCP / page API (medians): {ratio:.2f}x  (goal <= 1.5x: {verdict})")


if __name__ == "__main__":
    main()
