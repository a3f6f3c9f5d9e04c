"""Session start and first token through the official Python Claude Agent SDK.

The peer figure beside `csp-bench first-token` and `csp-bench ready`
(docs/benchmarks.md, "Peers (issue 17)"). Run by scripts/bench-peer-sdk.sh,
which makes the venv, starts `csp mock-llm` and passes its URL here.

Each run is what an SDK user pays for one conversation: a new
`ClaudeSDKClient` spawns the CLI and `connect()` returns once the CLI has
answered the `initialize` control request ("start"); then `query()` sends the
prompt and the clock stops at the first text delta of the streamed answer
("first token", with `include_partial_messages`), for the conversation's
first turn and for a second turn in the same process. The CLI is the one csp
drives, with the same scripted answer as the csp bench (one chunk), the same
model name and the same switched-off background traffic. It prints figures
and judges nothing.
"""

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time

from claude_agent_sdk import ClaudeAgentOptions, ClaudeSDKClient, ResultMessage
from claude_agent_sdk.types import StreamEvent

# The same scripted answer as `csp-bench first-token`: a one-chunk text.
PROMPT = "MOCK" + json.dumps({"type": "text", "text": "first token", "chunks": 1}) + "MOCK"
MODEL = "claude-sonnet-4-5"


def pct(samples, p):
    """Nearest rank, as csp-bench's `Samples::pct`."""
    s = sorted(samples)
    if not s:
        return math.nan
    rank = math.ceil(p / 100 * len(s))
    return s[min(max(rank, 1), len(s)) - 1]


def is_text_delta(msg):
    if not isinstance(msg, StreamEvent):
        return False
    ev = msg.event
    return ev.get("type") == "content_block_delta" and ev.get("delta", {}).get("type") == "text_delta"


async def one_run(cli, base_url, config_dir):
    options = ClaudeAgentOptions(
        cli_path=cli,
        model=MODEL,
        include_partial_messages=True,
        # Nothing of the developer's own settings, as in csp's agents.
        setting_sources=[],
        cwd=config_dir,
        env={
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": "bench-peer-key",
            "CLAUDE_CONFIG_DIR": config_dir,
            # csp sets it for its agents too: no title or telemetry calls.
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        },
    )
    client = ClaudeSDKClient(options=options)
    t0 = time.perf_counter()
    await client.connect()
    start = (time.perf_counter() - t0) * 1e3
    # The conversation's first turn, then a second one in the same process:
    # csp-bench first-token times later turns of a running session.
    first = await first_token(client)
    second = await first_token(client)
    await client.disconnect()
    return start, first, second


async def first_token(client):
    """`query()` → the first text delta of its answer, ms; reads to the result."""
    t1 = time.perf_counter()
    await client.query(PROMPT)
    first = None
    async for msg in client.receive_response():
        if first is None and is_text_delta(msg):
            first = (time.perf_counter() - t1) * 1e3
        if isinstance(msg, ResultMessage):
            if msg.is_error:
                raise RuntimeError(f"the turn failed: {msg}")
            break
    if first is None:
        raise RuntimeError("a turn without a text delta")
    return first


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", required=True, help="the Claude Code CLI csp drives")
    ap.add_argument("--base-url", required=True, help="csp mock-llm's URL")
    ap.add_argument("--runs", type=int, default=20, help="measured runs, after one unmeasured")
    args = ap.parse_args()

    starts, firsts, seconds, totals = [], [], [], []
    for i in range(args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="csp-peer-sdk-") as config_dir:
            start, first, second = await one_run(args.cli, args.base_url, config_dir)
        if i == 0:
            continue
        starts.append(start)
        firsts.append(first)
        seconds.append(second)
        totals.append(start + first)
        print(
            f"bench-peer-sdk: run {i}: start {start:.0f} ms, first token {first:.1f} ms, "
            f"second turn {second:.1f} ms",
            file=sys.stderr,
        )

    import claude_agent_sdk

    print(
        f"\nPython Claude Agent SDK {claude_agent_sdk.__version__}, CLI {args.cli}, "
        f"scripted model; {len(starts)} runs, each a new client (ms)"
    )
    print("| figure | p50 | p90 | p99 (= max at 20) | mean |")
    print("|---|---|---|---|---|")
    for name, s in [
        ("start: connect() → initialize answered", starts),
        ("first token, the conversation's first turn: query() → first text delta", firsts),
        ("first token, its second turn (same process)", seconds),
        ("a conversation's first token: connect() → first text delta", totals),
    ]:
        print(f"| {name} | {pct(s, 50):.1f} | {pct(s, 90):.1f} | {pct(s, 99):.1f} | {sum(s) / len(s):.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
