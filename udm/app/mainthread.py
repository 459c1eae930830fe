"""Network work on the process's main thread.

With torch's OpenMP threads this CPU runs a network about twice as fast on a process's main thread as on
any other thread (bench.hot_tab_parts), while Gradio runs every event on a worker thread and app.py's main
thread only waits. `serve` turns that wait into a loop that runs the jobs events hand it; `steps` walks a
run's step records there, one step per job, so that a stream still yields between steps. Where no loop
serves (a script, a test, a GPU or ZeroGPU: `app.steps_on_main_thread`), everything runs on the thread
that asks.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

_jobs: queue.SimpleQueue = queue.SimpleQueue()
_serving = threading.Event()
_lock = threading.Lock()  # a job is queued only while a loop serves, so none is left waiting
_END = object()
_aside = 0  # long jobs training on worker threads now (Lab runs)


def serve(running: Callable[[], bool], poll: float = 0.1) -> None:
    """On the main thread: run the jobs handed to `call` while running() holds. A job's error reaches its
    caller; Ctrl-C (or any BaseException) ends the loop, and every caller still waiting is told the
    server is stopping instead of being left to wait."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("mainthread.serve runs on the main thread")
    _serving.set()
    done = None
    try:
        while running():
            try:
                done, fn, args = _jobs.get(timeout=poll)
            except queue.Empty:
                continue
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
            _jobs.get()[0].set_exception(stopping)


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) on the main thread when a loop serves it (the caller waits); else right here."""
    with _lock:
        queued = _serving.is_set() and not _aside and threading.current_thread() is not threading.main_thread()
        if queued:
            done: Future = Future()
            _jobs.put((done, fn, args))
    return done.result() if queued else fn(*args)


@contextmanager
def aside():
    """While a long job trains on a worker thread (a Lab run, on two torch threads), runs' steps stay on
    their own threads: the main thread's two OpenMP threads beside the training's would oversubscribe the
    cores, and a Hot run would take 3.5 s instead of 2.9 s (bench.lab --latency)."""
    global _aside
    with _lock:
        _aside += 1
    try:
        yield
    finally:
        with _lock:
            _aside -= 1


def steps(records: Iterable) -> Iterator:
    """The records of a run, each computed on the main thread (see `call`)."""
    it = iter(records)
    while (record := call(next, it, _END)) is not _END:
        yield record
