"""Network work on the process's main thread.

Torch's CPU threads are OpenMP's (libgomp). Each thread that runs torch on two threads keeps a team of
OpenMP threads of its own, and once a process holds more OpenMP threads than cores, libgomp throttles
their waiting between parallel regions: every network then runs about half as fast (a Lab run's steps:
297 in 12 s alone, 153 on a second thread after the first had run; `OMP_WAIT_POLICY=PASSIVE` makes both
142). So the app keeps one such thread: app.py's main thread, which would only wait, runs a loop (`serve`)
of the jobs that events hand it, and the events themselves run torch on one thread (`common.event`).
`steps` walks a sampling run's step records there, one step per job, so that a stream still yields
between steps; a Lab run hands its training there in slices of a few tens of milliseconds
(`background=True`), served after any waiting sampling step. Where no loop serves (a script, a test, a
GPU or ZeroGPU: `app.steps_on_main_thread`), everything runs on the thread that asks.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

_jobs: queue.PriorityQueue = queue.PriorityQueue()  # (0: a sampling step, 1: background; order, job)
_order = itertools.count()
_serving = threading.Event()
_lock = threading.Lock()  # a job is queued only while a loop serves, so none is left waiting
_END = object()
GRACE = 0.005  # seconds a background job waits after a sampling step, for that run's next one


def serve(running: Callable[[], bool], poll: float = 0.1) -> None:
    """On the main thread: run the jobs handed to `call` while running() holds. A job's error reaches its
    caller; Ctrl-C (or any BaseException) ends the loop, and every caller still waiting is told the
    server is stopping instead of being left to wait."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("mainthread.serve runs on the main thread")
    _serving.set()
    done, sampled = None, False
    try:
        while running():
            try:
                item = _jobs.get(timeout=poll)
            except queue.Empty:
                continue
            if item[0] and sampled:  # a sampling run's next step may be a moment from being asked for
                _jobs.put(item)
                time.sleep(GRACE)
                item = _jobs.get()
            background, _, (done, fn, args) = item
            sampled = not background
            try:
                done.set_result(fn(*args))
            except Exception as e:  # the caller re-raises it, where it would have been raised
                done.set_exception(e)
    finally:
        with _lock:
            _serving.clear()
        stopping = RuntimeError("the server is stopping")
        if done is not None and not done.done():
            done.set_exception(stopping)
        while not _jobs.empty():
            _jobs.get()[2][0].set_exception(stopping)


def call(fn: Callable[..., Any], *args: Any, background: bool = False) -> Any:
    """fn(*args) on the main thread when a loop serves it (the caller waits); else right here. A background
    job (a slice of a Lab run's training) waits while any sampling step does."""
    return _submit(fn, args, background).result()


def _submit(fn: Callable[..., Any], args: tuple, background: bool = False) -> Future:
    """fn(*args) queued for the main thread when a loop serves it; else computed here, now."""
    done: Future = Future()
    with _lock:
        if _serving.is_set() and threading.current_thread() is not threading.main_thread():
            _jobs.put((int(background), next(_order), (done, fn, args)))
            return done
    try:
        done.set_result(fn(*args))
    except Exception as e:
        done.set_exception(e)
    return done


def steps(records: Iterable) -> Iterator:
    """The records of a run, each computed on the main thread (see `call`). Where a loop serves, the next
    record is asked for as soon as one arrives, so that it is computed while the caller draws and streams
    this one, and no training slice slips in between."""
    it = iter(records)
    ahead = _submit(next, (it, _END))
    while (record := ahead.result()) is not _END:
        ahead = _submit(next, (it, _END)) if _serving.is_set() else None
        yield record
        if ahead is None:
            ahead = _submit(next, (it, _END))
