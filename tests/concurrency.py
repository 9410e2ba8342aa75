"""Real threads started at the same moment, for the races the invariants are about (I1-I4).

Only meaningful on PostgreSQL with ``django_db(transaction=True)``: every thread opens
its own connection, so the racers' transactions really overlap (``select_for_update``
is a no-op on SQLite and hidden inside a test's own transaction).
"""

import threading
from collections.abc import Callable

from django.db import connection


def run_concurrently(*calls: Callable, times: int | None = None,
                     return_exceptions: bool = False, timeout: float = 60.0) -> list:
    """Run each call in its own thread, all released together by a barrier.

    ``run_concurrently(a, b, c)`` runs each callable once, without arguments;
    ``run_concurrently(work, times=n)`` runs ``work(index)`` for index 0 .. n-1, so a
    racer can tell which one it is.

    Answers what each returned, in the calls' order. A call that raised answers its
    exception when ``return_exceptions`` (the outcome under test: a 409's
    ``CaseConflict``); otherwise the first exception is raised here, in the test's
    thread, once every thread has finished. Each thread closes its database connection.
    """
    if times is not None:
        if len(calls) != 1:
            raise TypeError("run_concurrently(work, times=n) takes exactly one callable.")
        work = calls[0]
        calls = tuple(lambda index=index: work(index) for index in range(times))
    if not calls:
        return []
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)
    failed: list[bool] = [False] * len(calls)

    def run(index: int, call: Callable) -> None:
        try:
            barrier.wait(timeout=timeout)
            outcomes[index] = call()
        except BaseException as exc:  # answered or raised below, in the test's thread
            outcomes[index], failed[index] = exc, True
        finally:
            connection.close()  # each thread has its own connection

    threads = [threading.Thread(target=run, args=(index, call), daemon=True)
               for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    stuck = [index for index, thread in enumerate(threads) if thread.is_alive()]
    if stuck:
        raise AssertionError(f"Calls {stuck} were still running after {timeout} s.")
    errors = [outcome for outcome, bad in zip(outcomes, failed, strict=True) if bad]
    if errors and not return_exceptions:
        raise AssertionError(f"{len(errors)} of {len(calls)} calls raised: {errors!r}") \
            from errors[0]
    return outcomes
