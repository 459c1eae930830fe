"""What each tab says to a visitor: one plain line of what they see and what to press, and the formulas
behind an expandable section, written in LaTeX and rendered by Gradio's Markdown (KaTeX)."""

from __future__ import annotations

import gradio as gr

POST = "https://kexue.fm/archives/9271"
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

OPENING = f"""<div class="udm-intro">
<p>Watch generative models that create data gradually. Each is three parts
(<a href="{POST}" target="_blank" rel="noopener">the post</a>):</p>
<div class="udm-parts">
<div><b>① forward</b><span>destroy the data step by step: noise, blur, masks, edits</span></div>
<div class="udm-arrow">→</div>
<div><b>② posterior</b><span>a network looks at the damaged x<sub>t</sub> and guesses the clean x̂<sub>0</sub></span></div>
<div class="udm-arrow">→</div>
<div><b>③ reverse</b><span>use the guess to step back from x<sub>t</sub> to x<sub>t−1</sub>; repeat down to x<sub>0</sub></span></div>
</div></div>"""

CSS = """
.udm-intro p {margin: 0 0 .4em 0}
.udm-parts {display: flex; gap: .4em; align-items: stretch; flex-wrap: wrap}
.udm-parts > div:not(.udm-arrow) {flex: 1 1 140px; border: 1px solid var(--border-color-primary);
  border-radius: 8px; padding: .35em .6em; font-size: .92em}
.udm-parts span {display: block; color: var(--body-text-color-subdued)}
.udm-arrow {align-self: center; color: var(--body-text-color-subdued)}
.udm-scroll {overflow-x: auto; max-width: 100%}
.udm-scroll table {white-space: nowrap}
@media (max-width: 640px) {
  .udm-title h1 {font-size: 1.25em !important; margin: 0 !important}
  .udm-parts {flex-wrap: nowrap; gap: .2em}
  .udm-parts span {display: none}
  .udm-parts > div:not(.udm-arrow) {flex: 1 1 0; padding: .15em .3em; font-size: .8em; text-align: center}
  .udm-intro p {font-size: .9em}
}
"""

