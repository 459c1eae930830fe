"""Why the app runs torch on two threads on one thread only: a Lab training run's steps in a few seconds on
the main thread, on a second thread, and on the main thread while a second thread that ran torch on two
threads is alive but idle (libgomp throttles its threads' waiting once they outnumber the cores).

    python -m bench.omp_threads [--seconds 8]
    OMP_WAIT_POLICY=PASSIVE python -m bench.omp_threads
"""

from __future__ import annotations

import argparse
import threading

import torch

from udm import lab
from udm import lab_pipeline as lp


def steps(seconds: float) -> int:
    torch.set_num_threads(2)
    run = lp.Training(lab.Spec("digits8", ("blur", "noise")), seconds=seconds, seed=0)
    for _ in run.steps():
        pass
    return run.step


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8.0)
    s = p.parse_args().seconds
    got: dict[str, int] = {}

    def on_thread(key: str, keep: threading.Event | None = None) -> threading.Thread:
        """Steps on a second thread, which ends; with `keep`, it stays alive and idle until keep is set."""
        ran = threading.Event()

        def second() -> None:
            got[key] = steps(s)
            ran.set()
            if keep is not None:
                keep.wait()

        t = threading.Thread(target=second)
        t.start()
        ran.wait()
        if keep is None:
            t.join()
        return t

    on_thread("a second thread, the main thread never ran torch")
    got["the main thread"] = steps(s)
    on_thread("a second thread, after the main thread ran torch")
    hold = threading.Event()
    idle = on_thread("a second thread again, kept alive", hold)
    got["the main thread, that second thread alive and idle"] = steps(s)
    hold.set()
    idle.join()
    got["the main thread, that second thread ended"] = steps(s)
    print(f"| torch on two threads, steps of a Lab digits run in {s:g} s | steps |\n| --- | --- |")
    for key, n in got.items():
        print(f"| {key} | {n} |")


if __name__ == "__main__":
    main()
