"""Text: the mask and edit processes, their exact posteriors, and the samplers' guarantees."""

import math
from collections import Counter

import pytest
import torch

from udm import core, discrete, text

WORDS = ["cat", "cot", "cut", "dog", "dig", "tag", "tug", "god"]
CHARS = "acdgiotu"
WEIGHTS = torch.tensor([0.30, 0.05, 0.05, 0.20, 0.05, 0.15, 0.05, 0.15])
V = len(CHARS)
N = 6000


def tok(ws):
    return torch.tensor([[CHARS.index(c) for c in w] for w in ws])


def words_of(x):
    return ["".join(CHARS[i] if i < V else "_" for i in row) for row in x.tolist()]


def total_variation(samples, weights=WEIGHTS):
    c = Counter(samples)
    return 0.5 * sum(abs(c.get(w, 0) / len(samples) - float(p)) for w, p in zip(WORDS, weights)) + 0.5 * sum(
        n / len(samples) for w, n in c.items() if w not in WORDS
    )


def run(process, sampler, posterior_weights=WEIGHTS, k=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    words = tok(WORDS)
    if process == "mask":
        post = discrete.ExactPosterior(words, posterior_weights, "mask", mask=V)
        x_T = torch.full((N, 3), V)
        reverse = discrete.MaskReverse(sampler, V)
    else:
        variant = "edit-v2" if sampler == "improved" else "edit-v1"
        post = discrete.ExactPosterior(words, posterior_weights, variant)
        # x_T from the forward process's own marginal at t = l (a random data word, every token edited)
        x0 = words[torch.multinomial(WEIGHTS, N, replacement=True, generator=g)]
        x_T = discrete.EditForward(3, V, distinct=variant == "edit-v2").draw(x0, 3, g)
        reverse = discrete.EditReverse(sampler, V)
    return list(discrete.plan(post, reverse, x_T, 3, g, k=k).steps())


@pytest.mark.parametrize("process", ["mask", "edit"])
@pytest.mark.parametrize("sampler", discrete.SAMPLERS)
def test_exact_posterior_samples_valid_words_at_the_data_frequencies(process, sampler):
    out = words_of(run(process, sampler)[-1].x_s)
    assert set(out) <= set(WORDS)
    assert total_variation(out) < 0.03  # sampling noise with N = 6000 is ~0.01


@pytest.mark.parametrize("process", ["mask", "edit"])
def test_a_wrong_posterior_fails_the_same_bound(process):
    uniform = torch.full((len(WORDS),), 1 / len(WORDS))
    out = words_of(run(process, "improved", posterior_weights=uniform)[-1].x_s)
    assert total_variation(out) > 0.1


def test_mask_with_k_positions_per_step_is_exact_too():
    steps = run("mask", "improved", k=2)
    assert [s.t for s in steps] == [3, 1]
    assert total_variation(words_of(steps[-1].x_s)) < 0.03


def test_mask_improved_keeps_visible_tokens_and_reveals_k_per_step():
    for k in (1, 2):
        for s in run("mask", "improved", k=k):
            visible = s.x_t != V
            assert torch.equal(s.x_s[visible], s.x_t[visible])
            assert ((s.x_t == V) & (s.x_s != V)).sum(1).eq(s.t - s.s).all()
            assert (s.x_s == V).sum(1).eq(s.s).all()


def test_mask_naive_remasks_anywhere():
    steps = run("mask", "naive")
    moved = sum(((s.x_t != V) & (s.x_s == V)).any().item() for s in steps[1:])
    assert moved >= 1  # some visible positions are hidden again: the naive rule forgets
    for s in steps:
        assert (s.x_s == V).sum(1).eq(s.s).all()


def test_edit_improved_differs_in_exactly_t_and_changes_one_token_per_step():
    for s in run("edit", "improved"):
        assert (s.x0_hat != s.x_t).sum(1).eq(s.t).all()
        assert (s.x_s != s.x_t).sum(1).eq(1).all()


def test_factorized_constrained_draw_matches_enumeration():
    """sample_differing is the product distribution restricted to Hamming distance t: compare with brute force."""
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4)
    x_t = torch.tensor([[0, 1, 2]])
    p = torch.softmax(logits[0], -1)
    exact = {}
    for a in range(4):
        for b in range(4):
            for c in range(4):
                w = (a, b, c)
                if sum(u != v for u, v in zip(w, (0, 1, 2))) == 2:
                    exact[w] = float(p[0, a] * p[1, b] * p[2, c])
    z = sum(exact.values())
    pred = discrete.Factorized(logits.expand(20000, -1, -1))
    out = pred.sample_differing(x_t.expand(20000, -1), 2, torch.Generator().manual_seed(1))
    counts = Counter(map(tuple, out.tolist()))
    tv = 0.5 * sum(abs(counts.get(w, 0) / 20000 - q / z) for w, q in exact.items())
    tv += 0.5 * sum(n / 20000 for w, n in counts.items() if w not in exact)
    assert tv < 0.03


