"""Benchmark: what the LLM gateway adds over a direct SDK call, against a loopback server.

    make bench-llm            (builds .venv-bench with LiteLLM, the peer, then runs this)
    .venv-bench/bin/python bench/llm_gateway.py [--requests 2000]

One fake OpenAI-compatible server (``nomosx.testing.fake_llm``) on 127.0.0.1 answers every
client. Interleaved, request by request:

- direct: ``openai.AsyncOpenAI.chat.completions.create`` (the floor);
- adapter: NomosX's ``OpenAIChatModel`` alone (how it uses the SDK);
- nomosx: ``Router`` → ``InstrumentedModel`` (pricing + ledger) → ``OpenAIChatModel``;
- litellm: ``litellm.Router.acompletion`` (the peer; installed in the benchmark's own venv
  only, never a dependency of NomosX).

Prints p50/p99 latency of each and the added latency (p50/p99 of each minus the direct
call's), non-streaming and time-to-first-token streaming; then failover: the primary
refuses connections and the router moves to a second provider, first with the breaker
closed (the refused attempts are paid) and then with it open (skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable

import openai

from nomosx.breaker import CircuitBreaker
from nomosx.llm.ledger import InstrumentedModel, MemoryLedger
from nomosx.llm.providers import OpenAIChatModel, ProviderConfig
from nomosx.llm.retry import RetryPolicy
from nomosx.llm.router import Router
from nomosx.llm.types import LLMRequest, Message, TokenEvent
from nomosx.testing.fake_llm import FakeLLMServer, Reply, unused_port

MODEL = "gpt-4o-mini"
TEXT = "Carbon taxes reduced emissions by five to fifteen percent in British Columbia."
MESSAGES = [{"role": "user", "content": "Does a carbon tax reduce emissions?"}]
REQUEST = LLMRequest(messages=[Message(role="user", content=MESSAGES[0]["content"])])

# no network here: LiteLLM must use the price map it ships instead of fetching one
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

try:
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
except ImportError:  # pragma: no cover - the peer lives in the benchmark's venv
    litellm = None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ours(
    base_url: str, *, name: str = "openai", ledger: MemoryLedger | None = None
) -> InstrumentedModel:
    config = ProviderConfig(name=name, wire="openai", api_key="bench", base_url=base_url)
    return InstrumentedModel(OpenAIChatModel(config, MODEL), ledger or MemoryLedger())


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return (time.perf_counter() - t0) * 1000


async def run(requests: int) -> None:
    async with FakeLLMServer(default=Reply(text=TEXT), models=(MODEL,)) as server:
        base = server.openai_base_url
        direct = openai.AsyncOpenAI(base_url=base, api_key="bench", max_retries=0)
        adapter = OpenAIChatModel(
            ProviderConfig(name="openai", wire="openai", api_key="bench", base_url=base), MODEL
        )
        router = Router([ours(base)], policy=RetryPolicy(attempts=1))
        peer = None
        if litellm is not None:
            peer = litellm.Router(
                model_list=[
                    {
                        "model_name": MODEL,
                        "litellm_params": {
                            "model": f"openai/{MODEL}",
                            "api_base": base,
                            "api_key": "bench",
                        },
                    }
                ],
                num_retries=0,
            )

        async def call_direct() -> None:
            await direct.chat.completions.create(model=MODEL, messages=MESSAGES, temperature=0)  # type: ignore[arg-type]

        async def call_adapter() -> None:
            await adapter.complete(REQUEST)

        async def call_ours() -> None:
            await router.complete(REQUEST)

        async def call_peer() -> None:
            assert peer is not None
            await peer.acompletion(model=MODEL, messages=MESSAGES, temperature=0)

        async def ttft_direct() -> None:
            stream = await direct.chat.completions.create(
                model=MODEL,
                messages=MESSAGES,
                temperature=0,
                stream=True,  # type: ignore[arg-type]
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break
            await stream.close()

        async def ttft_adapter() -> None:
            events = adapter.stream(REQUEST)
            async for event in events:
                if isinstance(event, TokenEvent):
                    break
            await events.aclose()  # type: ignore[attr-defined]

        async def ttft_ours() -> None:
            events = router.stream(REQUEST)
            async for event in events:
                if isinstance(event, TokenEvent):
                    break
            await events.aclose()  # type: ignore[attr-defined]

        async def ttft_peer() -> None:
            assert peer is not None
            stream = await peer.acompletion(
                model=MODEL, messages=MESSAGES, temperature=0, stream=True
            )
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    break

        kinds = {
            "complete": {
                "direct": call_direct,
                "adapter": call_adapter,
                "nomosx": call_ours,
                "litellm": call_peer,
            },
            "ttft (stream)": {
                "direct": ttft_direct,
                "adapter": ttft_adapter,
                "nomosx": ttft_ours,
                "litellm": ttft_peer,
            },
        }
        print(f"{requests} requests each, interleaved, against a loopback fake OpenAI server")
        head = ("mode", "client", "p50 ms", "p99 ms", "added p50", "added p99")
        print("{:15} {:8} {:>8} {:>8} {:>10} {:>10}".format(*head))
        for mode, clients in kinds.items():
            if peer is None:
                clients.pop("litellm")
            for fn in clients.values():  # warm up connections and code paths
                for _ in range(50):
                    await fn()
            samples: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(requests):
                for name, fn in clients.items():
                    samples[name].append(await timed(fn))
            base50, base99 = pct(samples["direct"], 0.5), pct(samples["direct"], 0.99)
            added: dict[str, float] = {}
            for name, values in samples.items():
                p50, p99 = pct(values, 0.5), pct(values, 0.99)
                added[name] = p50 - base50
                extra = "" if name == "direct" else f"{p50 - base50:10.3f} {p99 - base99:10.3f}"
                print(f"{mode:15} {name:8} {p50:8.3f} {p99:8.3f} {extra}")
            router_added = pct(samples["nomosx"], 0.5) - pct(samples["adapter"], 0.5)
            print(f"{mode:15} router + ledger over its own adapter: p50 {router_added:+.3f} ms")
            if "litellm" in added and added["litellm"] > 0:
                ratio = max(added["nomosx"], router_added) / added["litellm"]
                print(f"{mode:15} nomosx added / litellm added (p50) = {ratio:.3f}")

        # failover: the primary refuses connections
        dead = f"http://127.0.0.1:{unused_port()}/v1"
        breaker = CircuitBreaker(threshold=10**9, cooldown=3600)
        failover = Router(
            [ours(dead, name="primary"), ours(base, name="secondary")],
            policy=RetryPolicy(attempts=1),
            breakers={"primary": breaker},
        )
        closed = [await timed(lambda: failover.complete(REQUEST)) for _ in range(200)]
        open_breaker = CircuitBreaker(threshold=1, cooldown=3600)
        skipping = Router(
            [ours(dead, name="primary"), ours(base, name="secondary")],
            policy=RetryPolicy(attempts=1),
            breakers={"primary": open_breaker},
        )
        await skipping.complete(REQUEST)  # opens the breaker
        opened = [await timed(lambda: skipping.complete(REQUEST)) for _ in range(200)]
        direct_ms = [await timed(call_direct) for _ in range(200)]
        print()
        print("failover (primary refuses connections, 200 requests)")
        for label, values in (
            ("direct call to the secondary", direct_ms),
            ("router, breaker closed", closed),
            ("router, breaker open (skipped)", opened),
        ):
            print(f"  {label:32} p50 {pct(values, 0.5):7.3f} ms  p99 {pct(values, 0.99):7.3f} ms")

        await direct.close()
        await router.aclose()
        await failover.aclose()
        await skipping.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(run(parser.parse_args().requests))
