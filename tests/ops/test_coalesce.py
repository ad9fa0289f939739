"""The loop-turn batching under the job read: each ask its own answer, errors to every caller."""

from __future__ import annotations

import asyncio

import pytest

from meeting_intel.lib.coalesce import Coalescer


def test_the_asks_of_one_turn_go_in_one_batch_and_each_gets_its_answer():
    batches: list[dict[str, int]] = []

    async def run(asks: dict[str, int]) -> dict[str, list[str]]:
        batches.append(dict(asks))
        return {key: [f"{key}{i}" for i in range(n)] for key, n in asks.items() if key != "gone"}

    async def main():
        batcher: Coalescer[str, str] = Coalescer(run)
        first = await asyncio.gather(*(batcher.get(k) for k in ("a", "b", "a", "gone")))
        second = await batcher.get("a")  # a later turn: a batch of its own
        return first, second

    first, second = asyncio.run(main())
    assert batches == [{"a": 2, "b": 1, "gone": 1}, {"a": 1}]
    assert first == ["a0", "b0", "a1", None] and second == "a0"


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_runs():
    calls = 0

    async def run(asks: dict[str, int]) -> dict[str, list[int]]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError("down")
        return {key: [1] * n for key, n in asks.items()}

    async def main():
        batcher: Coalescer[str, int] = Coalescer(run)
        failed = await asyncio.gather(batcher.get("a"), batcher.get("b"), return_exceptions=True)
        return failed, await batcher.get("a")

    failed, later = asyncio.run(main())
    assert [type(e) for e in failed] == [ConnectionError, ConnectionError] and later == 1


def test_a_caller_that_goes_away_leaves_the_others_their_answer():
    async def main():
        gate = asyncio.Event()

        async def run(asks: dict[str, int]) -> dict[str, list[int]]:
            await gate.wait()
            return {key: [7] * n for key, n in asks.items()}

        batcher: Coalescer[str, int] = Coalescer(run)
        leaving = asyncio.ensure_future(batcher.get("a"))
        staying = asyncio.ensure_future(batcher.get("a"))
        await asyncio.sleep(0.01)
        leaving.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return await staying

    assert asyncio.run(main()) == 7


def test_a_wrong_count_of_answers_fails_its_callers_instead_of_leaving_them_waiting():
    async def run(asks: dict[str, int]) -> dict[str, list[int]]:
        return {key: [1] for key in asks}  # one answer, whatever was asked

    async def main():
        batcher: Coalescer[str, int] = Coalescer(run)
        return await asyncio.wait_for(
            asyncio.gather(batcher.get("a"), batcher.get("a"), return_exceptions=True), 5
        )

    assert [type(e) for e in asyncio.run(main())] == [ValueError, ValueError]
