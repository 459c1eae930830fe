"""The Mask and Edit tabs through gradio_client, on tiny BERTs and the exact posterior."""

import re

import pytest
from gradio_client.exceptions import AppError

from udm import text


def _run(client, process, *args):
    return list(client.submit(*args, api_name=f"/{process}_run"))


def test_text_endpoints_are_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/mask_run", "/mask_scrub", "/edit_run", "/edit_scrub"} <= names


@pytest.mark.parametrize(
    "process,args",
    [
        ("mask", ("en5", "trained", 1.0, 0, 4, 1, "")),
        ("mask", ("zh4", "exact", 1.0, 1, 3, 2, "")),
        ("edit", ("en5", "exact", 0.7, 2, 5)),
        ("edit", ("zh4", "trained", 1.0, 0, 2)),
        ("mask", ("en5", "exact", 1.0, 0, 4, 1, "", "margin")),
        ("mask", ("en5", "trained", 1.0, 0, 4, 2, "", "remask")),
        ("edit", ("en5", "exact", 1.0, 0, 4, "confidence")),
    ],
)
def test_run_streams_each_step_then_the_figures(client, process, args):
    updates = _run(client, process, *args)
    length = text.vocab(args[0]).length
    steps = length if process == "edit" else -(-length // args[5])
    assert len(updates) == steps + 1
    table, caption, info, frame = updates[-1]
    assert f"step {steps}/{steps}" in caption and "valid" in info and "<table" in table
    assert frame["maximum"] == steps - 1
    if args[1] == "exact":
        assert info.count("valid 100%") == 2  # the exact posterior only makes real words


def _final_words(table: str) -> list[str]:
    cells = [re.sub(r"<[^>]+>", "", c).split(" ")[0] for c in re.findall(r"<td>(.*?)</td>", table)]
    return cells[2::3]  # each sampler's "next" column of the last step: the results


@pytest.mark.parametrize("model", ["exact", "trained"])
def test_infill_keeps_the_given_characters(client, model):
    table, _, info, _ = _run(client, "mask", "en5", model, 1.0, 0, 6, 1, "c?a?e")[-1]
    words = _final_words(table)
    assert len(words) == 12 and all(re.fullmatch("c[a-z]a[a-z]e", w) for w in words), words
    assert "pattern c?a?e" in info


def test_scrub(client):
    _run(client, "edit", "en5", "trained", 1.0, 0, 3)
    first = client.predict(0, api_name="/edit_scrub")
    last = client.predict(4, api_name="/edit_scrub")
    assert "step 1/5" in first[1] and "step 5/5" in last[1] and first[0] != last[0]


@pytest.mark.parametrize(
    "process,args,message",
    [
        ("mask", ("en5", "trained", 1.0, 0, 4, 1, "c?a"), "exactly 5"),
        ("mask", ("en5", "trained", 1.0, 0, 4, 1, "c?a1e"), "not a character"),
        ("mask", ("en5", "trained", 1.0, 0, 4, 1, "cease"), "no blank"),
        ("mask", ("zh4", "trained", 1.0, 0, 4, 5, ""), "k \\(positions per step\\)"),
        ("mask", ("en5", "trained", 1.0, 0, 4, 1, "x" * 500), "too long"),
        ("mask", ("fr5", "trained", 1.0, 0, 4, 1, ""), "unknown word list"),
        ("edit", ("en5", "oracle", 1.0, 0, 4), "unknown model"),
        ("edit", ("en5", "trained", 0.0, 0, 4), "temperature"),
        ("edit", ("en5", "trained", 1.0, 0, 33), "number of samples"),
    ],
)
def test_bad_input_gets_a_clear_error(client, process, args, message):
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name=f"/{process}_run")
    assert len(_run(client, "edit", "en5", "trained", 1.0, 0, 2)) == 6  # and the server still answers


def test_the_rule_beside_naive_is_one_of_the_process_rules(client):
    table = _run(client, "mask", "en5", "exact", 1.0, 0, 3, 1, "", "confidence")[-1][0]
    assert "confidence: x_t" in table and "naive: x_t" in table
    with pytest.raises(AppError, match="unknown rule beside naive"):
        client.predict("en5", "exact", 1.0, 0, 3, "margin", api_name="/edit_run")