TABS = {
    "hot": (
        "Noise is added to data until nothing is left, and a network learned to guess the clean data from any "
        "noisy version. **Press Generate** and watch pure noise become samples: on the left the current state "
        "xₜ, on the right the network's guess x̂₀ at that step.",
        r"""**Forward** (Gaussian noise): $x_t = \bar\alpha_t x_0 + \bar\beta_t \varepsilon$, with
$\bar\beta_t = \sqrt{1 - \bar\alpha_t^2}$ and $\varepsilon \sim \mathcal N(0, I)$.

**Posterior**: the network predicts the noise, $\hat x_0 = \big(x_t - \bar\beta_t\,\epsilon_\theta(x_t, t)\big)/\bar\alpha_t$
(Analytic-DPM also draws $\hat x_0$ with its optimal spread $\bar\sigma_t^2 = \frac{\bar\beta_t^2}{\bar\alpha_t^2}\big(1 - \mathbb E\|\epsilon_\theta\|^2/d\big)$).

**Reverse**, from $t$ to $s < t$:
$$x_s = \bar\alpha_s \hat x_0 + \sqrt{\bar\beta_s^2 - \sigma_t^2}\;\frac{x_t - \bar\alpha_t \hat x_0}{\bar\beta_t} + \sigma_t \varepsilon'$$
DDPM takes $\sigma_t = \bar\beta_s \beta_{t|s} / \bar\beta_t$, DDIM $\sigma_t = \eta \cdot \bar\beta_s \beta_{t|s} / \bar\beta_t$
($\eta = 0$: deterministic). Fewer steps $K$ skip timesteps.""",
    ),
    "cold": (
        "A blur (or mask, pixelation, fade) is undone step by step by one restoration network. **Press Run**: "
        "the naive rule (top) and the improved rule (bottom) start from the same x_T. Without noise many starts "
        "end at the same few digits — that is the post's point; add x_T noise or pick σ = 0.2 for variety.",
        r"""**Forward**: a deterministic degradation $F_t$ plus optional noise, $x_t = F_t(x_0) + \sigma\varepsilon$.

**Posterior**: a restorer guesses $\hat x_0 = G_t(x_t)$.

**Naive** reverse: $x_{t-1} = F_{t-1}(\hat x_0) + \sigma\varepsilon'$ (fresh noise).

**Improved** reverse: reuse the noise that $x_t$ shows, $\hat\varepsilon = \big(x_t - F_t(\hat x_0)\big)/\sigma$:
$$x_{t-1} = F_{t-1}(\hat x_0) + \sigma\hat\varepsilon \;\;\xrightarrow{\;\sigma \to 0\;}\;\; x_{t-1} = x_t + F_{t-1}(\hat x_0) - F_t(\hat x_0)$$
The last step returns $\hat x_0$ (data is clean). "Fresh noise" mixes $\sqrt{1-f^2}\,\hat\varepsilon + f\varepsilon'$.""",
    ),
    "edit": (
        "Words made by fixing random typos one at a time. **Press Run both rules**: the naive rule and the one "
        "you pick (the post's improved, or the surest edits first) start from the same random letters; each "
        "row shows xₜ, the model's guess x̂₀ and the next state, changes highlighted. "
        "✓ a real word, ★ a real word the model never saw.",
        r"""**Forward**: $t$ of the $l$ positions get a random token. v1 allows the same token back; v2 always a
*different* one, so $x_t$ differs from $x_0$ in exactly $t$ positions.

**Posterior**: a BERT reads $x_t$ and $t$ and gives each position a distribution $q(x_0 \mid x_t)$; or
the exact posterior of the word list. At the last step ($t = 1$: one wrong letter) the trained model asks
the Mask tab's BERT instead, by Bayes' rule: $q(x_0 = x_t[i \leftarrow c]) \propto m_i(c) / m_i(x_t^i)$, with
$m_i$ its guess for position $i$ hidden. The BERT's logits are divided by a temperature fixed after training,
where its words repeat as often as the Mask tab's.

**Naive** (v1): draw $\hat x_0 \sim q(x_0 \mid x_t)$, then put random tokens at $t-1$ random positions.

**Improved** (v2): draw $\hat x_0$ that differs from $x_t$ in exactly $t$ positions, and copy one of them:
one edit per step.""",
    ),
    "mask": (
        "Words revealed letter by letter from blanks. **Press Run both rules**: the naive rule and the one you "
        "pick (the post's improved, or a reveal order from elsewhere) start from all-blank words; each row "
        "shows xₜ, the model's guess x̂₀ and the next state. Try a pattern such as c?a?e. "
        "✓ a real word, ★ a real word the model never saw.",
        r"""**Forward**: $t$ of the $l$ positions are hidden behind [MASK].

**Posterior**: a BERT-style masked language model gives each hidden position a distribution
$q(x_0 \mid x_t)$; or the exact posterior of the word list. The BERT's logits are divided by a temperature
$\tau$ fixed after training, where the improved rule's words are as varied as the list's: their entropy is
$\log_2$ of its size (Braverman et al. 2020).

**Naive**: draw all of $\hat x_0 \sim q(x_0 \mid x_t)$, then hide $t-1$ random positions *anywhere*
(what was settled can be forgotten).

**Improved**: keep what is visible and reveal $k$ hidden positions with $\hat x_0$'s letters
($k = 1$ is the post's merged step, almost Gibbs sampling), chosen at random.

From elsewhere, the same two moves with another choice of positions: **confidence** reveals those whose
drawn letter is most probable (MaskGIT), **margin** those with the largest gap between the two likeliest
letters (Kim et al. 2025), **remask** hides a settled letter again with probability 0.1 and reveals one
more (ReMDM). Only the random order samples $q$ exactly; the others buy valid words with it.""",
    ),
    "encoding": (
        "Gaussian diffusion in the space of a *learned* code: an encoder F maps digits or words to a latent, "
        "noise is added there, and a decoder guesses x̂₀ back. **Press Generate** to sample, or open the round "
        "trip to see how much of an example survives each noise level.",
        r"""**Forward**: $x_t = \bar\alpha_t F(x_0) + \bar\beta_t\varepsilon$ with a trained encoder $F$ whose
output has unit RMS (so it cannot outgrow the noise).

**Posterior**: a decoder from the noisy latent and $t$ to $q(x_0 \mid x_t)$, trained with $F$ on
$-\log q(x_0 \mid x_t)$.

**Reverse**: decode $\hat x_0$, re-encode $F(\hat x_0)$ and take the DDPM / DDIM step in the latent; the
last step returns the decoder's $\hat x_0$.""",
    ),
    "lab": (
        "Build your own: pick data, tick the blocks that destroy it, and the strip shows x₀ → x_T at once. "
        "**Press Train** to teach a network the posterior (watch the loss and the samples improve; Stop "
        "whenever you like), then **Sample with every rule** that follows from your blocks.",
        r"""**Forward**, composed: $x_t = a_t\,D_t(x_0) + b_t\,\varepsilon$, where $D_t$ applies the
deterministic blocks in order (blur, pixelate, fade, mask; $D_0$ is the identity) and
$(a_t, b_t) = (\bar\alpha_t, \bar\beta_t)$ with a noise block, else $(1, \sigma)$. Words take one token block:
mask or edit.

**Posterior**, chosen by $F$: with noise alone the network predicts $\varepsilon$; otherwise
$\hat x_0 = x_t + \mathrm{net}(x_t, t)$ (L2 with noise, L1 without); words get a small BERT.

**Reverse**, from $t$ to $s$: naive $x_s = a_s D_s(\hat x_0) + b_s\varepsilon'$ always; improved
$x_s = a_s D_s(\hat x_0) + b_s\hat\varepsilon$ with $\hat\varepsilon = \big(x_t - a_t D_t(\hat x_0)\big)/b_t$
read back from $x_t$ (where $b_t = 0$, its limit $x_t - a_t D_t(\hat x_0)$ carries over whole). DDPM, DDIM and
Analytic-DPM only where $F$ is Gaussian in $x_0$ (noise alone); the discrete rules for words.""",
    ),
    "compare": (
        "Up to four samplers of one process from the same seed, played in lockstep. **Press Run side by side**; "
        "the table gives each one's figures, time and network evaluations.",
        r"""Every sampler starts from the same $x_T$ where the process allows. udm's samplers that share a
network and a step grid ask it once per step for all of them. Beside them run the schedulers one would
otherwise pick, on the same networks: diffusers' DDPM, DDIM, DPM-Solver++, UniPC, DEIS and Heun (hot), AmusedScheduler (MaskGIT's
confidence-ordered unmasking, mask) and DiscreteDDIMScheduler (D3PM, edit). A Fréchet distance from a few
dozen digits is large and noisy: compare it within one run, or use the panels below: one computes quality
against $K$ with more samples, the last shows what was measured offline on 1,000 digits or 2,000 words.""",
    ),
}


def explain(tab: str) -> None:
    """The tab's plain line and its formulas (collapsed), rendered where it is called."""
    what, math = TABS[tab]
    gr.Markdown(what)
    with gr.Accordion("The math", open=False):
        gr.Markdown(math, latex_delimiters=LATEX)
