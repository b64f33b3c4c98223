"""petastorm 0.13.1's end-of-ventilation race, and cloudsdk's guard against it (legacy env).

``ThreadPool.get_results()`` decides "no more results" when all ventilated work is done and
*then* asks whether the ventilator has completed. A ventilator that hands out its last item
between the two checks loses that item. This script stages exactly that interleaving with a
ventilator whose ``completed()`` ventilates the last item as it answers, then runs the same
scenario on a pool guarded by ``cloudsdk.datasets.petastorm._guard_end_of_ventilation``.
Prints ``{"unguarded": [...], "guarded": [...]}``: the items each pool returned.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import Any

from petastorm.workers_pool import EmptyResultError
from petastorm.workers_pool.thread_pool import ThreadPool
from petastorm.workers_pool.worker_base import WorkerBase

from cloudsdk.datasets.petastorm import _guard_end_of_ventilation


class EchoWorker(WorkerBase):
    def process(self, item: Any) -> None:
        self.publish_func(item)


class LastItemRacesVentilator:
    """Completed at once, but ventilates the last item just as it says so."""

    def __init__(self, pool: ThreadPool) -> None:
        self.pool = pool
        self.fired = False

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def processed_item(self) -> None:
        pass

    def completed(self) -> bool:
        if not self.fired:
            self.fired = True
            self.pool.ventilate(item="last row group")
        return True


def drain(guarded: bool) -> list[Any]:
    pool = ThreadPool(1)
    if guarded:
        _guard_end_of_ventilation(SimpleNamespace(_workers_pool=pool))
    pool.start(EchoWorker, None, ventilator=LastItemRacesVentilator(pool))
    got = []
    try:
        while True:
            got.append(pool.get_results())
    except EmptyResultError:
        pass
    finally:
        pool.stop()
        pool.join()
    return got


def main() -> int:
    print(json.dumps({"unguarded": drain(False), "guarded": drain(True)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
