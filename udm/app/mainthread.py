"""Network work on the process's main thread.

Torch's CPU threads are OpenMP's (libgomp). Each thread that runs torch on two threads keeps a team of
OpenMP threads of its own, and once a process holds more OpenMP threads than cores, libgomp throttles
their waiting between parallel regions: every network then runs about half as fast
(`python -m bench.omp_threads`). So the app keeps one such thread: app.py's main thread, which would only
wait, runs a loop (`serve`) of the jobs that events hand it, and the events themselves run torch on one
thread (`common.event`). `steps` walks a sampling run's step records there, one step per job, so that a
stream still yields between steps; a Lab run hands its training there in slices of a few tens of
milliseconds (`background=True`), served after any waiting sampling step, or once one has waited AGE
seconds (so that a busy server slows a training run but never stalls it, nor its Stop). Where no loop
serves (a script, a test, a GPU or ZeroGPU: `app.steps_on_main_thread`), everything runs on the thread
that asks.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from typing import Any

_cond = threading.Condition()  # guards the two queues and _serving: a job is queued only while a loop serves
_sampling: deque = deque()  # (done, fn, args): a sampling run's step
_background: deque = deque()  # (queued at, done, fn, args): a slice of a Lab run's training
_serving = threading.Event()
_END = object()
GRACE = 0.005  # seconds a background job waits after a sampling step, for that run's next one
AGE = 0.5  # seconds after which a waiting background job goes before the sampling steps


def _take(timeout: float, grace_until: float) -> tuple | None:
    """The next job (done, fn, args, background), or None after `timeout` seconds with none."""
    deadline = time.monotonic() + timeout
    with _cond:
        while True:
            now = time.monotonic()
            if _background and (now - _background[0][0] >= AGE or (not _sampling and now >= grace_until)):
                return (*_background.popleft()[1:], True)
            if _sampling:
                return (*_sampling.popleft(), False)
            if now >= deadline:
                return None
            _cond.wait(min(deadline, grace_until) - now if _background else deadline - now)


def serve(running: Callable[[], bool], poll: float = 0.1) -> None:
    """On the main thread: run the jobs handed to `call` while running() holds. A job's error reaches its
    caller; a job its caller gave up on (a closed page) is skipped; Ctrl-C (or any BaseException) ends
    the loop, and every caller still waiting is told the server is stopping instead of being left to wait."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("mainthread.serve runs on the main thread")
    _serving.set()
    job, grace_until = None, 0.0
    try:
        while running():
            job = _take(poll, grace_until)
            if job is None:
                continue
            done, fn, args, background = job
            if done.set_running_or_notify_cancel():
                _run(done, fn, args)
            if not background:
                grace_until = time.monotonic() + GRACE
            job = None
    finally:
        stopping = RuntimeError("the server is stopping")
        with _cond:
            _serving.clear()
            left = [job[0]] if job is not None else []
            left += [j[0] for j in _sampling] + [j[1] for j in _background]
            _sampling.clear()
            _background.clear()
        for done in left:
            if not done.done():
                done.set_exception(stopping)


def waiting() -> int:
    """How many jobs wait for the loop."""
    with _cond:
        return len(_sampling) + len(_background)


def serving() -> bool:
    return _serving.is_set()


def call(fn: Callable[..., Any], *args: Any, background: bool = False) -> Any:
    """fn(*args) on the main thread when a loop serves it (the caller waits); else right here. A background
    job (a slice of a Lab run's training) waits while any sampling step does, up to AGE seconds."""
    return _submit(fn, args, background).result()


def _submit(fn: Callable[..., Any], args: tuple, background: bool = False) -> Future:
    """fn(*args) queued for the main thread when a loop serves it; else computed here, now."""
    done: Future = Future()
    with _cond:
        if _serving.is_set() and threading.current_thread() is not threading.main_thread():
            if background:
                _background.append((time.monotonic(), done, fn, args))
            else:
                _sampling.append((done, fn, args))
            _cond.notify()
            return done
    _run(done, fn, args)
    return done


def _run(done: Future, fn: Callable[..., Any], args: tuple) -> None:
    try:
        done.set_result(fn(*args))
    except Exception as e:  # the caller re-raises it, where it would have been raised
        done.set_exception(e)


def steps(records: Iterable) -> Iterator:
    """The records of a run, each computed on the main thread (see `call`). Where a loop serves, the next
    record is asked for as soon as one arrives, so that it is computed while the caller draws and streams
    this one (a training slice then waits, unless the caller is slower than GRACE); if the caller stops
    early, that step is called off."""
    it = iter(records)
    ahead = _submit(next, (it, _END))
    try:
        while (record := ahead.result()) is not _END:
            ahead = _submit(next, (it, _END)) if _serving.is_set() else None
            yield record
            if ahead is None:
                ahead = _submit(next, (it, _END))
    finally:
        if ahead is not None:
            ahead.cancel()
