r"""The Energy Transformer (ET): a transformer block whose forward pass is energy descent.

Tokens :math:`x_A \in \mathbb R^D` (A = 1..N) pass through a layer norm (eq. 3.13, a convex
Lagrangian with a *scalar* γ and a vector δ) and interact through two energies acting in parallel:

* energy attention (eqs. 3.15–3.16), with keys and queries from one set of weights each and no value
  matrix: :math:`E^{ATT} = -\frac1\beta\sum_h\sum_C\log\sum_{B\ne C}e^{\beta A_{hBC}}`,
  :math:`A_{hBC} = (W^K_h\hat x_B)\cdot(W^Q_h\hat x_C)`;
* the Hopfield module (eq. 3.17), an MLP with tied weights:
  :math:`E^{HN} = -\frac12\sum_B\sum_\mu \mathrm{ReLU}(\xi_\mu\cdot\hat x_B)^2` (or its log-sum-exp
  variant :math:`-\frac1{\beta_m}\sum_B\log\sum_\mu e^{\beta_m\xi_\mu\cdot\hat x_B}`).

The dynamics are :math:`x \leftarrow x - \alpha\,\partial E/\partial\hat x` with
:math:`E = E^{ATT} + E^{HN}` (eq. 3.19: the layer norm's own energy is O(ε) and dropped). In this
library the ET *is* a HAMUX graph: one layer of N tokens with the
:class:`~amtutor.lagrangians.LayerNorm` Lagrangian (``neuron_energy=False``), an
:class:`~amtutor.hamux.AttentionSynapse` and a :class:`~amtutor.hamux.MemorySynapse`, descended by
:func:`amtutor.hamux.descend`. :func:`attention_energy`, :func:`hopfield_energy`,
:func:`attention_update` and :func:`hopfield_update` are the direct, hand-derived formulas the tests
hold the graph to.

The image model :class:`ImageET` (patches → tokens → T descent steps → patches) inpaints masked
patches; :mod:`amtutor.et_train` trains it and writes the weights the chapter loads
(:func:`load_image_et`).
"""

from __future__ import annotations

from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from . import hamux
from .lagrangians import LayerNorm, RectifiedPower, Softmax
from .validation import as_array, check_finite, check_int, check_key, check_positive, check_probability

__all__ = [
    "TOKENS",
    "energy_transformer",
    "layer_norm",
    "attention_energy",
    "hopfield_energy",
    "attention_update",
    "hopfield_update",
    "patchify",
    "unpatchify",
    "random_patch_masks",
    "ImageET",
    "init_image_et",
    "mean_fill",
    "neighbour_fill",
    "biharmonic_fill",
    "masked_mse",
    "held_out_set",
    "inpainting_errors",
    "save_image_et",
    "load_image_et",
    "WEIGHTS",
]

TOKENS = "tokens"  # the one layer of every ET graph
WEIGHTS = Path(__file__).parent / "weights" / "energy_transformer.npz"
"""The shipped inpainting model (written by ``python -m amtutor.et_train``)."""


def _tokens(name, x, dim=None, against="the weights"):
    x = as_array(name, x, ndim=2)
    check_finite(name, x)
    if x.size == 0:
        raise ValueError(f"{name} must hold at least one token of at least one dimension, got shape {tuple(x.shape)}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} must have shape (N, {dim}) to match {against} (dimension {dim}), "
                         f"got {tuple(x.shape)}")
    return jnp.asarray(x, jnp.float32)


def _head_weights(Wq, Wk):
    Wq, Wk = as_array("Wq", Wq, ndim=3), as_array("Wk", Wk, ndim=3)
    check_finite("Wq", Wq)
    check_finite("Wk", Wk)
    if Wq.shape != Wk.shape:
        raise ValueError(f"Wq and Wk must have the same shape (H, Y, D), got {Wq.shape} and {Wk.shape}")
    return jnp.asarray(Wq, jnp.float32), jnp.asarray(Wk, jnp.float32)


