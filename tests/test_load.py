"""The short load test: 12 concurrent gradio_client users × 3 mixed requests against `python app.py`
on the tiny checkpoints (the full one, 16 × 5 on the shipped models: `python -m bench.load_test`)."""

from bench import load_test, serve


def test_twelve_users_three_requests_each(_tiny_root):
    port = serve.free_port()
    proc, ready = serve.start(port, str(_tiny_root))
    try:
        r = load_test.run_load(f"http://127.0.0.1:{port}/", proc.pid, users=12, requests=3)
    finally:
        serve.stop(proc)
    print(f"\nserver ready in {ready:.1f} s; " + load_test.report(r, 12, 3))
    assert r["failed"] == 0, r["failures"]
    assert r["requests"] == 36 and r["answer_after_s"] < 1.0
    assert r["peak_rss_mib"] < 6 * 1024