def test_a_sure_posterior_at_a_low_temperature_still_changes_exactly_t_positions():
    """Where every position is all but sure to keep x_t's token (p = 1 in float32 once divided by 0.05),
    the draw still changes exactly t of them, the likeliest alternatives, as the log weights say."""
    logits = torch.full((2, 5, 26), -20.0)
    x_t = torch.tensor([[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]])
    logits.scatter_(2, x_t.unsqueeze(2), 20.0)
    logits[:, 2, 25] = 0.0  # position 2's runner-up: far likelier than any other change
    out = discrete.Factorized(logits).sample_differing(x_t, 1, torch.Generator().manual_seed(0), temperature=0.05)
    assert ((out != x_t).sum(1) == 1).all() and (out[:, 2] == 25).all()


def test_edit_v1_posterior_weights_count_the_ways():
    """q_v1(w | x_t, t) ∝ C(l − h, t − h) for Hamming distance h ≤ t."""
    words = tok(WORDS)
    post = discrete.ExactPosterior(words, torch.ones(len(WORDS)), "edit-v1")
    w = post(tok(["cat"]), 2).weights[0]
    ham = (words != tok(["cat"])).sum(1)
    want = torch.tensor([math.comb(3 - h, 2 - h) if h <= 2 else 0 for h in ham.tolist()], dtype=torch.float)
    torch.testing.assert_close(w, want)


def test_edit_forward_v2_always_changes_the_chosen_tokens():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randint(0, V, (500, 3), generator=g)
    for t in range(4):
        x_t = discrete.EditForward(3, V, distinct=True).draw(x0, t, g)
        assert (x_t != x0).sum(1).eq(t).all() and x_t.max() < V
    v1 = discrete.EditForward(3, V, distinct=False).draw(x0, 3, g)
    assert 0 < (v1 == x0).float().mean() < 0.3  # any token: sometimes the same one, about 1 / V


def test_vocab_round_trip_and_clear_errors():
    v = text.vocab("en5")
    assert v.V == 26 and v.length == 5
    x = v.encode(["hello", "c?a_e"])
    assert v.decode(x) == ["hello", "c_a_e"]
    with pytest.raises(ValueError, match="exactly|characters"):
        v.encode(["hi"])
    with pytest.raises(ValueError, match="not a character"):
        v.encode(["héllo"])
    assert len(text.words("en5")) == 20_000 and len(text.words("zh4")) == 24_000
    assert not set(text.split("en5", "train")) & set(text.split("en5", "test"))


def test_timesteps():
    assert discrete.timesteps(5, 1) == [1, 2, 3, 4, 5]
    assert discrete.timesteps(5, 2) == [1, 3, 5]
    assert discrete.timesteps(4, 4) == [4]
    with pytest.raises(ValueError):
        discrete.timesteps(0, 1)