def _memories(memories, dim=None):
    memories = as_array("memories", memories, ndim=2)
    check_finite("memories", memories)
    if memories.shape[0] == 0:
        raise ValueError("memories must hold at least one memory (shape (M, D) with M >= 1)")
    if dim is not None and memories.shape[1] != dim:
        raise ValueError(f"memories must have shape (M, {dim}) to match the tokens, got {tuple(memories.shape)}")
    return jnp.asarray(memories, jnp.float32)


def energy_transformer(num_tokens: int, Wq, Wk, memories, *, gamma=1.0, delta=0.0, beta=None,
                       eps: float = 1e-5, exclude_self: bool = True, memory: str = "relu",
                       memory_beta: float = 1.0) -> hamux.Graph:
    """The ET energy as a HAMUX graph on ``num_tokens`` tokens (layer :data:`TOKENS`).

    Args:
        num_tokens: N (≥ 2 with ``exclude_self``).
        Wq, Wk: ``(H, Y, D)`` query and key weights (heads, head dimension, token dimension).
        memories: ``(M, D)`` the Hopfield module's ξ.
        gamma: the layer norm's scalar scale γ > 0; delta: its bias δ (scalar or ``(D,)``).
        beta: the attention's inverse temperature (default 1/√Y).
        eps: the layer norm's regulariser ε.
        exclude_self: drop B = C from the attention sum (eq. 3.15).
        memory: ``"relu"`` for −½ΣReLU(ξ·x̂)², ``"lse"`` for −β_m⁻¹Σ log Σ exp(β_m ξ·x̂).
        memory_beta: β_m of the ``"lse"`` module.

    ``descend(graph, {"tokens": x}, dt=α, steps=T)`` then runs x ← x − α ∂E/∂x̂ (eq. 3.19).
    """
    num_tokens = check_int("num_tokens", num_tokens, minimum=1)
    Wq, Wk = _head_weights(Wq, Wk)
    memories = _memories(memories, Wq.shape[2])
    beta = 1.0 / np.sqrt(Wq.shape[1]) if beta is None else check_positive("beta", beta)
    memory_beta = check_positive("memory_beta", memory_beta)
    if not isinstance(exclude_self, bool):
        raise TypeError(f"exclude_self must be True or False, got {exclude_self!r}")
    if memory == "relu":
        separation = RectifiedPower(2)
    elif memory == "lse":
        separation = Softmax(memory_beta)
    else:
        raise ValueError(f"memory must be 'relu' or 'lse', got {memory!r}")
    dim = Wq.shape[2]
    delta = as_array("delta", delta, ndim=(0, 1))
    if delta.ndim == 1 and delta.shape[0] != dim:
        raise ValueError(f"delta must be a number or have shape ({dim},) like the tokens, got {delta.shape}")
    layer = hamux.Layer((num_tokens, dim), LayerNorm(gamma, delta, eps=eps, axis=-1), neuron_energy=False)
    synapses = {"attention": hamux.AttentionSynapse(Wq, Wk, beta=beta, exclude_self=exclude_self),
                "memory": hamux.MemorySynapse(memories, separation)}
    return hamux.Graph({TOKENS: layer}, synapses, [("attention", TOKENS), ("memory", TOKENS)])


def layer_norm(x: Float[Array, "N D"], *, gamma=1.0, delta=0.0, eps: float = 1e-5) -> Float[Array, "N D"]:
    r"""x̂ = γ (x − x̄)/√(var(x) + ε) + δ, token by token (eq. 3.13)."""
    x = _tokens("x", x)
    gamma = check_positive("gamma", gamma)
    delta = as_array("delta", delta, ndim=(0, 1))
    check_finite("delta", delta)
    if delta.ndim == 1 and delta.shape[0] != x.shape[1]:
        raise ValueError(f"delta must be a number or have shape ({x.shape[1]},) like the tokens, got {delta.shape}")
    eps = check_positive("eps", eps)
    centred = x - x.mean(-1, keepdims=True)
    return gamma * centred / jnp.sqrt((centred**2).mean(-1, keepdims=True) + eps) + delta


