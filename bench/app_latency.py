"""Hot tab latency: from pressing Generate to the first streamed frame and to the last, for the tab's
defaults (mnist28, DDIM, 50 steps, 16 samples), through gradio_client against a local server; and the
network floor (50 UNet evaluations on a batch of 16) measured in the same run.

    python -m bench.app_latency [--runs 3]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time

import torch
from gradio_client import Client

DEFAULTS = ("mnist28", "trained", "ddim", 50, 0.0, 0, 16)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_run(client: Client) -> tuple[float, float]:
    start = time.perf_counter()
    job = client.submit(*DEFAULTS, api_name="/hot_generate")
    first = None
    for _ in job:
        first = first or time.perf_counter() - start
    return first, time.perf_counter() - start


def main() -> None:
    import app
    from udm import hot_pipeline as pipeline

    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    demo, port = app.build(), _port()
    demo.launch(**app.LAUNCH, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    cold = timed_run(client)  # includes loading the model
    warm = [timed_run(client) for _ in range(args.runs)]
    net = pipeline.hot_model("mnist28").posterior.eps_model
    device = next(net.parameters()).device
    x, t = torch.randn(16, 1, 28, 28, device=device), torch.full((16,), 500, device=device)
    with torch.no_grad():
        net(x, t)
        start = time.perf_counter()
        for _ in range(50):
            net(x, t)
    floor = time.perf_counter() - start
    demo.close()
    med_first = statistics.median(w[0] for w in warm)
    med_last = statistics.median(w[1] for w in warm)
    print("| Hot tab defaults (mnist28, DDIM 50, 16 samples) | first frame (s) | last frame (s) |\n| --- | --- | --- |")
    print(f"| first request (loads the model) | {cold[0]:.2f} | {cold[1]:.2f} |")
    print(f"| later requests (median of {args.runs}) | {med_first:.2f} | {med_last:.2f} |")
    print(f"network floor: 50 UNet evaluations on 16 images = {floor:.2f} s ({floor / med_last:.0%} of a warm run)")


if __name__ == "__main__":
    main()