def test_steps_are_records_of_the_core_loop():
    steps = run("mask", "improved")
    assert all(isinstance(s, core.Step) for s in steps)
    assert [(s.t, s.s) for s in steps] == [(3, 2), (2, 1), (1, 0)]


@pytest.mark.parametrize("sampler", discrete.SAMPLERS)
def test_infill_never_changes_the_given_characters(sampler):
    from udm import text_pipeline as tp

    req = tp.TextRequest(process="mask", data="en5", sampler=sampler, model="exact", n=40, pattern="c?a?e")
    for step in tp.text_plan(req, device="cpu").steps():
        for x in (step.x_t, step.x0_hat, step.x_s):
            words = text.vocab("en5").decode(x)
            assert all(w[0] == "c" and w[2] == "a" and w[4] == "e" for w in words), words
    assert set(words) <= set(text.split("en5", "train"))  # the exact posterior fills in real words


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"pattern": "c?a"}, "exactly 5"),
        ({"pattern": "c?a1e"}, "not a character"),
        ({"pattern": "cease"}, "no blank"),
        ({"pattern": "c?a?e", "process": "edit"}, "mask model only"),
        ({"k": 6}, "between 1 and 5"),
        ({"k": 2, "process": "edit"}, "mask model only"),
        ({"data": "fr5"}, "unknown word list"),
        ({"temperature": 0.0}, "temperature"),
        ({"n": 0}, "number of samples"),
    ],
)
def test_text_requests_refuse_bad_input(kwargs, message):
    from udm import text_pipeline as tp

    with pytest.raises(ValueError, match=message):
        tp.TextRequest(**kwargs)


def test_categorical_draws_each_row_by_its_weights_and_never_a_zero_weight():
    from udm.discrete import categorical

    w = torch.tensor([[0.0, 2.0, 0.0, 6.0, 2.0], [1.0, 0.0, 0.0, 0.0, 0.0]])  # unnormalised
    g = torch.Generator().manual_seed(0)
    draws = torch.stack([categorical(w, g) for _ in range(20000)])  # (20000, 2)
    freq = torch.bincount(draws[:, 0], minlength=5).float() / len(draws)
    torch.testing.assert_close(freq, torch.tensor([0.0, 0.2, 0.0, 0.6, 0.2]), atol=0.012, rtol=0)
    assert (draws[:, 1] == 0).all()
    big = torch.softmax(torch.randn(3, 3464, generator=g), -1)  # a Chinese vocabulary
    assert categorical(big, g).shape == (3,) and categorical(big, g).max() < 3464


@pytest.mark.parametrize("process", ["mask", "edit"])
def test_the_valid_rate_curve_is_recorded_without_touching_the_training(tmp_path, process):
    """`eval_every` samples words from the EMA weights during training: the curve lands in udm.json and on
    the card, and the trained weights are those of the same run without it (the evaluation draws from its
    own generator and puts the training weights back)."""
    import json

    from safetensors.torch import load_file

    from udm import textmodel

    def run(folder, every):
        cfg = textmodel.default_config(
            process, "en5", small=True, steps=5, batch_size=16, eval_every=every, calibrate=0
        )
        textmodel.train(cfg, tmp_path / folder, progress=False)
        return load_file(tmp_path / folder / "model.safetensors"), json.loads(
            (tmp_path / folder / "udm.json").read_text()
        )

    plain, meta = run("plain", 0)
    curved, meta_c = run("curved", 2)
    assert "curve" not in meta
    assert all(torch.equal(plain[k], curved[k]) for k in plain)
    points = meta_c["curve"]["points"]
    assert [p["steps"] for p in points] == [2, 4, 5]
    assert all(0.0 <= p["valid"] <= 1.0 and p["distinct"] > 0 for p in points)
    assert [p["seconds"] for p in points] == sorted(p["seconds"] for p in points)
    card = (tmp_path / "curved" / "README.md").read_text()
    assert "## Valid rate against training time" in card and "--eval-every 2" in card
    if process == "mask":  # and the improved rule's figures without sampling (udm.likelihood)
        assert all(0.0 < p["novel_valid_exact"] < 1.0 and p["bits_held_out"] > 10 for p in points)
        assert "novel-valid, exact" in card
    with pytest.raises(ValueError, match="eval_every"):
        textmodel.default_config(process, "en5", eval_every=-1)


