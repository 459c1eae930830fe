"""The Cold diffusion tab through gradio_client, on a tiny restorer (T = 10)."""

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

# degradation, σ, mode, restore-from t, x_T noise, fresh share, seed, samples
DEFAULTS = ("blur", 0.0, "generate", 5, 0.0, 0.0, 0, 4)


def _run(client, *args):
    return list(client.submit(*args, api_name="/cold_run"))


def test_cold_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/cold_run", "/cold_scrub", "/cold_forward"} <= names


@pytest.mark.parametrize(
    "args",
    [DEFAULTS, ("mask", 0.0, "restore", 6, 0.1, 0.5, 3, 2), ("blur", 0.2, "generate", 1, 0.0, 0.3, 1, 3)],
)
def test_run_streams_both_samplers_then_finishes(client, args):
    updates = _run(client, *args)
    assert len(updates) >= 2
    nx, n0, ix, i0, info, naive, improved, original, gif, frame = updates[-1]
    for path in (nx, n0, ix, i0, naive, improved):
        assert Image.open(path).size[0] > 0
    assert Image.open(gif).is_animated
    t0 = args[3] if args[2] == "restore" else 10
    assert frame["maximum"] == t0 - 1 and f"{2 * t0} network evaluations" in info
    if args[2] == "restore":
        path = original["value"] if isinstance(original, dict) else original
        assert "PSNR" in info and Image.open(path).size[0] > 0
    else:
        assert "distinct of" in info


def test_scrub_moves_between_frames(client):
    _run(client, *DEFAULTS)
    first = client.predict(0, api_name="/cold_scrub")
    last = client.predict(9, api_name="/cold_scrub")
    assert "step 1/10" in first[4] and "step 10/10" in last[4]
    assert Image.open(first[0]).tobytes() != Image.open(last[0]).tobytes()


def test_zero_noise_generation_repeats_itself_and_noise_changes_it(client):
    def result(*args):
        return Image.open(_run(client, *args)[-1][5]).tobytes()

    assert result(*DEFAULTS) == result(*DEFAULTS)
    noisy = ("blur", 0.0, "generate", 5, 0.3, 0.0, 0, 4)
    assert result(*noisy) != result(*DEFAULTS)


def test_forward_strip(client):
    strip, caption = client.predict("pixelate", 0.0, 7, api_name="/cold_forward")
    assert Image.open(strip).size[0] > 8 * 28 and "T = 10" in caption


@pytest.mark.parametrize(
    "args,message",
    [
        (("smudge", 0.0, "generate", 5, 0.0, 0.0, 0, 4), "unknown degradation"),
        (("mask", 0.2, "generate", 5, 0.0, 0.0, 0, 4), "no trained restorer for mask"),
        (("blur", 0.0, "restore", 11, 0.0, 0.0, 0, 4), "between 1 and T=10"),
        (("blur", 0.0, "restore", 0, 0.0, 0.0, 0, 4), "restore-from t must be ≥ 1"),
        (("blur", 0.0, "generate", 5, 2.0, 0.0, 0, 4), "x_T noise"),
        (("blur", 0.0, "generate", 5, 0.0, 0.0, 0, 33), "number of samples"),
        (("blur", "lots", "generate", 5, 0.0, 0.0, 0, 4), "forward noise"),
        (("blur", 0.0, "dream", 5, 0.0, 0.0, 0, 4), "unknown mode"),
    ],
)
def test_bad_input_gets_a_clear_error(client, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/cold_run")
    assert len(_run(client, *DEFAULTS)) >= 2  # and the server still answers
