"""The Lab tab through gradio_client: compose, train live for a few seconds, stop, sample every rule."""

import time
import zipfile

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

NOISE = ("gaussians8", ["noise"], None, "linear", 0.0, None, "")


def test_lab_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/lab_train", "/lab_stop", "/lab_sample", "/lab_scrub"} <= names


def test_train_a_few_seconds_then_sample_every_rule_side_by_side(client):
    status, curve, preview, download, snippet, *_ = client.predict(*NOISE, 5, 0, api_name="/lab_train")
    assert status.startswith("**Trained**") and len(curve["data"]) >= 2
    with zipfile.ZipFile(download) as z:
        assert {"udm-lab/model.safetensors", "udm-lab/spec.json", "udm-lab/rebuild.py"} <= set(z.namelist())
    assert "lab_pipeline.Trained.load" in snippet
    frame, caption, finals, table, gif, _ = client.predict(20, 200, 1, api_name="/lab_sample")
    assert [r[0] for r in table["data"]] == [
        "naive, 20 steps",
        "improved, 20 steps",
        "ddpm, 20 steps",
        "analytic-ddpm, 20 steps",
    ]
    assert "modes" in table["headers"] and Image.open(gif).is_animated and "frame 20/20" in caption
    frame0, caption0 = client.predict(0, api_name="/lab_scrub")
    assert "frame 1/20" in caption0 and "t = 1000" in caption0


def test_stop_ends_a_run_and_keeps_what_it_learnt(client):
    job = client.submit(*NOISE, 120, 0, api_name="/lab_train")
    deadline = time.time() + 60
    while time.time() < deadline and not any("Training" in str(o[0]) for o in job.outputs()):
        time.sleep(0.2)
    start = time.time()
    assert "stopping" in client.predict(api_name="/lab_stop")
    status = job.result(timeout=60)[0]
    assert status.startswith("**Trained**") and time.time() - start < 20


@pytest.mark.parametrize(
    "values,message",
    [
        (("words", ["mask"], None, "linear", 0.0, None, "apple\npears"), "needs 20 to 5000 words"),
        (("digits8", ["noise"], 5, "linear", 0.0, None, ""), "T must be between 21 and 1000"),
        (("moons", ["blur"], None, "linear", 0.0, None, ""), "does not apply to points"),
        (("drawing", ["noise"], None, "linear", 0.0, None, ""), "draw a shape"),
    ],
)
def test_a_bad_composition_is_refused_before_any_training(client, values, message):
    with pytest.raises(AppError, match=message):
        client.predict(*values, 5, 0, api_name="/lab_train")


def test_sampling_before_training_says_what_to_do(app_url):
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)  # a new session: nothing trained yet
    with pytest.raises(AppError, match="train a model first"):
        fresh.predict(20, 16, 0, api_name="/lab_sample")


def test_a_closed_page_ends_its_training_run(app_url):
    """A visitor who leaves (the job cancelled, as Gradio does when the page closes) stops training."""
    from gradio_client import Client

    from udm.app import lab as tab

    visitor = Client(app_url, verbose=False)
    job = visitor.submit(*NOISE, 120, 0, api_name="/lab_train")
    deadline = time.time() + 60
    while time.time() < deadline and not tab._running:
        time.sleep(0.2)
    assert tab._running, "the run did not start"
    time.sleep(1)
    job.cancel()
    deadline = time.time() + 20
    while time.time() < deadline and tab._running:
        time.sleep(0.2)
    assert not tab._running, "the run went on after its page closed"
