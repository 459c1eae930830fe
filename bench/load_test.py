"""Load: `--users` concurrent gradio_client users, each sending `--requests` mixed requests across the tabs,
against a local `python app.py`. Reports failures, p50 / p95 latency, the server's peak memory (RSS),
and how soon after the last request the server answers a quick one.

    python -m bench.load_test [--users 16] [--requests 5]
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import psutil

from bench import serve

NONE = "—"
# (api name, arguments): small, CPU-friendly requests of every tab
REQUESTS = [
    ("/hot_generate", ("moons", "trained", "ddim", 20, 0.0, 0, 256)),
    ("/hot_generate", ("mnist28", "trained", "ddim", 10, 0.0, 1, 4)),
    ("/cold_run", ("blur", 0.0, "generate", 5, 0.0, 0.0, 0, 4)),
    ("/mask_run", ("en5", "trained", 1.0, 0, 8, 1, None)),
    ("/edit_run", ("en5", "trained", 1.0, 0, 8)),
    ("/encoding_run", ("en5", "ddim", 10, 0.0, 0.0, 0, 8)),
    ("/compare_run", ("hot", "moons", "ddpm", 10, 0.0, "ddim", 10, 0.0, NONE, 5, 0.0, NONE, 5, 0.0, 0, 16)),
]


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q * (len(xs) - 1))))]


def run_load(url: str, pid: int, users: int, requests: int) -> dict:
    """Drive the server at `url` (process `pid`); return the figures."""
    from gradio_client import Client

    latencies: list[float] = []
    failures: list[str] = []
    lock, done = threading.Lock(), threading.Event()
    peak = [0]

    def watch():
        proc = psutil.Process(pid)
        while not done.is_set():
            try:
                rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            except psutil.Error:
                break
            peak[0] = max(peak[0], rss)
            time.sleep(0.05)

    def user(i: int):
        client = Client(url, verbose=False)
        for j in range(requests):
            api, args = REQUESTS[(i + j) % len(REQUESTS)]
            start = time.perf_counter()
            try:
                client.predict(*args, api_name=api)
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as e:  # every failure is counted and reported
                with lock:
                    failures.append(f"{api}: {e.__class__.__name__}: {str(e)[:120]}")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    after = time.perf_counter()
    Client(url, verbose=False).predict("moons", api_name="/hot_forward")
    answer_after = time.perf_counter() - after
    done.set()
    watcher.join()
    return {
        "requests": users * requests,
        "failed": len(failures),
        "failures": failures[:5],
        "p50": percentile(latencies, 0.5) if latencies else float("nan"),
        "p95": percentile(latencies, 0.95) if latencies else float("nan"),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
        "wall": wall,
        "peak_rss_mib": peak[0] / 2**20,
        "answer_after_s": answer_after,
    }


def report(r: dict, users: int, requests: int) -> str:
    return (
        f"{users} users × {requests} requests = {r['requests']}: {r['failed']} failed; latency p50 {r['p50']:.2f} s, "
        f"p95 {r['p95']:.2f} s; all done in {r['wall']:.1f} s; peak server RSS {r['peak_rss_mib']:.0f} MiB; "
        f"a quick request answered {r['answer_after_s']:.2f} s after the last one finished"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=16)
    p.add_argument("--requests", type=int, default=5)
    p.add_argument("--checkpoints", help="checkpoint folder (default: the shipped ones)")
    args = p.parse_args()
    port = serve.free_port()
    proc, ready = serve.start(port, args.checkpoints)
    print(f"server ready in {ready:.1f} s", flush=True)
    try:
        r = run_load(f"http://127.0.0.1:{port}/", proc.pid, args.users, args.requests)
    finally:
        serve.stop(proc)
    print(report(r, args.users, args.requests))
    for f in r["failures"]:
        print("  failure:", f)


if __name__ == "__main__":
    main()
