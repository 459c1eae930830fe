"""A user's own digit, drawn or uploaded: made into an MNIST digit, read only from Gradio's upload folder
with a pixel limit, and restored (Cold) or round-tripped (Encoding) through gradio_client."""

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from udm import data, judge


def _drawn(digit: torch.Tensor, scale: int = 10) -> Image.Image:
    """A held-out digit as a person might draw it: dark ink on white paper, 10× larger, RGBA."""
    ink = np.uint8((1 - digit[0].numpy()) * 255)
    return Image.fromarray(ink).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR).convert("RGBA")


def test_a_drawn_digit_becomes_the_mnist_digit_it_shows():
    x, y = data.images("mnist28", "test")
    cnn = judge.load_classifier()
    back = torch.stack([data.digit_from_picture(_drawn(x[i])) for i in range(50)])
    assert back.shape == (50, 1, 28, 28) and back.min() >= 0 and back.max() <= 1
    assert (cnn.head(cnn.features(back)).argmax(1) == y[:50]).float().mean() >= 0.95
    assert (back - x[:50]).abs().mean() < 0.05  # centred and scaled as MNIST's own digits are
    light_on_dark = Image.fromarray(np.uint8(x[0, 0].numpy() * 255))  # an MNIST digit as it is: not inverted
    assert (data.digit_from_picture(light_on_dark) - x[0]).abs().mean() < 0.05


def test_a_blank_picture_is_refused():
    for blank in (Image.new("RGB", (200, 100), "white"), Image.new("RGBA", (50, 50), (0, 0, 0, 0))):
        with pytest.raises(ValueError, match="shows no digit"):
            data.digit_from_picture(blank)


def test_only_uploaded_pictures_of_a_sane_size_are_read(tmp_path, monkeypatch):
    import gradio as gr

    from udm.app import common

    upload = tmp_path / "uploads"
    upload.mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(upload))
    good = upload / "d.png"
    _drawn(data.images("mnist28", "test")[0][0]).save(good)
    assert common.uploaded_picture({"path": str(good)}, "p").size == (280, 280)
    assert common.uploaded_picture({"composite": {"path": str(good)}, "layers": []}, "p").size == (280, 280)
    assert common.uploaded_picture(None, "p") is None
    assert common.uploaded_picture({"background": None, "layers": [], "composite": None}, "p") is None
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(good.read_bytes())
    bomb = upload / "bomb.png"
    Image.new("1", (5000, 5000)).save(bomb)  # a few kB on disk, 25 M pixels once decoded
    (upload / "not.png").write_text("not a picture")
    for value, match in [
        ({"path": str(outside)}, "only a picture uploaded to this server"),
        ({"path": str(upload / ".." / "elsewhere.png")}, "only a picture uploaded to this server"),
        ({"path": "/etc/hostname"}, "only a picture uploaded to this server"),
        ({"path": str(bomb)}, "5000 × 5000 pixels is too large"),
        ({"path": str(upload / "not.png")}, "not a picture Pillow can read"),
        ("/etc/passwd", "expected an uploaded or drawn picture"),
        ({"path": 3}, "expected an uploaded or drawn picture"),
    ]:
        with pytest.raises(gr.Error, match=match):
            common.uploaded_picture(value, "p")


@pytest.fixture(scope="module")
def drawn_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("drawn") / "seven.png"
    x, y = data.images("mnist28", "test")
    _drawn(x[int((y == 7).nonzero()[0, 0])]).save(path)
    return str(path)


def _sketch(path):
    """A sketchpad's value as an API caller sends it: the picture as the flattened `composite`."""
    return {"background": None, "layers": [], "composite": handle_file(path)}


def test_cold_restores_your_digit(client, drawn_file):
    out = client.predict("blur", 0.0, "restore", 10, 0.0, 0.0, 0, 3, _sketch(drawn_file), api_name="/cold_run")
    assert "3 copies of your digit" in out[4]
    original = out[7]["value"] if isinstance(out[7], dict) else out[7]
    assert Image.open(original).size[0] > 28  # the originals row shows the drawn digit


def test_encoding_round_trips_your_digit(client, drawn_file):
    image, caption = client.predict("mnist28", 0, 0, "1, 500", _sketch(drawn_file), api_name="/encoding_round_trip")
    held_out, _ = client.predict("mnist28", 0, 0, "1, 500", None, api_name="/encoding_round_trip")
    assert "t = 1:" in caption and Image.open(image).size[1] * 4 < Image.open(held_out).size[1]  # one row, not 8
    with pytest.raises(AppError, match="goes with the mnist28 model"):
        client.predict("en5", 0, 0, "1", _sketch(drawn_file), api_name="/encoding_round_trip")


def test_uploads_that_are_no_digit_get_a_clear_answer_through_the_api(client, tmp_path):
    text, bomb, blank = tmp_path / "notes.png", tmp_path / "bomb.png", tmp_path / "blank.png"
    text.write_text("not a picture")
    Image.new("1", (5000, 5000)).save(bomb)
    Image.new("RGB", (64, 64), "white").save(blank)
    for path, match in [(text, "not a picture Pillow can read"), (bomb, "too large"), (blank, "shows no digit")]:
        with pytest.raises(AppError, match=match):
            client.predict("mnist28", 0, 0, "1", _sketch(str(path)), api_name="/encoding_round_trip")
        with pytest.raises(AppError, match=match):
            client.predict("blur", 0.0, "restore", 10, 0.0, 0.0, 0, 1, _sketch(str(path)), api_name="/cold_run")


def test_your_digit_same_seed_same_output(client, drawn_file):
    outs = [
        client.predict("mnist28", 0, 5, "1, 700", _sketch(drawn_file), api_name="/encoding_round_trip")
        for _ in range(2)
    ]
    (a, ca), (b, cb) = outs
    assert Image.open(a).tobytes() == Image.open(b).tobytes() and ca == cb
