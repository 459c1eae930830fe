"""Hot tab latency: from pressing Generate to the first streamed frame and to the last, for the tab's
defaults (mnist28, DDIM, 50 steps, 16 samples), through gradio_client against a local server; and the
network floor (50 UNet evaluations on a batch of 16) measured in the same run.

The client reads the stream as a browser does: messages as they come, and a frame counts as shown once
its pictures are fetched (the first message's, and the last one's: pictures and animation).

    python -m bench.app_latency [--runs 7]
    UDM_MAIN_THREAD=0 python -m bench.app_latency     # every step on Gradio's worker threads (udm.app.mainthread)
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import time

import httpx
import torch
from gradio_client import Client

DEFAULTS = ("mnist28", "trained", "ddim", 50, 0.0, 0, 16)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_http = httpx.Client()  # one connection pool, as a browser keeps


def _fetch(message) -> None:
    """Fetch every file a message names, as the page's <img> tags would."""
    for out in message if isinstance(message, tuple) else (message,):
        if isinstance(out, dict) and out.get("url"):
            _http.get(out["url"]).raise_for_status()


def timed_run(client: Client) -> tuple[float, float]:
    start = time.perf_counter()
    job = client.submit(*DEFAULTS, api_name="/hot_generate")
    first, last = None, None
    for message in job:
        if first is None:
            _fetch(message)
            first = time.perf_counter() - start
        last = message
    _fetch(last)
    return first, time.perf_counter() - start


def _serve(port: int) -> subprocess.Popen:
    """`python app.py` in a process of its own (a client in the server's process would share its GIL)."""
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], stdout=subprocess.PIPE, text=True)
    for line in server.stdout:
        if "serving on" in line:
            return server
    raise RuntimeError("app.py stopped before serving")


def _floor(net: torch.nn.Module) -> float:
    """50 UNet evaluations on a batch of 16: what the run cannot do without."""
    device = next(net.parameters()).device
    x, t = torch.randn(16, 1, 28, 28, device=device), torch.full((16,), 500, device=device)
    with torch.no_grad():
        start = time.perf_counter()
        for _ in range(50):
            net(x, t)
    return time.perf_counter() - start


def main() -> None:
    from udm import hot_pipeline as pipeline

    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=7)
    args = p.parse_args()
    port = _port()
    server = _serve(port)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False, download_files=False)
        cold = timed_run(client)  # the model may still be loading in the background
        net = pipeline.hot_model("mnist28").posterior.eps_model
        _floor(net)  # warm-up
        warm, floors = [], []
        for _ in range(args.runs):  # taken in turn, so that both see the same state of a shared machine
            warm.append(timed_run(client))
            floors.append(_floor(net))
    finally:
        server.terminate()
        server.wait()
    med_first = statistics.median(w[0] for w in warm)
    med_last = statistics.median(w[1] for w in warm)
    floor = statistics.median(floors)
    shares = sorted(f / w[1] for f, w in zip(floors, warm))  # each run against the floor taken beside it
    print("| Hot tab defaults (mnist28, DDIM 50, 16 samples) | first frame (s) | last frame (s) |\n| --- | --- | --- |")
    print(f"| first request after start | {cold[0]:.2f} | {cold[1]:.2f} |")
    print(f"| later requests (median of {args.runs}) | {med_first:.2f} | {med_last:.2f} |")
    print(
        f"network floor: 50 UNet evaluations on 16 images = {floor:.2f} s (median); the network's share of a warm "
        f"run, each run against the floor measured after it: median {statistics.median(shares):.0%} "
        f"(from {shares[0]:.0%} to {shares[-1]:.0%})"
    )


if __name__ == "__main__":
    main()
