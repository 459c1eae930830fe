"""The app's endpoints through gradio_client against a launched server, on tiny checkpoints."""

import time

import pytest
from PIL import Image


def test_every_event_is_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/hot_generate", "/hot_scrub", "/hot_forward"} <= names


@pytest.mark.parametrize(
    "dataset,model,sampler",
    [("mnist28", "trained", "ddim"), ("moons", "trained", "analytic-ddpm"), ("gaussians8", "exact", "analytic-ddim")],
)
def test_generate_streams_frames_then_finishes(client, dataset, model, sampler):
    job = client.submit(dataset, model, sampler, 6, 0.0, 3, 4, api_name="/hot_generate")
    updates = list(job)
    assert len(updates) >= 2  # at least the first streamed frame and the final result
    x_t, x0_hat, info, samples, gif, frame = updates[-1]  # (the gr.State is not sent)
    assert f"{sampler}, 6 steps" in info
    assert Image.open(gif).format == "GIF" and Image.open(gif).is_animated
    for path in (x_t, x0_hat, samples):
        assert Image.open(path).size[0] > 0
    assert frame["maximum"] == 5


def test_the_distilled_student_is_offered_for_mnist_and_runs_in_few_steps(client):
    from udm.app import hot as tab

    assert tab._models("mnist28") == ["trained", "distilled"] and tab._models("moons") == ["trained"]
    steps, sampler = tab._model_changed("mnist28", "distilled", "analytic-ddpm", 50)
    assert steps["value"] == tab.DISTILLED_STEPS and steps["maximum"] == 4 and sampler["value"] == "ddim"
    assert tab._model_changed("mnist28", "trained", "ddim", 2)[0]["value"] == 50  # back to the ε-model's regime
    assert "value" not in tab._model_changed("mnist28", "trained", "ddim", 200)[0]  # a choice of its own stays
    assert "value" not in tab._model_changed("gaussians8", "trained", "ddim", 10)[0]  # from exact: steps stay
    x_t, x0_hat, info, samples, gif, frame = client.predict(
        "mnist28", "distilled", "ddpm", 2, 0.0, 0, 4, api_name="/hot_generate"
    )
    assert "ddpm, 2 steps" in info and frame["maximum"] == 1


def test_scrub_shows_another_frame(client):
    client.predict("digits8", "trained", "ddpm", 8, 0.0, 0, 4, api_name="/hot_generate")
    first = client.predict(0, api_name="/hot_scrub")
    last = client.predict(7, api_name="/hot_scrub")
    assert "step 1/8" in first[2] and "step 8/8" in last[2]
    assert Image.open(first[0]).tobytes() != Image.open(last[0]).tobytes()


def test_same_seed_same_picture(client):
    a = client.predict("moons", "trained", "ddpm", 5, 0.0, 11, 50, api_name="/hot_generate")
    b = client.predict("moons", "trained", "ddpm", 5, 0.0, 11, 50, api_name="/hot_generate")
    assert Image.open(a[3]).tobytes() == Image.open(b[3]).tobytes()


def test_forward_strip(client):
    img, caption = client.predict("mnist28", api_name="/hot_forward")
    assert Image.open(img).size[0] > 8 * 28 and "t = 0" in caption and "1000" in caption


@pytest.mark.parametrize(
    "args,message",
    [
        (("mnist28", "exact", "ddim", 10, 0.0, 0, 4), "exact model exists only for gaussians8"),
        (("mnist28", "distilled", "ddim", 10, 0.0, 0, 4), "steps of the distilled model must be between 1 and 4"),
        (("moons", "distilled", "ddim", 2, 0.0, 0, 4), "distilled model exists only for mnist28"),
        (("mnist28", "trained", "ddim", 10, 0.0, -1, 4), "seed"),
        (("mnist28", "trained", "ddim", 10, 0.0, 1.5, 4), "seed must be a whole number"),
        (("moons", "trained", "ddim", 2000, 0.0, 0, 4), "1000"),
        (("moons", "trained", "nope", 10, 0.0, 0, 4), "nope"),
        (("moons", "trained", "ddpm", 10, "fast", 0, 4), "η must be a number"),  # checked though unused
        (("moons", "trained", "ddim", 10**400, 0.0, 0, 4), "steps must be a whole number"),
    ],
)
def test_bad_input_gets_a_clear_error_and_the_server_stays_up(client, args, message):
    with pytest.raises(Exception, match=message):
        client.predict(*args, api_name="/hot_generate")
    start = time.time()
    assert "ddim" in client.predict("moons", "trained", "ddim", 2, 0.0, 0, 4, api_name="/hot_generate")[2]
    assert time.time() - start < 30


def test_scrub_before_generate_is_a_clear_error(tiny_checkpoints):
    from udm.app.hot import scrub

    with pytest.raises(Exception, match="run Generate first"):
        scrub(None, 0)


