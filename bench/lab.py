"""The Lab's aims on this CPU, measured: train a composed process against its time budget, then the
judge's figures of every rule that applies, and how quality grows with training time.

    python -m bench.lab                      # the three aims (about 7 minutes)
    python -m bench.lab --only noise         # one of: noise, blur+noise, words
    python -m bench.lab --latency            # a Hot-tab request while a Lab run trains, through the app

- 8 Gaussians, noise, 60 s: how many of the 8 modes the samples cover (2,000 samples per rule);
- digits8, blur + noise, 180 s: "readable" = the share of samples a classifier of the 8×8 digits
  (logistic regression on the training split; real held-out digits score the reference) calls with
  probability ≥ 0.9, and the sliced Wasserstein distance to held-out digits (256 samples per rule), at the
  default 50 sampling steps and at 100;
- 50 five-letter words (the 50 most frequent of `en5`), mask, 120 s: the share of samples that are words of
  the list (2,000 per rule).
Each row also gives the figures at a quarter and at half of the budget (the same run, paused to measure).
"""

from __future__ import annotations

import argparse
import threading
import time
from functools import cache

import torch

from udm import data, lab, text
from udm import lab_pipeline as lp

AIMS = {
    "noise": (lab.Spec("gaussians8", ("noise",)), 60, 2000),
    "blur+noise": (lab.Spec("digits8", ("blur", "noise")), 180, 256),
    "words": (lab.Spec("words", ("mask",), words=tuple(text.words("en5")[:50])), 120, 2000),
}
CONFIDENT = 0.9


@cache
def _digit_classifier():
    from sklearn.linear_model import LogisticRegression

    x, y = data.images("digits8", "train")
    return LogisticRegression(max_iter=2000).fit(x.flatten(1).numpy(), y.numpy())


def readable(images: torch.Tensor) -> float:
    """Share of 8×8 digits (N, 1, 8, 8) in [0, 1] the classifier calls with probability ≥ CONFIDENT."""
    p = _digit_classifier().predict_proba(images.flatten(1).numpy())
    return float((p.max(1) >= CONFIDENT).mean())


def figures(trained: lp.Trained, n: int, seed: int = 0, steps: int | None = None) -> dict[str, dict[str, float]]:
    out = {}
    for rule in lab.rules(trained.spec):
        if rule == "ddim":  # with noise alone it is the improved rule (tests/test_lab.py)
            continue
        final = trained.sample(rule, n, seed, steps)
        f = lp.figures(trained.spec, final)
        if trained.spec.data == "digits8":
            f["readable"] = readable(final)
        out[rule] = f
    return out


def measure(name: str) -> list[str]:
    spec, seconds, n = AIMS[name]
    run = lp.Training(spec, seconds=seconds, seed=0)
    marks, rows = [seconds / 4, seconds / 2], []
    for report in run.steps():
        if marks and (report.seconds >= marks[0] or report.done):
            marks.pop(0)
            rows.append((report.step, report.seconds, figures(run.trained(), n // 4)))
    trained = run.trained()
    rows.append((run.step, run.elapsed, figures(trained, n)))
    if spec.kind == "images":  # the same weights sampled with twice the default steps
        twice = figures(trained, n, steps=100)
        rows.append((run.step, run.elapsed, {f"{rule}, K = 100": f for rule, f in twice.items()}))
    lines = []
    for step, sec, figs in rows:
        for rule, f in figs.items():
            shown = ", ".join(f"{k} {v:.3f}" for k, v in sorted(f.items()))
            lines.append(f"| {spec.name} | {sec:.0f} s ({step} steps) | {rule} | {shown} |")
    return lines


def latency(runs: int = 3) -> None:
    """A Hot-tab request (mnist28, DDIM 50, 16 samples) alone and while a Lab run trains digits8 blur+noise;
    the main thread serves the network steps where app.py's does (app.steps_on_main_thread)."""
    from gradio_client import Client

    import app
    from bench.app_latency import _port, timed_run
    from udm.app import mainthread

    demo, port = app.build(), _port()
    demo.launch(**app.LAUNCH, server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    times: dict[str, float] = {}

    def measure() -> None:
        hot, trainer = Client(url, verbose=False), Client(url, verbose=False)
        timed_run(hot)  # loads the model
        times["alone"] = sorted(timed_run(hot)[1] for _ in range(runs))[runs // 2]
        args = ("digits8", ["blur", "noise"], None, "linear", 0.0, None, "", 120, 0)
        job = trainer.submit(*args, api_name="/lab_train")
        time.sleep(10)  # the run is training
        times["busy"] = sorted(timed_run(hot)[1] for _ in range(runs))[runs // 2]
        trainer.predict(api_name="/lab_stop")
        job.result()

    worker = threading.Thread(target=measure)
    worker.start()
    if app.steps_on_main_thread():
        mainthread.serve(worker.is_alive)
    worker.join()
    demo.close()
    alone, busy = times["alone"], times["busy"]
    print("| Hot tab defaults (mnist28, DDIM 50, 16 samples) | alone (s) | while a Lab run trains (s) | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| median of {runs} | {alone:.2f} | {busy:.2f} | {busy / alone:.2f} |")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--only", choices=list(AIMS))
    p.add_argument("--latency", action="store_true")
    args = p.parse_args()
    if args.latency:
        latency()
        return
    real = data.images("digits8", "test")[0]
    print(f"readable share of the held-out 8×8 digits themselves: {readable(real):.3f}")
    print("| process | training | rule | figures |\n| --- | --- | --- | --- |")
    for name in [args.only] if args.only else AIMS:
        for line in measure(name):
            print(line, flush=True)


if __name__ == "__main__":
    main()
