"""The objectives and closed forms at the level of their maths: the mixture oracle with unequal weights and
covariances, the hot ε-loss, the cold L1 loss, the text cross-entropies and time tokens, the encoding
loss's gradient into F, and the naive / improved edit steps."""

import math

import torch

from udm import cold, discrete, encoding, hot, nets, oracle, schedule, text, textmodel
from udm.cold import loss as cold_loss
from udm.data import Mixture

SCH = schedule.linear()  # T = 1000


# ---------------------------------------------------------------- 1. the mixture oracle, against quadrature
def _quadrature_mean(log_prior: torch.Tensor, grid: torch.Tensor, x_t: torch.Tensor, t: int) -> torch.Tensor:
    """E[x_0 | x_t] = ∫ x_0 p(x_0) N(x_t; ᾱ_t x_0, β̄_t² I) dx_0 / ∫ …, for each row of x_t (N, d), as a sum
    over a fine uniform grid (G, d) of the prior's log-density `log_prior` (G,): exact to rounding for
    smooth Gaussians."""
    a, b = float(SCH.abar[t]), float(SCH.bbar[t])
    logw = log_prior - torch.cdist(x_t, a * grid).pow(2) / (2 * b**2)  # (N, G)
    return logw.softmax(1) @ grid


def _log_density(mix: Mixture, grid: torch.Tensor) -> torch.Tensor:
    """log Σ_k π_k N(x; μ_k, Σ_k) on the grid (G, d), written out independently of the oracle."""
    d = grid.shape[1]
    parts = []
    for w, mu, cov in zip(mix.weights, mix.means, mix.covs):
        diff = grid - mu
        maha = (diff @ torch.linalg.inv(cov) * diff).sum(1)
        parts.append(math.log(w) - 0.5 * maha - 0.5 * math.log(torch.linalg.det(cov)) - 0.5 * d * math.log(2 * math.pi))
    return torch.logsumexp(torch.stack(parts), 0)


MIX_1D = Mixture(  # unequal weights, unequal variances: the weights and the log-determinants both matter
    weights=torch.tensor([0.75, 0.25], dtype=torch.float64),
    means=torch.tensor([[-1.0], [1.2]], dtype=torch.float64),
    covs=torch.tensor([[[0.04]], [[0.5]]], dtype=torch.float64),
)
MIX_2D = Mixture(  # unequal weights; anisotropic, correlated covariances of unequal determinants
    weights=torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64),
    means=torch.tensor([[-1.0, 0.0], [1.0, 0.5], [0.0, -1.5]], dtype=torch.float64),
    covs=torch.tensor(
        [[[0.3, 0.1], [0.1, 0.05]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.08], [-0.08, 0.1]]], dtype=torch.float64
    ),
)
TS = (20, 150, 400, 800)


def test_mixture_posterior_mean_1d_unequal_weights_and_variances_matches_quadrature():
    grid = torch.linspace(-8, 8, 4001, dtype=torch.float64)[:, None]
    log_prior = _log_density(MIX_1D, grid)
    x_t = torch.tensor([[-1.0], [-0.3], [0.0], [0.4], [1.0]], dtype=torch.float64)
    oc = oracle.MixtureEps(MIX_1D, SCH)
    for t in TS:
        want = _quadrature_mean(log_prior, grid, x_t, t)
        got = oc.posterior_mean(x_t, torch.full((len(x_t),), t))
        torch.testing.assert_close(got, want, atol=1e-8, rtol=0, msg=lambda m: f"t = {t}: {m}")


def _grid_2d(lo=-5.0, hi=5.0, n=301):
    u = torch.linspace(lo, hi, n, dtype=torch.float64)
    return torch.stack(torch.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)


X_T_2D = torch.tensor([[0.0, 0.0], [-0.5, 0.3], [1.0, -0.5], [0.2, -0.9], [-1.2, 0.2]], dtype=torch.float64)


def test_mixture_posterior_mean_2d_anisotropic_matches_quadrature():
    grid = _grid_2d()
    log_prior = _log_density(MIX_2D, grid)
    oc = oracle.MixtureEps(MIX_2D, SCH)
    for t in TS:
        want = _quadrature_mean(log_prior, grid, X_T_2D, t)
        got = oc.posterior_mean(X_T_2D, torch.full((len(X_T_2D),), t))
        torch.testing.assert_close(got, want, atol=1e-8, rtol=0, msg=lambda m: f"t = {t}: {m}")


