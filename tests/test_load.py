"""The short load test: 16 concurrent gradio_client users × 5 mixed requests against `python app.py`
on the tiny checkpoints (the full one, on the shipped models: `python -m bench.load_test`)."""

from bench import load_test, serve


def test_sixteen_users_five_requests_each(_tiny_root):
    port = serve.free_port()
    proc, ready = serve.start(port, str(_tiny_root))
    try:
        r = load_test.run_load(f"http://127.0.0.1:{port}/", proc.pid, users=16, requests=5)
    finally:
        serve.stop(proc)
    print(f"\nserver ready in {ready:.1f} s; " + load_test.report(r, 16, 5))
    assert r["failed"] == 0, r["failures"]
    assert r["requests"] == 80 and r["answer_after_s"] < 1.0
    assert r["peak_rss_mib"] < 6 * 1024
