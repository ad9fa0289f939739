"""Requests of one event-loop turn answered by one round trip.

A web process under load takes many requests in each turn of its event
loop (every connection that became readable at once). When each of them
needs the same kind of lookup (the job read's row, the throttle's count),
sending one query or script call per request costs a round trip, a wake-up
of the other server and the client library's work per request. A
`Coalescer` collects the keys asked for during one turn and hands them to
`run` together at the start of the next; every caller gets its own
answer. Nothing is answered from before the caller asked: the batch is sent
after every key in it was asked for, so an answer is as fresh as a query of
its own would have been.

Hand-written (a dict of futures and one `call_soon`): asyncio has no
batching primitive, and the few libraries that batch ("dataloaders") are
built for GraphQL resolvers, with their own caching semantics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Coalescer(Generic[K, V]):
    """`await get(key)`: `run`'s answer to this ask of `key`.

    `run` is called once per loop turn with each distinct key asked for in
    that turn and how many times it was asked; it returns a list of that
    many answers for each key (each ask gets its own: a throttle counts every
    request, a read may answer them all with the same row). A key missing from
    its map answers None; an exception it raises is raised to every caller of
    its batch.
    """

    def __init__(self, run: Callable[[dict[K, int]], Awaitable[dict[K, list[V]]]]) -> None:
        self._run = run
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: dict[K, list[asyncio.Future[V | None]]] = {}
        self._running: set[asyncio.Task[None]] = set()  # the loop keeps weak references only

    async def get(self, key: K) -> V | None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a loop's futures are not another's (tests run several)
            self._loop, self._pending = loop, {}
        if not self._pending:
            loop.call_soon(self._flush)
        future: asyncio.Future[V | None] = loop.create_future()
        self._pending.setdefault(key, []).append(future)
        # Shielded: a caller cancelled (its client went away) leaves the others their answer.
        return await asyncio.shield(future)

    def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        if batch:
            task = asyncio.ensure_future(self._answer(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _answer(self, batch: dict[K, list[asyncio.Future[V | None]]]) -> None:
        try:
            found = await self._run({key: len(futures) for key, futures in batch.items()})
        except asyncio.CancelledError:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            for futures in batch.values():
                _fail(futures, exc)
            return
        for key, futures in batch.items():
            answers = found.get(key, [None] * len(futures))
            if len(answers) != len(futures):  # a wrong `run` leaves no caller waiting
                _fail(
                    futures, ValueError(f"{len(answers)} answers to {len(futures)} asks of {key!r}")
                )
                continue
            for future, answer in zip(futures, answers, strict=True):
                if not future.done():
                    future.set_result(answer)


def _fail(futures: list[asyncio.Future[Any]], error: Exception) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)
            future.exception()  # retrieved here: a caller may have gone