def test_a_mask_checkpoint_is_calibrated_by_entropy_and_answers_at_its_temperature(tmp_path):
    """After training, the mask model's temperature is set where the improved rule's words have the
    training list's entropy; the loaded model's logits are the network's divided by it, everywhere."""
    import json
    import math

    from udm import likelihood, text, textmodel

    vocab = text.vocab("en5")
    cfg = textmodel.default_config("mask", "en5", small=True, steps=30, batch_size=32, calibrate=300)
    textmodel.train(cfg, tmp_path / "m", progress=False)
    meta = json.loads((tmp_path / "m" / "udm.json").read_text())
    c = meta["calibration"]
    assert c["target_bits"] == pytest.approx(math.log2(18000), abs=1e-3)
    assert c["bits_at_1"] > c["target_bits"] + 2  # an undertrained model spreads its words too thin
    assert 0.05 < c["temperature"] < 1 and c["bits"] == pytest.approx(c["target_bits"], abs=0.5)
    assert "## Calibration" in (tmp_path / "m" / "README.md").read_text()

    model, _ = textmodel.load(tmp_path / "m")
    raw, _ = textmodel.load(tmp_path / "m", calibrate=False)
    x = torch.full((3, 5), vocab.MASK)
    x[:, 0] = 0
    tau = c["temperature"]
    assert torch.allclose(
        textmodel.char_logits(model, x, vocab, "mask"), textmodel.char_logits(raw, x, vocab, "mask") / tau
    )
    hidden = textmodel.mask_prediction(model, x, vocab).position_probs(vocab.V)
    assert torch.allclose(hidden, textmodel.mask_prediction(raw, x, vocab).position_probs(vocab.V, tau), atol=1e-6)
    # the recorded entropy is what the loaded model's improved rule has (to sampling noise: dividing inside
    # the network rounds differently, and a draw by inverse CDF follows)
    bits, se = likelihood.entropy(textmodel.NeuralPosterior(model, vocab, "mask"), vocab.MASK, vocab.V, 5, 300)
    assert abs(bits - c["bits"]) < 3 * se
    head = model.cls  # measuring a loaded model leaves its temperature as it was
    assert textmodel.calibration(model, vocab, 100)["temperature"] > 0 and model.cls is head
    assert torch.equal(model.get_output_embeddings().weight, raw.get_output_embeddings().weight)
    assert textmodel.calibrated(model, 1.0) is model and not isinstance(model.cls, textmodel.Tempered)