def _scores(xhat, Wq, Wk):
    keys = jnp.einsum("hyd,bd->hby", Wk, xhat)
    queries = jnp.einsum("hyd,cd->hcy", Wq, xhat)
    return keys, queries, jnp.einsum("hby,hcy->hbc", keys, queries)  # A[h, B, C]


def _attention_weights(scores, beta, exclude_self):
    # softmax over the keys B for every query C (axis 1), B = C left out when asked
    if exclude_self:
        n = scores.shape[1]
        scores = jnp.where(jnp.eye(n, dtype=bool)[None], -jnp.inf, scores)
    return jax.nn.softmax(beta * scores, axis=1)


def _check_attention(xhat, Wq, Wk, beta, exclude_self):
    if not isinstance(exclude_self, bool):
        raise TypeError(f"exclude_self must be True or False, got {exclude_self!r}")
    Wq, Wk = _head_weights(Wq, Wk)
    xhat = _tokens("xhat", xhat, Wq.shape[2], against="Wq and Wk")
    if exclude_self and xhat.shape[0] < 2:
        raise ValueError(f"attention with exclude_self=True needs at least 2 tokens, got xhat of shape {xhat.shape}")
    beta = 1.0 / np.sqrt(Wq.shape[1]) if beta is None else check_positive("beta", beta)
    return xhat, Wq, Wk, beta


def attention_energy(xhat: Float[Array, "N D"], Wq, Wk, *, beta=None, exclude_self: bool = True) -> Float[Array, ""]:
    r"""Direct formula of eq. 3.15: :math:`-\frac1\beta\sum_h\sum_C\log\sum_{B\ne C}e^{\beta A_{hBC}}`."""
    xhat, Wq, Wk, beta = _check_attention(xhat, Wq, Wk, beta, exclude_self)
    _, _, scores = _scores(xhat, Wq, Wk)
    where = ~jnp.eye(xhat.shape[0], dtype=bool)[None] if exclude_self else None
    lse = jax.nn.logsumexp(beta * scores, axis=1, where=where)
    return -jnp.sum(lse) / beta


def attention_update(xhat: Float[Array, "N D"], Wq, Wk, *, beta=None, exclude_self: bool = True) -> Float[Array, "N D"]:
    r"""−∂E^ATT/∂x̂, derived by hand: with ω_hBC = softmax_B(βA_hBC),

    .. math:: -\frac{\partial E^{ATT}}{\partial\hat x_A} = \sum_h\Big[W^{K\top}_h\sum_C\omega_{hAC}Q_{hC}
              + W^{Q\top}_h\sum_B\omega_{hBA}K_{hB}\Big]:

    each token is pulled by the queries that attend to it (through the keys' weights) and by the keys it
    attends to (through the queries' weights). The values are built from keys and queries."""
    xhat, Wq, Wk, beta = _check_attention(xhat, Wq, Wk, beta, exclude_self)
    keys, queries, scores = _scores(xhat, Wq, Wk)
    omega = _attention_weights(scores, beta, exclude_self)  # (H, B, C)
    as_key = jnp.einsum("hac,hcy,hyd->ad", omega, queries, Wk)
    as_query = jnp.einsum("hba,hby,hyd->ad", omega, keys, Wq)
    return as_key + as_query


def _check_hopfield(xhat, memories):
    memories = _memories(memories)
    return _tokens("xhat", xhat, memories.shape[1], against="memories"), memories


def hopfield_energy(xhat: Float[Array, "N D"], memories) -> Float[Array, ""]:
    r"""Direct formula of eq. 3.17 with G = ½ReLU²: :math:`-\frac12\sum_B\sum_\mu\mathrm{ReLU}(\xi_\mu\cdot\hat x_B)^2`."""
    xhat, memories = _check_hopfield(xhat, memories)
    return -0.5 * jnp.sum(jax.nn.relu(xhat @ memories.T) ** 2)


