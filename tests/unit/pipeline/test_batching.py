"""DynamicBatcher: batches concurrent submissions, bounded size and wait, errors reach callers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from describeme.pipeline.batching import DynamicBatcher


class Recorder:
    def __init__(self, fail_on: int | None = None, gate: threading.Event | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail_on, self.gate = fail_on, gate

    def __call__(self, items: list[int]) -> list[int]:
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append(list(items))
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError("model exploded")
        return [i * 10 for i in items]


async def _submit_all(batcher: DynamicBatcher, groups: list[list[int]]) -> list[list[int]]:
    return await asyncio.gather(*(batcher.submit(g) for g in groups))


@pytest.mark.parametrize(
    ("groups", "max_batch", "expected_sizes"),
    [([[1]], 4, [1]), ([[1], [2], [3]], 8, [3]), ([[1, 2, 3, 4, 5]], 2, [2, 2, 1]),
     ([[1], [2], [3], [4]], 3, [3, 1]), ([[]], 4, [])],
)  # fmt: skip
def test_concurrent_submissions_share_batches(groups: list[list[int]], max_batch: int,
                                              expected_sizes: list[int]) -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=max_batch, max_wait_ms=50)
    results = asyncio.run(_submit_all(batcher, groups))
    assert results == [[i * 10 for i in g] for g in groups]
    assert [len(b) for b in recorder.batches] == expected_sizes
    assert [i for b in recorder.batches for i in b] == [i for g in groups for i in g]


def test_zero_wait_runs_without_waiting_for_more() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=8, max_wait_ms=0)

    async def staggered() -> None:
        await batcher.submit([1])
        await batcher.submit([2])

    asyncio.run(staggered())
    assert recorder.batches == [[1], [2]]


def test_items_arriving_while_a_batch_runs_form_the_next_batch() -> None:
    gate = threading.Event()
    recorder = Recorder(gate=gate)
    batcher = DynamicBatcher(recorder, max_batch_size=8, max_wait_ms=0)

    async def scenario() -> list[list[int]]:
        first = asyncio.ensure_future(batcher.submit([1]))
        await asyncio.sleep(0.05)  # batch [1] is now blocked in the worker thread
        rest = [asyncio.ensure_future(batcher.submit([i])) for i in (2, 3, 4)]
        await asyncio.sleep(0.05)
        gate.set()
        return await asyncio.gather(first, *rest)

    assert asyncio.run(scenario()) == [[10], [20], [30], [40]]
    assert recorder.batches == [[1], [2, 3, 4]]


def test_a_failing_batch_fails_its_callers_and_the_batcher_keeps_going() -> None:
    recorder = Recorder(fail_on=2)
    batcher = DynamicBatcher(recorder, max_batch_size=1, max_wait_ms=0)

    async def scenario() -> tuple[object, list[int]]:
        bad = await asyncio.gather(batcher.submit([2]), return_exceptions=True)
        good = await batcher.submit([3])
        return bad[0], good

    error, good = asyncio.run(scenario())
    assert isinstance(error, RuntimeError) and "exploded" in str(error)
    assert good == [30]


def test_wrong_result_count_is_an_error() -> None:
    batcher = DynamicBatcher(lambda items: [0], max_batch_size=4, max_wait_ms=20)
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        asyncio.run(batcher.submit([1, 2]))


@pytest.mark.parametrize(("size", "wait", "match"),
                         [(0, 1, "max_batch_size"), (2, -1, "max_wait_ms")])
def test_bad_settings(size: int, wait: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        DynamicBatcher(lambda x: x, max_batch_size=size, max_wait_ms=wait)


def test_telemetry_records_batch_sizes() -> None:
    batcher = DynamicBatcher(Recorder(), max_batch_size=4, max_wait_ms=30)
    asyncio.run(_submit_all(batcher, [[1], [2]]))
    snap = batcher.telemetry.snapshot()
    assert snap["latency"][("batch_size", ())] == [2.0]


class TwoStages:
    """``process`` (network) and ``finish`` (decoding) that log when each batch enters and
    leaves them; ``finish`` of the first batch holds until the second batch's ``process`` ran."""

    def __init__(self, fail_finish_on: int | None = None) -> None:
        self.events: list[str] = []
        self.second_processed = threading.Event()
        self.fail_finish_on = fail_finish_on

    def process(self, items: list[int]) -> list[int]:
        self.events.append(f"process {items}")
        if items[0] != 1:
            self.second_processed.set()
        return [i * 10 for i in items]

    def finish(self, items: list[int], intermediate: list[int]) -> list[int]:
        if items == [1]:
            self.second_processed.wait(5)
        self.events.append(f"finish {items}")
        if self.fail_finish_on in items:
            raise RuntimeError("decoder exploded")
        return [v + 1 for v in intermediate]


def test_two_stages_overlap_and_deliver_in_order() -> None:
    stages = TwoStages()
    batcher = DynamicBatcher(stages.process, finish=stages.finish, max_batch_size=1,
                             max_wait_ms=0)

    async def scenario() -> list[list[int]]:
        return await asyncio.gather(*(batcher.submit([i]) for i in (1, 2, 3)))

    assert asyncio.run(scenario()) == [[11], [21], [31]]
    # Batch 2 ran its network while batch 1 was still decoding; decoding kept the order.
    assert stages.events.index("process [2]") < stages.events.index("finish [1]")
    finishes = [e for e in stages.events if e.startswith("finish")]
    assert finishes == ["finish [1]", "finish [2]", "finish [3]"]


def test_a_failing_second_stage_fails_only_its_callers() -> None:
    stages = TwoStages(fail_finish_on=2)
    batcher = DynamicBatcher(stages.process, finish=stages.finish, max_batch_size=1,
                             max_wait_ms=0)

    async def scenario() -> list[object]:
        return await asyncio.gather(*(batcher.submit([i]) for i in (1, 2, 3)),
                                    return_exceptions=True)

    first, second, third = asyncio.run(scenario())
    assert first == [11] and third == [31]
    assert isinstance(second, RuntimeError) and "decoder exploded" in str(second)