def test_pictures_leave_no_open_files(client):
    import psutil

    from udm.app.common import _GIF_DIR

    def pictures_open() -> int:  # the test server runs in this process
        return sum(f.path.startswith(str(_GIF_DIR)) for f in psutil.Process().open_files())

    client.predict("moons", "trained", "ddpm", 8, 0.0, 0, 16, api_name="/hot_generate")
    for k in range(20):  # each scrub writes two pictures to files of their own
        client.predict(k % 8, api_name="/hot_scrub")
    assert pictures_open() == 0


def test_events_run_on_one_torch_thread_off_the_main_thread():
    """Gradio's worker threads sample on EVENT_THREADS torch threads (quicker there than two); the setting is
    per thread, so the main thread keeps its own."""
    import threading

    import torch

    from udm.app.common import EVENT_THREADS, event

    seen = []
    probe = event(lambda: seen.append(torch.get_num_threads()))
    main = torch.get_num_threads()
    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    probe()
    assert EVENT_THREADS == 1 and seen == [1, main]
    assert torch.get_num_threads() == main
    seen.clear()
    trainer = threading.Thread(target=event(threads=0)(lambda: seen.append(torch.get_num_threads())))
    trainer.start()
    trainer.join()
    assert seen == [main]  # threads=0 keeps torch's own count

    @event
    def frames():
        while True:
            yield torch.get_num_threads()

    stream, counts = frames(), []
    for _ in range(2):  # Gradio may resume a stream on another worker thread, set to another count
        hop = threading.Thread(target=lambda: (torch.set_num_threads(main + 1), counts.append(next(stream))))
        hop.start()
        hop.join()
    assert counts == [1, 1]


def test_a_runs_steps_are_computed_on_the_main_thread_while_it_serves():
    """app.py's main thread serves the network steps of the runs that events walk (where torch runs the UNet
    at full speed) and a Lab run's training slices, after any sampling step that waits; with no loop
    serving, a step is computed where it is asked for; an error reaches the event."""
    import threading

    from udm.app import mainthread

    seen = []

    def records(fail_at=None):
        for k in range(3):
            seen.append(threading.current_thread())
            if k == fail_at:
                raise ValueError("bad step")
            yield k

    def served(target):
        worker, out = threading.Thread(target=lambda: out.append(target())), []

        def running():  # the worker starts once the loop serves
            if not worker.is_alive() and not out:
                worker.start()
            return worker.is_alive()

        mainthread.serve(running, poll=0.01)
        worker.join()
        return worker, out

    _, out = served(lambda: list(mainthread.steps(records())))
    assert out == [[0, 1, 2]] and seen == [threading.main_thread()] * 3

    seen.clear()
    _, out = served(lambda: _raised(lambda: list(mainthread.steps(records(fail_at=1)))))
    assert out == ["bad step"] and seen == [threading.main_thread()] * 2

    from udm.app import lab as lab_tab

    _, out = served(lambda: lab_tab._slice(lambda seconds: (threading.current_thread(), seconds), 0.05))
    assert out == [(threading.main_thread(), 0.05)]  # a Lab run's training slice

    def queued(n):
        deadline = time.monotonic() + 5
        while mainthread.waiting() < n and time.monotonic() < deadline:
            time.sleep(0.005)
        assert mainthread.waiting() == n

    order, busy, gate = [], threading.Event(), threading.Event()

    def contest(pause=0.0):  # the main thread is busy; a training slice, then a sampling step, wait for it
        busy.clear()
        gate.clear()
        ask = [
            threading.Thread(target=lambda: mainthread.call(lambda: (busy.set(), gate.wait(5)))),
            threading.Thread(target=lambda: mainthread.call(order.append, "training", background=True)),
            threading.Thread(target=lambda: mainthread.call(order.append, "sampling step")),
        ]
        ask[0].start()
        assert busy.wait(5)
        try:
            for k, t in enumerate(ask[1:], 1):
                t.start()
                queued(k)
                time.sleep(pause)
        finally:
            gate.set()
            for t in ask:
                t.join(5)

    served(contest)
    assert order == ["sampling step", "training"]
    order.clear()
    served(lambda: contest(pause=mainthread.AGE + 0.1))  # a slice that waited AGE goes first: never stalled
    assert order == ["training", "sampling step"]

    # the loop stops with a step still queued: its caller hears so, it is not left waiting
    stopped = []
    asker = threading.Thread(target=lambda: stopped.append(_raised(lambda: mainthread.call(str), RuntimeError)))

    def running_until_a_step_waits():
        asker.start()
        while not mainthread.waiting():
            time.sleep(0.005)
        return False

    mainthread.serve(running_until_a_step_waits, poll=0.01)
    asker.join(5)
    assert stopped == ["the server is stopping"]

    seen.clear()
    worker = threading.Thread(target=lambda: list(mainthread.steps(records())))
    worker.start()
    worker.join()
    assert seen == [worker] * 3  # no loop serves: computed on the worker itself


def _raised(fn, kind=ValueError) -> str:
    try:
        fn()
    except kind as e:
        return str(e)
    return "nothing raised"