def test_mixture_eps_with_mixed_timesteps_is_the_noise_of_the_quadrature_mean():
    """ε*(x_t, t) = (x_t − ᾱ_t E[x_0|x_t]) / β̄_t, with a different t per row in one call."""
    grid = _grid_2d()
    log_prior = _log_density(MIX_2D, grid)
    ts = torch.tensor([20, 800, 150, 400, 20])
    want = []
    for x, t in zip(X_T_2D, ts.tolist()):
        (mean,) = _quadrature_mean(log_prior, grid, x[None], t)
        want.append((x - float(SCH.abar[t]) * mean) / float(SCH.bbar[t]))
    got = oracle.MixtureEps(MIX_2D, SCH)(X_T_2D, ts)
    torch.testing.assert_close(got, torch.stack(want), atol=1e-7, rtol=0)


# ---------------------------------------------------------------- 2. the hot ε-prediction loss
SMALL = schedule.cosine(4)  # T = 4: every t is drawn many times in one batch


def test_hot_loss_draws_every_t_in_1_to_T_and_nothing_else():
    seen = []

    def model(x_t, t):
        seen.append(t.clone())
        return torch.zeros_like(x_t)

    fwd = hot.GaussianForward(SMALL)
    hot.loss(model, fwd, torch.zeros(4000, 2), torch.Generator().manual_seed(0))
    (t,) = seen
    assert t.shape == (4000,) and t.dtype == torch.long
    assert sorted(t.unique().tolist()) == list(range(1, SMALL.T + 1))  # 1 and T both occur, 0 never does
    counts = torch.bincount(t, minlength=SMALL.T + 1)[1:].double() / 4000
    torch.testing.assert_close(counts, torch.full((SMALL.T,), 1 / SMALL.T, dtype=torch.float64), atol=0.03, rtol=0)


def test_hot_loss_regresses_the_noise_not_x_t():
    """A model that returns the true ε has loss 0 (up to rounding); one that returns x_t does not."""
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(3000, 2, generator=g)
    fwd = hot.GaussianForward(SMALL)
    recovered = []

    def true_eps(x_t, t):  # invert x_t = ᾱ_t x_0 + β̄_t ε with the known x_0
        a = SMALL.abar[t].float()[:, None]
        b = SMALL.bbar[t].float()[:, None]
        eps = (x_t - a * x0) / b
        recovered.append(eps)
        return eps

    exact = hot.loss(true_eps, fwd, x0, g).item()
    assert exact < 1e-9, f"the true ε should cost nothing, got {exact}"
    (eps,) = recovered  # the noise is standard normal
    torch.testing.assert_close(eps.mean(0), torch.zeros(2), atol=0.06, rtol=0)
    torch.testing.assert_close(eps.var(0), torch.ones(2), atol=0.08, rtol=0)
    zeros = torch.zeros(3000, 2)  # x_0 = 0: x_t = β̄_t ε, so ε = x_t / β̄_t
    exact = hot.loss(lambda x_t, t: x_t / SMALL.bbar[t].float()[:, None], fwd, zeros, g).item()
    assert exact < 1e-9, f"the true ε should cost nothing, got {exact}"
    for x in (zeros, x0):
        echo = hot.loss(lambda x_t, t: x_t, fwd, x, g).item()
        assert echo > 0.05, f"a model that returns x_t (not ε) should cost something, got {echo}"


# ---------------------------------------------------------------- 3. the cold restoration loss: L1
def test_cold_loss_is_the_mean_absolute_error():
    """A restorer off by ±c everywhere costs exactly c (L1), not c² (L2); it sees x_t = F_t(x_0) of its
    own variant and a t in 1..T."""
    g = torch.Generator().manual_seed(2)
    x0 = torch.rand(12, 1, 8, 8, generator=g) * 2 - 1
    forwards = [cold.ColdForward(cold.Degradation(name, 5), 0.0) for name in ("fade", "mask")]
    sign = torch.where(torch.rand(x0.shape, generator=g) < 0.5, -1.0, 1.0)
    calls = []

    def restorer(x_t, t, variant):
        calls.append((x_t, t, variant))
        return x0 + 0.5 * sign

    torch.manual_seed(0)
    loss = cold_loss(restorer, forwards, x0)
    torch.testing.assert_close(loss.item(), 0.5, atol=1e-6, rtol=0)
    ((x_t, t, variant),) = calls
    assert ((t >= 1) & (t <= 5)).all() and ((variant >= 0) & (variant < 2)).all()
    for i in range(len(x0)):
        want = forwards[int(variant[i])].degradation(x0[i : i + 1], int(t[i]))[0]
        torch.testing.assert_close(x_t[i], want, atol=1e-6, rtol=0)
    # an error of 2 in one pixel of one image, 0 elsewhere: L1 gives 2 / numel, L2 would give 4 / numel
    bump = torch.zeros_like(x0)
    bump[3, 0, 4, 4] = 2.0
    loss = cold_loss(lambda x_t, t, v: x0 + bump, forwards, x0)
    torch.testing.assert_close(loss.item(), 2.0 / x0.numel(), atol=1e-7, rtol=0)