def test_an_edit_checkpoint_is_calibrated_to_the_mask_model_s_collisions(tmp_path, monkeypatch):
    """The edit model's temperature is set where its improved rule's words (the last step by the mask model
    under the checkpoint root) repeat as often as the mask model's at its calibrated temperature."""
    import json

    from udm import text, textmodel

    vocab = text.vocab("en5")
    monkeypatch.setenv("UDM_CHECKPOINTS", str(tmp_path / "elsewhere"))  # the mask model beside it is found
    for process, n in (("mask", 300), ("edit", 1500)):
        cfg = textmodel.default_config(process, "en5", small=True, steps=30, batch_size=32, calibrate=n)
        textmodel.train(cfg, tmp_path / f"{process}-en5", progress=False)
    c = json.loads((tmp_path / "edit-en5" / "udm.json").read_text())["calibration"]
    assert c["method"] == "collisions" and c["reference"] == "mask-en5" and c["samples"] == 1500
    assert c["collisions_at_1"] < c["reference_collisions"] / 4  # at 1 the young model's words are too varied
    # sharpened as far as the range allows: this young model's words still repeat less than the mask model's
    assert c["temperature"] == 0.05 and c["collisions_at_1"] <= c["collisions"] < c["reference_collisions"]
    assert "coincide as often as those of mask-en5" in (tmp_path / "edit-en5" / "README.md").read_text()
    model, _ = textmodel.load(tmp_path / "edit-en5")
    raw, _ = textmodel.load(tmp_path / "edit-en5", calibrate=False)
    x = torch.randint(0, vocab.V, (3, 5), generator=torch.Generator().manual_seed(0))
    got, want = (textmodel.char_logits(m, x, vocab, "edit-v2", 3) for m in (model, raw))
    assert torch.allclose(got, want / c["temperature"], atol=1e-5)
    words = torch.tensor([[0, 1], [0, 1], [2, 2], [0, 1], [2, 2], [3, 3]])  # 3 + 1 equal pairs of 15
    assert textmodel.collision_rate(words) == pytest.approx(4 / 15)


def test_sample_words_makes_words_of_the_right_length_and_alphabet():
    from udm import textmodel

    model = textmodel.bert(text.vocab("en5"), "mask", True, 128, 4).eval()
    words = textmodel.sample_words(model, text.vocab("en5"), "mask", 7)
    assert len(words) == 7 and all(len(w) == 5 and set(w) <= set(text.vocab("en5").alphabet) for w in words)


def test_mask_prediction_runs_each_distinct_row_once_and_the_head_where_hidden_only():
    """The mask model's prediction equals the whole network's output at the hidden positions (rows that
    repeat share one evaluation), and is the visible token itself elsewhere."""
    from udm import textmodel

    torch.manual_seed(0)
    v = text.vocab("en5")
    model = textmodel.bert(v, "mask", True).eval()
    x = text.tokens("en5", "test")[:40].clone()
    x[torch.rand(x.shape) < 0.5] = v.MASK
    x[:10] = v.MASK  # ten equal rows
    with torch.no_grad():
        pred = textmodel.mask_prediction(model, x, v)
        whole = model(input_ids=textmodel.input_ids(x, v, "mask")).logits[..., textmodel.n_special(v.length) :]
        dense = pred.dense_logits()
    hidden = x == v.MASK
    assert len(pred.logits) == int((torch.unique(x, dim=0) == v.MASK).sum()) < int(hidden.sum())  # once per row
    torch.testing.assert_close(dense[hidden], whole[hidden], atol=1e-5, rtol=1e-5)
    assert torch.equal(dense[~hidden].argmax(-1), x[~hidden])
    probs = pred.position_probs(v.V)
    assert torch.equal(probs[~hidden].argmax(-1), x[~hidden]) and bool((probs[~hidden].max(-1).values == 1).all())
    torch.testing.assert_close(probs[hidden], whole[hidden].softmax(-1), atol=1e-5, rtol=1e-4)
    g = torch.Generator().manual_seed(1)
    drawn = pred.sample(g)
    assert torch.equal(drawn[~hidden], x[~hidden]) and bool((drawn < v.V).all())
    parts = pred.chunk(4)
    assert torch.equal(torch.cat([p.position_probs(v.V) for p in parts]), probs)


def test_hidden_factorized_draws_hidden_positions_at_their_probabilities():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    x_t = torch.tensor([[3, 1, 3]]).repeat(20_000, 1)  # 3 is [MASK]
    index = torch.tensor([[0, -1, 1]]).repeat(20_000, 1)
    pred = discrete.HiddenFactorized(x_t, logits, index)
    x0 = pred.sample_hidden(x_t, 3, torch.Generator().manual_seed(0))
    assert bool((x0[:, 1] == 1).all())
    for pos, row in ((0, 0), (2, 1)):
        freq = torch.bincount(x0[:, pos], minlength=3).float() / len(x0)
        p = logits[row].softmax(0)
        assert bool(((freq - p).abs() <= 4 * (p * (1 - p) / len(x0)).sqrt() + 1e-9).all()), (freq, p)


