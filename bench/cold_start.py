"""Cold start: seconds from `python app.py` to its page answering, best and median of `--repeats`
launches (models load lazily, the default one in the background once the server is up).

    python -m bench.cold_start [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics

from bench import serve


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = []
    for _ in range(args.repeats):
        proc, seconds = serve.start(serve.free_port())
        serve.stop(proc)
        times.append(seconds)
        print(f"ready in {seconds:.2f} s", flush=True)
    print(f"cold start: best {min(times):.2f} s, median {statistics.median(times):.2f} s over {args.repeats} launches")


if __name__ == "__main__":
    main()
