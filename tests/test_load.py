"""The short load test: 8 concurrent gradio_client users × 2 mixed requests against `python app.py`
on the tiny checkpoints (the full one, 16 × 5 on the shipped models: `python -m bench.load_test`)."""

from bench import load_test, serve


def test_eight_users_two_requests_each(_tiny_root):
    port = serve.free_port()
    proc, ready = serve.start(port, str(_tiny_root))
    try:
        r = load_test.run_load(f"http://127.0.0.1:{port}/", proc.pid, users=8, requests=2)
    finally:
        serve.stop(proc)
    print(f"\nserver ready in {ready:.1f} s; " + load_test.report(r, 8, 2))
    assert r["failed"] == 0, r["failures"]
    assert r["requests"] == 16 and r["answer_after_s"] < 1.0
    assert r["peak_rss_mib"] < 6 * 1024