# ---------------------------------------------------------------- 4. the mask cross-entropy: hidden positions
TOY = text.Vocab("toy", "abcdef", 4)  # V = 6, l = 4, MASK = 6


def _one_hot(x):
    return torch.nn.functional.one_hot(x, TOY.V).float()


class _FakeMaskModel:
    """Reads the ids back to tokens and answers per position: `visible(tokens)` and `hidden(batch size)` give
    the character logits (B, l, V) at the visible and at the hidden positions."""

    def __init__(self, visible, hidden):
        self.visible, self.hidden, self.ids = visible, hidden, []

    def __call__(self, input_ids):
        self.ids.append(input_ids)
        ns = textmodel.n_special(TOY.length)
        hidden = input_ids == 0
        chars = torch.where(hidden, torch.zeros_like(input_ids), input_ids - ns)
        logits = torch.where(hidden[..., None], self.hidden(input_ids.shape[0]), self.visible(chars))
        special = torch.full((*input_ids.shape, ns), -1e4)
        return type("Out", (), {"logits": torch.cat([special, logits], -1)})()


def test_mask_loss_is_the_cross_entropy_on_the_hidden_positions_only():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randint(0, TOY.V, (64, TOY.length), generator=g)
    perfect_at_visible = _FakeMaskModel(
        visible=lambda chars: 50.0 * _one_hot(chars), hidden=lambda b: torch.zeros(b, TOY.length, TOY.V)
    )
    torch.manual_seed(0)
    loss = textmodel.loss(perfect_at_visible, x0, TOY, "mask")
    torch.testing.assert_close(loss.item(), math.log(TOY.V), atol=1e-5, rtol=0)  # uniform where it counts
    (ids,) = perfect_at_visible.ids
    assert ids.shape == x0.shape
    hidden = ids == 0
    assert hidden.any(1).all() and (~hidden).any()  # every row hides t ≥ 1, and some positions are visible
    assert torch.equal(ids[~hidden] - textmodel.n_special(TOY.length), x0[~hidden])
    # the converse: perfect where hidden (it knows x_0), confidently wrong where visible: loss 0
    wrong_at_visible = _FakeMaskModel(
        visible=lambda chars: 50.0 * _one_hot((chars + 1) % TOY.V), hidden=lambda b: 50.0 * _one_hot(x0[:b])
    )
    torch.manual_seed(0)
    assert textmodel.loss(wrong_at_visible, x0, TOY, "mask").item() < 1e-6


# ---------------------------------------------------------------- 5. the edit model's time token
def test_edit_input_ids_put_the_time_token_of_t_and_the_variant_first():
    n, ns = TOY.length, textmodel.n_special(TOY.length)
    x_t = torch.tensor([[0, 1, 2, 3], [5, 4, 3, 2]])
    tokens = {}
    for variant in ("edit-v1", "edit-v2"):
        for t in range(n + 1):
            tok = int(textmodel.time_token(n, t, variant))
            tokens[variant, t] = tok
            ids = textmodel.input_ids(x_t, TOY, variant, t)
            assert ids.shape == (2, n + 1)
            assert ids[:, 0].tolist() == [tok, tok]
            assert torch.equal(ids[:, 1:], x_t + ns)
        per_row = textmodel.input_ids(x_t, TOY, variant, torch.tensor([1, 3]))
        assert per_row[:, 0].tolist() == [tokens[variant, 1], tokens[variant, 3]]
    # one token per (variant, t), all special: never 0 (MASK) nor a character id
    assert len(set(tokens.values())) == 2 * (n + 1)
    assert all(1 <= tok < ns for tok in tokens.values())
    assert textmodel.input_ids(x_t, TOY, "mask").shape == x_t.shape  # the mask model has no time token


def _decode_time_token(tok: int, n: int) -> tuple[str, int]:
    found = [(v, t) for v in ("edit-v1", "edit-v2") for t in range(n + 1) if int(textmodel.time_token(n, t, v)) == tok]
    assert len(found) == 1, (tok, found)
    return found[0]


def test_edit_loss_tells_the_model_each_row_s_own_t_and_variant():
    n, ns = TOY.length, textmodel.n_special(TOY.length)
    g = torch.Generator().manual_seed(4)
    x0 = torch.randint(0, TOY.V, (200, n), generator=g)
    seen = []

    def model(input_ids):
        seen.append(input_ids)
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, ns + TOY.V)})()

    torch.manual_seed(0)
    loss = textmodel.loss(model, x0, TOY, "edit")
    torch.testing.assert_close(loss.item(), math.log(TOY.V), atol=1e-5, rtol=0)
    ids = torch.cat(seen)
    assert ids.shape == (200, n + 1)
    ts = {"edit-v1": [], "edit-v2": []}
    for row, (first, *rest) in enumerate(ids.tolist()):
        variant, t = _decode_time_token(first, n)
        assert variant == ("edit-v2" if row < 100 else "edit-v1"), row
        assert 1 <= t <= n
        ham = sum(int(c - ns != x) for c, x in zip(rest, x0[row].tolist()))
        if variant == "edit-v2":
            assert ham == t, (row, t, ham)  # v2 changes exactly t positions
        else:
            assert ham <= t, (row, t, ham)  # v1 may draw the same token again
        ts[variant].append(t)
    assert set(ts["edit-v2"]) == set(ts["edit-v1"]) == set(range(1, n + 1))