@pytest.mark.parametrize("variant", ["mask", "edit-v2"])
def test_sampling_in_bfloat16_keeps_the_posterior_to_a_percent(monkeypatch, variant):
    """Where the CPU multiplies bfloat16 natively the samplers evaluate the BERT in it: the per-position
    probabilities stay within 0.01 of float32's; switched off, the evaluation is float32's exactly."""
    from udm import textmodel

    torch.manual_seed(0)
    v = text.vocab("en5")
    model = textmodel.bert(v, "mask" if variant == "mask" else "edit", True).eval()
    x = text.tokens("en5", "test")[:64].clone()
    if variant == "mask":
        x[torch.rand(x.shape) < 0.5] = v.MASK
    with torch.no_grad():
        whole = textmodel.char_logits(model, x, v, variant, 2).softmax(-1)
        monkeypatch.setattr(textmodel, "BFLOAT16_ON_CPU", True)
        fast = textmodel.NeuralPosterior(model, v, variant)(x, 2).position_probs(v.V)
        monkeypatch.setattr(textmodel, "BFLOAT16_ON_CPU", False)
        plain = textmodel.NeuralPosterior(model, v, variant)(x, 2).position_probs(v.V)
    assert (fast - plain).abs().max() < 0.01 and (fast - plain).abs().max() > 0  # bfloat16 did run
    asked = x == v.MASK if variant == "mask" else torch.ones_like(x, dtype=torch.bool)  # (visible: known)
    torch.testing.assert_close(plain[asked], whole[asked], atol=1e-6, rtol=1e-5)


def _one_edit_from_exact_mask(x_t, weights=WEIGHTS):
    """discrete.OneEdit from the exact mask posterior of WORDS: m_i = q(x_0^i | x_t with position i hidden)."""
    mask = discrete.ExactPosterior(tok(WORDS), weights, "mask", mask=V)
    b, n = x_t.shape
    logits = torch.empty(b, n, V)
    for i in range(n):
        hidden = x_t.clone()
        hidden[:, i] = V
        logits[:, i] = mask(hidden, n).marginals(V)[:, i].log()
    return discrete.OneEdit(x_t, logits)


@pytest.mark.parametrize("variant", ["edit-v2", "edit-v1"])
def test_one_edit_from_an_exact_mask_posterior_is_the_exact_edit_posterior_at_t_1(variant):
    """Bayes' rule from the mask model's conditionals gives the edit process's q(x_0 | x_1) exactly where x_1
    is a word: every outcome's probability (v1 includes x_1 itself, weighted by the l ways) and v2's marginals."""
    x_t = tok(["cat", "dog", "tug"])
    pred = _one_edit_from_exact_mask(x_t)
    exact = discrete.ExactPosterior(tok(WORDS), WEIGHTS, variant)(x_t, 1)
    w = pred.weights(distinct=variant == "edit-v2")
    assert w is pred.weights(distinct=variant == "edit-v2")  # computed once per step, drawn from and scored
    for row in range(len(x_t)):
        got = Counter()
        for (i, c), p in zip(((i, c) for i in range(3) for c in range(V)), w[row].flatten().tolist()):
            word = x_t[row].clone()
            word[i] = c
            got[words_of(word[None])[0]] += p / float(w[row].sum())
        want = exact.weights[row] / exact.weights[row].sum()
        for word, p in zip(WORDS, want.tolist()):
            assert got.get(word, 0.0) == pytest.approx(p, abs=1e-6), (variant, row, word)
        assert sum(p for word, p in got.items() if word not in WORDS) < 1e-6
    if variant == "edit-v2":
        torch.testing.assert_close(pred.position_probs(V), exact.marginals(V), atol=1e-6, rtol=0)


