"""amtutor.et: the Energy Transformer is a HAMUX graph whose energy and update are the direct formulas
of eqs. 3.13-3.19; its descent never raises the energy; the image model's pieces and baselines."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

from amtutor import et, hamux


def _params(seed, n=7, d=12, h=2, y=4, m=10, scale=1.0):
    k = jax.random.split(jax.random.key(seed), 5)
    wq = scale * jax.random.normal(k[0], (h, y, d)) / np.sqrt(d)
    wk = scale * jax.random.normal(k[1], (h, y, d)) / np.sqrt(d)
    xi = jax.random.normal(k[2], (m, d)) / np.sqrt(d)
    delta = 0.1 * jax.random.normal(k[3], (d,))
    x = jax.random.normal(k[4], (n, d))
    return wq, wk, xi, delta, x


@pytest.mark.parametrize("exclude_self", [True, False])
def test_graph_energy_and_update_are_the_direct_formulas(exclude_self):
    wq, wk, xi, delta, x = _params(0)
    graph = et.energy_transformer(len(x), wq, wk, xi, gamma=1.7, delta=delta, exclude_self=exclude_self)
    xhat = et.layer_norm(x, gamma=1.7, delta=delta)
    assert float(jnp.max(jnp.abs(graph.activations({et.TOKENS: x})[et.TOKENS] - xhat))) < 1e-6
    direct = et.attention_energy(xhat, wq, wk, exclude_self=exclude_self) + et.hopfield_energy(xhat, xi)
    energy = graph.energy({et.TOKENS: x})
    assert abs(float(energy - direct)) <= 1e-6 * abs(float(direct)) + 1e-6  # float32 sums of O(10) terms
    # the graph's velocity (autodiff through the synapses, no neuron energy) is the hand-derived
    # "attention + memory in parallel" update
    velocity = graph.velocity({et.TOKENS: x})[et.TOKENS]
    by_hand = et.attention_update(xhat, wq, wk, exclude_self=exclude_self) + et.hopfield_update(xhat, xi)
    assert float(jnp.max(jnp.abs(velocity - by_hand))) < 1e-5 * float(jnp.max(jnp.abs(by_hand)))


def test_hand_derived_updates_are_minus_the_autodiff_gradients():
    wq, wk, xi, delta, x = _params(1)
    xhat = et.layer_norm(x, delta=delta)
    for exclude_self in (True, False):
        grad_att = jax.grad(lambda z: et.attention_energy(z, wq, wk, exclude_self=exclude_self))(xhat)
        update = et.attention_update(xhat, wq, wk, exclude_self=exclude_self)
        # float32: both routes sum the same O(1) terms in a different order
        assert float(jnp.max(jnp.abs(update + grad_att))) < 1e-5 * (1 + float(jnp.max(jnp.abs(update))))
    grad_hn = jax.grad(lambda z: et.hopfield_energy(z, xi))(xhat)
    assert float(jnp.max(jnp.abs(et.hopfield_update(xhat, xi) + grad_hn))) < 1e-5


def test_lse_memory_variant_matches_its_formula():
    wq, wk, xi, delta, x = _params(2)
    graph = et.energy_transformer(len(x), wq, wk, xi, memory="lse", memory_beta=3.0)
    xhat = et.layer_norm(x)
    direct = et.attention_energy(xhat, wq, wk) - jnp.sum(jax.nn.logsumexp(3.0 * xhat @ xi.T, axis=1)) / 3.0
    assert abs(float(graph.energy({et.TOKENS: x}) - direct)) < 1e-5 * abs(float(direct)) + 1e-5


def test_dropped_neuron_energy_means_no_leak():
    # with neuron_energy=False the layer adds nothing: dx/dt = −∂E_synapses/∂x̂ exactly
    wq, wk, xi, delta, x = _params(3)
    graph = et.energy_transformer(len(x), wq, wk, xi)
    terms = graph.energy_terms(graph.activations({et.TOKENS: x}), {et.TOKENS: x})
    assert float(terms["layers"][et.TOKENS]) == 0.0


# two token counts only: every new shape compiles the descent again
@given(seed=st.integers(0, 10_000), scale=st.floats(0.3, 3.0), n=st.sampled_from([2, 7]))
def test_descent_never_raises_the_energy(seed, scale, n):
    wq, wk, xi, delta, x = _params(seed, n=n, scale=scale)
    graph = et.energy_transformer(n, wq, wk, xi, delta=delta)
    run = hamux.descend(graph, {et.TOKENS: 3 * x}, dt=0.01, steps=200, record_every=1)
    e = np.asarray(run.energies, np.float64)
    # float32: an energy of size |E| is known to ~1e-6 |E|; a small step must never raise it more
    assert np.all(np.diff(e) <= 1e-6 * np.abs(e[:-1]) + 1e-6)


def test_patchify_round_trip_and_order():
    image = jnp.arange(64.0).reshape(8, 8)
    patches = et.patchify(image, 4)
    assert patches.shape == (4, 16)
    assert patches[1, 0] == image[0, 4] and patches[2, 0] == image[4, 0]
    assert jnp.array_equal(et.unpatchify(patches, 8), image)
    batch = jnp.stack([image, -image])
    assert jnp.array_equal(et.unpatchify(et.patchify(batch, 2), 8), batch)


def test_random_patch_masks_hide_exactly_the_ratio():
    masks = et.random_patch_masks(64, 0.5, key=jax.random.key(0), count=100)
    assert masks.shape == (100, 64) and bool(jnp.all(masks.sum(1) == 32))
    assert not bool(jnp.all(masks[0] == masks[1]))


def test_baselines_keep_visible_patches_and_fill_hidden_ones():
    images = jax.random.uniform(jax.random.key(0), (3, 16, 16))
    masks = et.random_patch_masks(16, 0.5, key=jax.random.key(1), count=3)
    for fill in (et.mean_fill, et.neighbour_fill):
        out = fill(images, masks, patch=4)
        same = et.patchify(out, 4) == et.patchify(images, 4)
        assert bool(jnp.all(same[~masks])), fill.__name__
    # mean fill: every hidden pixel is the visible mean of its image
    out = et.patchify(et.mean_fill(images, masks, patch=4), 4)
    vis_mean = jnp.array([et.patchify(images, 4)[i][~masks[i]].mean() for i in range(3)])
    assert np.allclose(out[0][masks[0]], vis_mean[0], atol=1e-6)
    # a constant image is inpainted exactly by every baseline
    flat = jnp.full((1, 16, 16), 0.3)
    for fill in (et.mean_fill, et.neighbour_fill, et.biharmonic_fill):
        assert np.allclose(fill(flat, masks[:1], patch=4), 0.3, atol=1e-5), fill.__name__


def test_untrained_model_predicts_mean_fill_and_keeps_visible_patches():
    model = et.init_image_et(key=jax.random.key(0), side=16, dim=16, heads=2, head_dim=4, num_memories=8, steps=3)
    image = jax.random.uniform(jax.random.key(1), (16, 16))
    mask = et.random_patch_masks(16, 0.5, key=jax.random.key(2))
    out = model(image, mask)
    same = et.patchify(out, 4) == et.patchify(image, 4)
    assert bool(jnp.all(same[~mask]))
    # the decoder starts small: the prediction is a small residual over the visible mean
    mean = et.mean_fill(image, mask, patch=4)
    assert float(jnp.max(jnp.abs(out - mean))) < 0.1


def test_weights_round_trip(tmp_path):
    model = et.init_image_et(key=jax.random.key(0), side=8, dim=8, heads=1, head_dim=2, num_memories=4, steps=2)
    et.save_image_et(tmp_path / "m.npz", model, mse_ET=0.5)
    loaded, extras = et.load_image_et(tmp_path / "m.npz")
    assert extras["mse_ET"] == 0.5
    for a, b in zip(jax.tree_util.tree_leaves(model), jax.tree_util.tree_leaves(loaded)):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    image = jnp.ones((8, 8))
    mask = et.random_patch_masks(4, 0.5, key=jax.random.key(1))
    assert np.array_equal(np.asarray(model(image, mask)), np.asarray(loaded(image, mask)))


@pytest.mark.parametrize("call, match", [
    (lambda: et.patchify(jnp.ones((30, 32)), 4), "image"),
    (lambda: et.random_patch_masks(64, 1.5, key=jax.random.key(0)), "ratio"),
    (lambda: et.random_patch_masks(64, -0.1, key=jax.random.key(0)), "ratio"),
    (lambda: et.hopfield_energy(jnp.ones((3, 5)), jnp.ones((4, 6))), "xhat"),
    (lambda: et.attention_energy(jnp.ones((3, 5)), jnp.ones((1, 2, 6)), jnp.ones((1, 2, 6))), "xhat"),
    (lambda: et.patchify(jnp.full((8, 8), jnp.nan), 4), "image"),
    (lambda: et.mean_fill(jnp.ones((2, 8, 8)), jnp.ones((2, 3), bool), patch=4), "masks"),
    (lambda: et.energy_transformer(4, jnp.ones((1, 2, 6)), jnp.ones((1, 2, 6)), jnp.ones((0, 6))), "memories"),
    (lambda: et.energy_transformer(4, jnp.ones((1, 2, 6)), jnp.ones((1, 2, 6)), jnp.ones((3, 6)), beta=0.0), "beta"),
])
def test_bad_input_is_refused_by_name(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