def hopfield_update(xhat: Float[Array, "N D"], memories) -> Float[Array, "N D"]:
    r"""−∂E^HN/∂x̂ = Σ_μ ReLU(ξ_μ·x̂_B) ξ_μ: the tied-weight MLP, ξᵀ ReLU(ξ x̂)."""
    xhat, memories = _check_hopfield(xhat, memories)
    return jax.nn.relu(xhat @ memories.T) @ memories


# --------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------


def _image(name, image, patch):
    image = as_array(name, image, ndim=(2, 3))
    check_finite(name, image)
    if image.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(image.shape)}")
    side_h, side_w = image.shape[-2:]
    if side_h % patch or side_w % patch:
        raise ValueError(f"{name} of shape {tuple(image.shape)} cannot be cut into {patch}×{patch} patches: "
                         f"its height and width must be multiples of patch = {patch}")
    return jnp.asarray(image, jnp.float32)


def patchify(image: Float[Array, "*B H W"], patch: int) -> Float[Array, "*B N P"]:
    """Cut a grayscale image into non-overlapping ``patch``×``patch`` patches, row by row:
    ``(H, W) -> (H/p · W/p, p²)`` (a leading batch axis is kept)."""
    patch = check_int("patch", patch, minimum=1)
    image = _image("image", image, patch)
    *batch, h, w = image.shape
    blocks = image.reshape(*batch, h // patch, patch, w // patch, patch)
    blocks = jnp.moveaxis(blocks, -3, -2)  # (..., rows, cols, p, p)
    return blocks.reshape(*batch, (h // patch) * (w // patch), patch * patch)


def unpatchify(patches: Float[Array, "*B N P"], side: int) -> Float[Array, "*B H W"]:
    """Inverse of :func:`patchify` for a square image of ``side`` pixels."""
    side = check_int("side", side, minimum=1)
    patches = as_array("patches", patches, ndim=(2, 3))
    check_finite("patches", patches)
    *batch, n, p2 = patches.shape
    patch = int(round(np.sqrt(p2)))
    if patch * patch != p2 or side % patch or (side // patch) ** 2 != n:
        raise ValueError(f"patches of shape {tuple(patches.shape)} do not tile a {side}×{side} image "
                         "(need N = (side/p)² square patches of p² pixels)")
    grid = side // patch
    blocks = patches.reshape(*batch, grid, grid, patch, patch)
    return jnp.moveaxis(blocks, -2, -3).reshape(*batch, side, side)


def random_patch_masks(num_patches: int, ratio: float, *, key, count: int | None = None) -> Bool[Array, "*B N"]:
    """Masks hiding exactly ``round(ratio · num_patches)`` patches chosen at random (True = hidden);
    ``count`` masks at once when given."""
    num_patches = check_int("num_patches", num_patches, minimum=1)
    ratio = float(check_probability("ratio", ratio))
    check_key("key", key)
    hidden = int(round(ratio * num_patches))

    def one(k):
        return jnp.zeros(num_patches, bool).at[jax.random.permutation(k, num_patches)[:hidden]].set(True)

    if count is None:
        return one(key)
    count = check_int("count", count, minimum=1)
    return jax.vmap(one)(jax.random.split(key, count))


def _sincos_positions(grid: int, dim: int) -> np.ndarray:
    # 2-D sine/cosine embedding: half the channels encode the row, half the column
    quarter = dim // 4
    freqs = 1.0 / (100.0 ** (np.arange(quarter) / max(quarter, 1)))
    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    parts = []
    for coord in (rows.ravel(), cols.ravel()):
        angle = coord[:, None] * freqs[None]
        parts += [np.sin(angle), np.cos(angle)]
    emb = np.concatenate(parts, axis=1)
    return np.pad(emb, ((0, 0), (0, dim - emb.shape[1]))).astype(np.float32)


class ImageET(eqx.Module):
    """Masked-patch inpainting with an Energy Transformer.

    A crop is normalised by the mean and standard deviation of its *visible* pixels; visible patches
    are encoded linearly, hidden ones replaced by the MASK token; positional embeddings are added and a
    CLS token is prepended; T steps of ET descent (step α) move the tokens; the layer-normed tokens
    are decoded linearly into a *residual* over the visible mean (so an untrained model predicts
    mean-fill, not noise). Every array is trainable; ``steps``, ``alpha``, ``side`` and ``patch`` are
    fixed.
    """

    graph: hamux.Graph
    encoder: Float[Array, "P D"]
    encoder_bias: Float[Array, " D"]
    decoder: Float[Array, "D P"]
    decoder_bias: Float[Array, " P"]
    positions: Float[Array, "N D"]
    cls_token: Float[Array, " D"]
    mask_token: Float[Array, " D"]
    side: int = eqx.field(static=True)
    patch: int = eqx.field(static=True)
    steps: int = eqx.field(static=True)
    alpha: float = eqx.field(static=True)

    @property
    def num_patches(self) -> int:
        return (self.side // self.patch) ** 2

    def tokens(self, image: Float[Array, "H W"], mask: Bool[Array, " N"]):
        """The initial tokens ``(N + 1, D)`` and the normalisation ``(mean, std)`` of one crop."""
        patches = patchify(image, self.patch)
        visible = ~mask[:, None]
        count = jnp.maximum(visible.sum() * patches.shape[1], 1)
        mean = jnp.sum(jnp.where(visible, patches, 0.0)) / count
        std = jnp.sqrt(jnp.sum(jnp.where(visible, (patches - mean) ** 2, 0.0)) / count) + 1e-2
        encoded = ((patches - mean) / std) @ self.encoder + self.encoder_bias
        tokens = jnp.where(mask[:, None], self.mask_token, encoded) + self.positions
        return jnp.concatenate([self.cls_token[None], tokens]), (mean, std)

    def decode(self, x: Float[Array, "N1 D"], normalisation) -> Float[Array, "N P"]:
        """Patches (in pixel units) from final token states (the CLS token is dropped)."""
        mean, std = normalisation
        xhat = self.graph.layers[TOKENS].activation(x)[1:]
        return mean + std * (xhat @ self.decoder + self.decoder_bias)

    def _descend(self, image, mask, steps, alpha, record_every):
        x0, normalisation = self.tokens(image, mask)
        steps = self.steps if steps is None else steps
        run = hamux.descend(self.graph, {TOKENS: x0}, dt=self.alpha if alpha is None else alpha,
                            steps=steps, record_every=record_every)
        return run, normalisation

    def trajectory(self, image: Float[Array, "H W"], mask: Bool[Array, " N"], *, steps: int | None = None,
                   alpha: float | None = None, record_every: int | None = None) -> hamux.Trajectory:
        """The T-step descent of one crop's tokens (the library's :func:`~amtutor.hamux.descend`)."""
        return self._descend(image, mask, steps, alpha, record_every)[0]

    def inpaint(self, image: Float[Array, "H W"], mask: Bool[Array, " N"], *, steps: int | None = None,
                alpha: float | None = None):
        """``(inpainted crop, (mean, std))``: the crop with its hidden patches predicted, and the
        visible-pixel normalisation it was computed with (the training loss scales by it)."""
        run, normalisation = self._descend(image, mask, steps, alpha, None)
        predicted = self.decode(run.final[TOKENS], normalisation)
        patches = patchify(image, self.patch)
        return unpatchify(jnp.where(mask[:, None], predicted, patches), self.side), normalisation

    def __call__(self, image: Float[Array, "H W"], mask: Bool[Array, " N"], *, steps: int | None = None,
                 alpha: float | None = None) -> Float[Array, "H W"]:
        """The inpainted crop: visible patches kept, hidden ones predicted."""
        return self.inpaint(image, mask, steps=steps, alpha=alpha)[0]


def init_image_et(*, key, side: int = 32, patch: int = 4, dim: int = 128, heads: int = 4, head_dim: int = 32,
                  num_memories: int = 512, steps: int = 12, alpha: float = 0.1) -> ImageET:
    """The recipe's initialisation (each choice was needed for the model to learn at all): W_Q = W_K
    from one draw (std 1/√D), small memories (std 0.02), a 2-D sine/cosine positional embedding, a zero
    MASK token, and a small non-zero decoder."""
    check_key("key", key)
    side, patch = check_int("side", side, minimum=2), check_int("patch", patch, minimum=1)
    if side % patch:
        raise ValueError(f"side ({side}) must be a multiple of patch ({patch})")
    dim, heads = check_int("dim", dim, minimum=4), check_int("heads", heads, minimum=1)
    head_dim, num_memories = check_int("head_dim", head_dim, minimum=1), check_int("num_memories", num_memories, minimum=1)
    steps, alpha = check_int("steps", steps, minimum=0), float(check_positive("alpha", alpha))
    grid, pixels = side // patch, patch * patch
    k_w, k_m, k_e, k_d, k_c = jax.random.split(key, 5)
    W = jax.random.normal(k_w, (heads, head_dim, dim)) / np.sqrt(dim)
    memories = 0.02 * jax.random.normal(k_m, (num_memories, dim))
    graph = energy_transformer(grid * grid + 1, W, W, memories, gamma=1.0, delta=jnp.zeros(dim))
    return ImageET(
        graph=graph,
        encoder=jax.random.normal(k_e, (pixels, dim)) / np.sqrt(pixels),
        encoder_bias=jnp.zeros(dim),
        decoder=0.01 * jax.random.normal(k_d, (dim, pixels)) / np.sqrt(dim),
        decoder_bias=jnp.zeros(pixels),
        positions=jnp.asarray(_sincos_positions(grid, dim)),
        cls_token=0.02 * jax.random.normal(k_c, (dim,)),
        mask_token=jnp.zeros(dim),
        side=side, patch=patch, steps=steps, alpha=alpha,
    )


def _check_crops(images, masks, patch):
    patch = check_int("patch", patch, minimum=1)
    images = _image("images", images, patch)
    masks = as_array("masks", masks)
    if not jnp.issubdtype(masks.dtype, jnp.bool_):
        raise TypeError(f"masks must be boolean (True = hidden patch), got dtype {masks.dtype}")
    n = (images.shape[-2] // patch) * (images.shape[-1] // patch)
    if masks.ndim != images.ndim - 1 or masks.shape[-1] != n or masks.shape[:-1] != images.shape[:-2]:
        raise ValueError(f"masks must have shape {images.shape[:-2] + (n,)} (one flag per {patch}×{patch} "
                         f"patch of each of the images, shape {tuple(images.shape)}), got {tuple(masks.shape)}")
    return images, masks


def masked_mse(predicted: Float[Array, "*B H W"], images: Float[Array, "*B H W"], masks: Bool[Array, "*B N"], *,
               patch: int) -> Float[Array, ""]:
    """Mean squared error over the pixels of the hidden patches only."""
    images, masks = _check_crops(images, masks, patch)
    predicted = _image("predicted", predicted, patch)
    if predicted.shape != images.shape:
        raise ValueError(f"predicted must have the shape of images {tuple(images.shape)}, got {tuple(predicted.shape)}")
    err = (patchify(predicted, patch) - patchify(images, patch)) ** 2
    hidden = masks[..., None] * jnp.ones_like(err)
    return jnp.sum(err * hidden) / jnp.maximum(jnp.sum(hidden), 1.0)


def mean_fill(images: Float[Array, "*B H W"], masks: Bool[Array, "*B N"], *, patch: int) -> Float[Array, "*B H W"]:
    """Baseline: every hidden pixel set to the mean of the visible pixels of its image."""
    images, masks = _check_crops(images, masks, patch)
    patches = patchify(images, patch)
    visible = ~masks[..., None] & jnp.ones_like(patches, bool)
    mean = jnp.sum(jnp.where(visible, patches, 0.0), axis=(-2, -1), keepdims=True) / jnp.maximum(
        visible.sum(axis=(-2, -1), keepdims=True), 1)
    return unpatchify(jnp.where(masks[..., None], mean, patches), images.shape[-1])


def neighbour_fill(images: Float[Array, "*B H W"], masks: Bool[Array, "*B N"], *, patch: int) -> Float[Array, "*B H W"]:
    """Baseline: every hidden patch set to the pixel-wise average of its visible neighbours among the 8
    surrounding patches (the visible mean when none is visible)."""
    images, masks = _check_crops(images, masks, patch)
    if images.shape[-1] != images.shape[-2]:
        raise ValueError(f"images must be square, got shape {tuple(images.shape)}")
    grid = images.shape[-1] // patch
    patches = patchify(images, patch)
    batch = patches.shape[:-2]
    p = patches.reshape(*batch, grid, grid, -1)
    vis = (~masks).reshape(*batch, grid, grid, 1).astype(jnp.float32)
    pad = [(0, 0)] * len(batch) + [(1, 1), (1, 1), (0, 0)]
    pv, vv = jnp.pad(p * vis, pad), jnp.pad(vis, pad)
    shifts = [(1 + di, 1 + dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)]
    total = sum(pv[..., i:i + grid, j:j + grid, :] for i, j in shifts)
    count = sum(vv[..., i:i + grid, j:j + grid, :] for i, j in shifts)
    fallback = patchify(mean_fill(images, masks, patch=patch), patch).reshape(p.shape)
    fill = jnp.where(count > 0, total / jnp.maximum(count, 1.0), fallback)
    out = jnp.where(vis > 0, p, fill).reshape(patches.shape)
    return unpatchify(out, images.shape[-1])


def biharmonic_fill(images: Float[Array, "*B H W"], masks: Bool[Array, "*B N"], *, patch: int) -> np.ndarray:
    """Baseline: scikit-image's biharmonic inpainting of the hidden patches (a smooth interpolation
    from the visible pixels around them; CPU, NumPy)."""
    from skimage.restoration import inpaint_biharmonic

    images, masks = _check_crops(images, masks, patch)
    flat_images = np.asarray(images, np.float64).reshape(-1, *images.shape[-2:])
    # every crop's hidden pixels at once: the patch flags spread over their p² pixels
    flat_masks = jnp.asarray(masks).reshape(-1, masks.shape[-1])
    spread = jnp.repeat(flat_masks[..., None], patch * patch, axis=-1).astype(jnp.float32)
    hidden_pixels = np.asarray(unpatchify(spread, images.shape[-1])) > 0.5
    out = np.empty_like(flat_images)
    for i, (image, pixels) in enumerate(zip(flat_images, hidden_pixels)):
        out[i] = inpaint_biharmonic(image, pixels)
    return out.reshape(images.shape).astype(np.float32)


def held_out_set(*, count: int = 512, ratio: float = 0.5, side: int = 32, patch: int = 4, seed: int = 0):
    """The held-out test crops: ``count`` random ``side``×``side`` crops of
    :data:`amtutor.data.HELD_OUT_PHOTOGRAPHS` (never seen in training) with fixed random masks hiding
    ``ratio`` of the patches. Returns ``(images (count, side, side), masks (count, N))``."""
    from .data import HELD_OUT_PHOTOGRAPHS, photographs, random_crops

    count, side = check_int("count", count, minimum=1, maximum=10**6), check_int("side", side, minimum=1)
    patch = check_int("patch", patch, minimum=1)
    if side % patch:
        raise ValueError(f"side ({side}) must be a multiple of patch ({patch})")
    k_crop, k_mask = jax.random.split(jax.random.key(check_int("seed", seed, minimum=0)))
    images = random_crops(photographs(HELD_OUT_PHOTOGRAPHS), side, count, key=k_crop)
    masks = random_patch_masks((side // patch) ** 2, ratio, key=k_mask, count=count)
    return images, masks


@eqx.filter_jit
def _predict(model, images, masks, steps):
    return jax.vmap(lambda i, m: model(i, m, steps=steps))(images, masks)


def inpainting_errors(model: ImageET, images, masks, *, steps=None, biharmonic: bool = True) -> dict[str, float]:
    """Masked-patch MSE of the model (after its trained T steps, and after 0 steps) and of the
    baselines (mean fill, neighbour fill, and biharmonic inpainting when asked), on the same crops."""
    if not isinstance(model, ImageET):
        raise TypeError(f"model must be an ImageET, got {type(model).__name__}")
    images, masks = _check_crops(images, masks, model.patch)
    steps = model.steps if steps is None else check_int("steps", steps, minimum=0)
    if not isinstance(biharmonic, bool):
        raise TypeError(f"biharmonic must be True or False, got {biharmonic!r}")
    mse = lambda predicted: float(masked_mse(predicted, images, masks, patch=model.patch))  # noqa: E731
    errors = {"ET": mse(_predict(model, images, masks, steps)), "ET, T = 0": mse(_predict(model, images, masks, 0)),
              "mean fill": mse(mean_fill(images, masks, patch=model.patch)),
              "neighbour fill": mse(neighbour_fill(images, masks, patch=model.patch))}
    if biharmonic:
        errors["biharmonic"] = mse(jnp.asarray(biharmonic_fill(images, masks, patch=model.patch)))
    return errors


# --------------------------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------------------------


def _npz_path(path) -> Path:
    if not isinstance(path, (str, Path)):
        raise TypeError(f"path must be a file name (str or Path) ending in .npz, got {path!r}")
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"path must end in .npz, got {str(path)!r}")
    return path


def _config(model: ImageET) -> dict:
    att = model.graph.synapses["attention"]
    return dict(side=model.side, patch=model.patch, dim=att.Wq.shape[2], heads=att.Wq.shape[0],
                head_dim=att.Wq.shape[1], num_memories=model.graph.synapses["memory"].memories.shape[0],
                steps=model.steps, alpha=model.alpha)


def save_image_et(path, model: ImageET, **extra) -> None:
    """Write ``model`` (its configuration and every array) to an ``.npz`` file; ``extra`` numbers (e.g.
    measured errors) are stored beside them."""
    if not isinstance(model, ImageET):
        raise TypeError(f"model must be an ImageET, got {type(model).__name__}")
    path = _npz_path(path)
    for name, value in extra.items():
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            raise TypeError(f"extra value {name} must be a number, got {value!r}")
    leaves = jax.tree_util.tree_leaves(model)
    arrays = {f"leaf_{i:03d}": np.asarray(leaf) for i, leaf in enumerate(leaves)}
    config = {f"config_{k}": np.asarray(v) for k, v in _config(model).items()}
    extras = {f"extra_{k}": np.asarray(v) for k, v in extra.items()}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays, **config, **extras)


def load_image_et(path=None) -> tuple[ImageET, dict]:
    """Read a model written by :func:`save_image_et` (default: the shipped :data:`WEIGHTS`); returns
    ``(model, extras)``."""
    path = WEIGHTS if path is None else _npz_path(path)
    if not path.exists():
        raise FileNotFoundError(f"no ET weights at {path}: run `python -m amtutor.et_train` to train them")
    with np.load(path) as f:
        config = {k[len("config_"):]: f[k].item() for k in f.files if k.startswith("config_")}
        extras = {k[len("extra_"):]: f[k].item() if f[k].ndim == 0 else f[k] for k in f.files if k.startswith("extra_")}
        leaves = [jnp.asarray(f[k]) for k in sorted(k for k in f.files if k.startswith("leaf_"))]
    template = init_image_et(key=jax.random.key(0), **config)
    treedef = jax.tree_util.tree_structure(template)
    return jax.tree_util.tree_unflatten(treedef, leaves), extras