def test_one_edit_mends_a_word_with_one_wrong_letter_into_words_of_the_list():
    """Off the list (x_1 not a word) it still draws only words, each exactly one letter away, at the rates its
    weights give: the positions whose other letters fit a word share the weight equally ("dug": _ug → tug,
    d_g → dog, dig: 1/2, 2/5, 1/10, where the exact posterior says 1/6, 2/3, 1/6); the improved rule's last
    step copies that one letter."""
    x_t = tok(["cad", "dug", "tut"]).repeat_interleave(4000, 0)
    pred = _one_edit_from_exact_mask(x_t)
    g = torch.Generator().manual_seed(0)
    out = pred.sample_differing(x_t, 1, g)
    assert set(words_of(out)) <= set(WORDS)
    assert bool(((out != x_t).sum(1) == 1).all())
    assert torch.equal(discrete.EditReverse("improved", V).step(x_t, out, 1, 0, g), out)
    assert set(words_of(out[:4000])) == {"cat"}
    dug = words_of(out[4000:8000])
    for word, p in (("tug", 0.5), ("dog", 0.4), ("dig", 0.1)):
        assert abs(dug.count(word) / 4000 - p) < 4 * (p * (1 - p) / 4000) ** 0.5, word
    assert abs(float(pred.position_probs(V)[4000, 0, CHARS.index("t")]) - 0.5) < 1e-3
    with pytest.raises(ValueError, match="t = 1"):
        pred.sample_differing(x_t, 2, g)


def test_one_edit_at_a_low_temperature_draws_the_likeliest_edit():
    """q^(1/T) from log-probabilities: at T = 0.05 the draw is the single edit of highest weight, even where
    every position is so sure of its letter that the probabilities of the others underflow."""
    torch.manual_seed(0)
    x_t = torch.tensor([[0, 1, 2]])
    logits = torch.full((1, 3, V), -30.0)
    logits[0, [0, 1, 2], [0, 1, 2]] = 10.0  # each position sure of x_t's letter...
    logits[0, 1, 5] = 4.0  # the likeliest edit: position 1 ← 5, at e^(−6 / 0.05) below 1 (float32 underflows)
    pred = discrete.OneEdit(x_t.repeat(200, 1), logits.repeat(200, 1, 1))
    out = pred.sample_differing(pred.x_t, 1, torch.Generator().manual_seed(0), temperature=0.05)
    assert bool((out == torch.tensor([0, 5, 2])).all())
    keep = pred.weights(0.05, distinct=False)[0]  # v1: x_t itself (weight 1 per position) is likelier still
    assert float(keep[[0, 1, 2], [0, 1, 2]].sum()) > 0.99


def test_the_edit_model_asks_a_mask_model_at_its_last_step_only():
    """textmodel.NeuralPosterior with `last_step`: a OneEdit from the mask network at t = 1 (its logits are the
    mask network's at each position hidden in turn), the edit BERT's own answer at t ≥ 2."""
    from udm import textmodel

    torch.manual_seed(0)
    v = text.vocab("en5")
    edit, mask = textmodel.bert(v, "edit", True).eval(), textmodel.bert(v, "mask", True).eval()
    post = textmodel.NeuralPosterior(edit, v, "edit-v2", last_step=mask)
    x = text.tokens("en5", "test")[:8]
    with torch.no_grad():
        assert isinstance(post(x, 2), discrete.Factorized)
        last = post(x, 1)
        assert isinstance(last, discrete.OneEdit)
        for i in range(v.length):
            hidden = x.clone()
            hidden[:, i] = v.MASK
            want = textmodel.char_logits(mask, hidden, v, "mask")[:, i]
            torch.testing.assert_close(last.logits[:, i].float(), want.float(), atol=0.05, rtol=0.05)
    assert isinstance(textmodel.NeuralPosterior(edit, v, "edit-v2")(x, 1), discrete.Factorized)