# ---------------------------------------------------------------- 6. the encoding loss trains F
def _assert_encoder_gets_gradient(model, x0, t):
    model.zero_grad(set_to_none=True)
    encoding.loss(model, hot.GaussianForward(schedule.cosine(50)), x0, t).backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert grads and all(gr is not None for gr in grads), "the encoder F is cut off from the loss"
    assert max(gr.abs().max().item() for gr in grads) > 0
    assert any(p.grad is not None and p.grad.abs().max() > 0 for p in model.decoder.parameters())


def test_encoding_loss_sends_gradient_into_the_image_encoder():
    torch.manual_seed(5)
    model = nets.build(**nets.encoding_config("image", small=True))
    _assert_encoder_gets_gradient(model, torch.rand(2, 1, 28, 28) * 2 - 1, None)


class _LinearWordDecoder(torch.nn.Module):
    """(z_t (B, l, d), t) → logits (B, l, V): a stand-in for the BERT decoder (the loss is what is tested)."""

    def __init__(self, dim, V):
        super().__init__()
        self.lin = torch.nn.Linear(dim, V)

    def forward(self, z_t, t):
        return self.lin(z_t) * (1 + t[:, None, None].float() / 100)


def test_encoding_loss_sends_gradient_into_the_word_encoder():
    torch.manual_seed(5)
    enc = nets.WordEncoder(TOY.V, TOY.length, dim=8, hidden=16)
    model = nets.EncodingModel("words", enc, _LinearWordDecoder(8, TOY.V))
    x0 = torch.randint(0, TOY.V, (4, TOY.length))
    _assert_encoder_gets_gradient(model, x0, None)
    _assert_encoder_gets_gradient(model, x0, torch.tensor([1, 10, 25, 50]))


# ---------------------------------------------------------------- 7. the edit reverse steps
def test_naive_edit_step_recorrupts_s_positions_of_x0_hat_with_any_token():
    """v1: s positions of x̂_0 get a uniformly random token out of all V, the old one included, so the
    number of positions that differ from x̂_0 is Binomial(s, (V − 1) / V)."""
    V, n, B, s = 3, 5, 20000, 2
    g = torch.Generator().manual_seed(6)
    x0_hat = torch.randint(0, V, (B, n), generator=g)
    x_t = torch.randint(0, V, (B, n), generator=g)
    x_s = discrete.EditReverse("naive", V).step(x_t, x0_hat, 4, s, g)
    assert x_s.shape == (B, n) and x_s.min() >= 0 and x_s.max() < V
    differ = (x_s != x0_hat).sum(1)
    assert differ.max().item() <= s
    p = (V - 1) / V
    freq = torch.bincount(differ, minlength=s + 1).double() / B
    want = torch.tensor([math.comb(s, k) * p**k * (1 - p) ** (s - k) for k in range(s + 1)], dtype=torch.float64)
    torch.testing.assert_close(freq, want, atol=0.015, rtol=0)
    torch.testing.assert_close(differ.double().mean().item(), s * p, atol=0.03, rtol=0)
    # which token a changed position gets: uniform over the V − 1 others
    changed = x_s != x0_hat
    shift = ((x_s - x0_hat) % V)[changed]
    torch.testing.assert_close(
        torch.bincount(shift, minlength=V)[1:].double() / changed.sum(),
        torch.full((V - 1,), 1 / (V - 1)).double(),
        atol=0.02,
        rtol=0,
    )


def test_improved_edit_step_copies_t_minus_s_tokens_of_x0_hat():
    V, n, B = 4, 5, 2000
    g = torch.Generator().manual_seed(7)
    x_t = torch.randint(0, V, (B, n), generator=g)
    t, s = 4, 1
    where = torch.rand(B, n, generator=g).argsort(1) < t  # t random positions per row
    shift = torch.randint(1, V, (B, n), generator=g)
    x0_hat = torch.where(where, (x_t + shift) % V, x_t)  # differs from x_t in exactly those t positions
    x_s = discrete.EditReverse("improved", V).step(x_t, x0_hat, t, s, g)
    assert (x_s != x_t).sum(1).eq(t - s).all()
    assert (x_s != x0_hat).sum(1).eq(s).all()
    moved = x_s != x_t
    assert torch.equal(x_s[moved], x0_hat[moved])
