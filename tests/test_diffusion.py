"""Unit tests of amtutor.diffusion: energies, continuum, network, training, sampling, metrics."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest


from amtutor import diffusion, diffusion_train, hamux, kernels

KEY = jax.random.key(0)
MEM = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.2]], np.float32)


def small_net(key=KEY):
    return diffusion.ScoreNet(key=key, embed_dim=8, hidden=16)


# ---- exact energies -----------------------------------------------------------------------------


def test_dm_energy_is_am_energy_at_beta_of_t():
    x = np.random.default_rng(0).standard_normal((5, 2)).astype(np.float32)
    for t in (1e-3, 0.15, 1.0):
        beta = diffusion.beta_of_time(t, sigma=0.7)
        np.testing.assert_allclose(diffusion.dm_energy(MEM, x, t=t, sigma=0.7),
                                   diffusion.am_energy(MEM, x, beta=beta), rtol=1e-5, atol=1e-6)


def test_dm_energy_matches_a_direct_sum_in_float64():
    with jax.enable_x64(True):
        rng = np.random.default_rng(1)
        mem, x = rng.standard_normal((4, 3)), rng.standard_normal(3)
        t = 0.3
        direct = -2 * t * np.log(np.sum(np.exp(-np.sum((x - mem) ** 2, 1) / (2 * t))))
        e = diffusion.dm_energy(mem, x, t=t)
        assert e.dtype == jnp.float64
        np.testing.assert_allclose(float(e), direct, rtol=1e-13)


def test_am_energy_is_twice_the_kernels_lse_energy_at_2beta():
    # energy_minima relies on it: it descends kernels.lse_graph(2β)
    x = np.random.default_rng(2).standard_normal((6, 2)).astype(np.float32)
    np.testing.assert_allclose(diffusion.am_energy(MEM, x, beta=3.0),
                               2 * kernels.lse_energy(MEM, x, beta=6.0), rtol=1e-5, atol=1e-5)


def test_am_energy_is_stable_at_large_beta():
    e = diffusion.am_energy(MEM, np.array([5.0, 5.0], np.float32), beta=1e4)
    assert np.isfinite(float(e)) and float(e) > 0


def test_score_is_minus_beta_grad_energy():
    x = jnp.array([0.3, -0.2])
    t = 0.2
    beta = diffusion.beta_of_time(t)
    log_p = lambda y: jax.nn.logsumexp(-jnp.sum((y - MEM) ** 2, 1) / (2 * t))  # noqa: E731
    grad_e = jax.grad(lambda y: diffusion.dm_energy(MEM, y, t=t))(x)
    np.testing.assert_allclose(jax.grad(log_p)(x), -beta * grad_e, rtol=1e-4)
    # with E in DM units the score is -∇E/(2σ²t); in AM units -β∇E_AM: same thing
    grad_am = jax.grad(lambda y: diffusion.am_energy(MEM, y, beta=beta))(x)
    np.testing.assert_allclose(jax.grad(log_p)(x), -beta * grad_am, rtol=1e-4)


def test_two_memory_curvature_formula():
    assert diffusion.two_memory_curvature(2.0, 0.5) == pytest.approx(2 - 2 * 0.25)


def test_energy_minima_two_memories_merge_below_threshold():
    two = np.array([[-0.5, 0.0], [0.5, 0.0]], np.float32)  # d = 1
    starts = np.array([[-0.6, 0.1], [0.6, -0.1], [0.05, 0.0]], np.float32)
    low = diffusion.energy_minima(two, starts, beta=1.0)  # βd² = 1 < 2: one minimum, the midpoint
    assert low.shape == (1, 2)
    np.testing.assert_allclose(low[0], [0.0, 0.0], atol=1e-3)
    high = diffusion.energy_minima(two, starts, beta=10.0)  # βd² = 10 > 2: two, near the memories
    assert high.shape == (2, 2)
    np.testing.assert_allclose(np.sort(np.abs(high[:, 0])), [0.5, 0.5], atol=1e-3)


def test_beta_and_std():
    assert diffusion.beta_of_time(0.25, sigma=2.0) == pytest.approx(1 / (2 * 4 * 0.25))
    assert diffusion.marginal_std(0.25, sigma=2.0) == pytest.approx(1.0)


# ---- circle continuum ----------------------------------------------------------------------------


def test_circle_energy_stable_and_limits():
    R = jnp.linspace(0.0, 2.0, 41)
    for beta in (0.5, 20.0, 1e4):
        e = diffusion.circle_energy(R, beta=beta)
        assert bool(jnp.all(jnp.isfinite(e)))
    np.testing.assert_allclose(diffusion.circle_energy(R, beta=1e4), (R - 1) ** 2, atol=1e-3)


def test_circle_score_is_minus_radial_gradient():
    R = jnp.linspace(0.1, 1.8, 9)
    g = jax.vmap(jax.grad(lambda r: diffusion.circle_energy(r, beta=5.0)))(R)
    # score of log p = -β E, in the AM convention the radial score is -∂E/∂R
    np.testing.assert_allclose(diffusion.circle_score(R, beta=5.0), -g, rtol=1e-4, atol=1e-5)


def test_circle_minimum():
    for beta in (5.0, 50.0):
        r = diffusion.circle_minimum(beta)
        assert float(diffusion.circle_score(jnp.asarray([r]), beta=beta)[0]) == pytest.approx(0, abs=1e-5)
        assert r == pytest.approx(1 - 1 / (4 * beta), abs=2 / beta**2)
    assert diffusion.circle_minimum(0.8) == 0.0


def test_circle_data():
    x = diffusion.circle_data(7, key=KEY)
    np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 1.0, rtol=1e-6)
    e = diffusion.circle_data(4, equispaced=True)
    np.testing.assert_allclose(e, [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-6)
    np.testing.assert_array_equal(diffusion.circle_data(5), diffusion.circle_data(5))


# ---- network, training, sampling ----------------------------------------------------------------


def test_score_net_shapes_and_std_scaling():
    net = small_net()
    x = jnp.array([0.2, -0.4])
    assert net(x, 0.5).shape == (2,)
    assert diffusion.ScoreNet(key=KEY).layers[0].in_features == 130
    with pytest.raises(ValueError, match="embed_dim"):
        diffusion.ScoreNet(key=KEY, embed_dim=7)


def test_dsm_loss_of_the_exact_score_is_lower():
    # the loss of a random network exceeds that of a retrained one; and it is finite and positive
    data = diffusion.circle_data(4, key=KEY)
    loss = diffusion.dsm_loss(small_net(), data, key=KEY)
    assert float(loss) > 0 and np.isfinite(float(loss))


def test_train_lowers_the_loss_and_ema_lags():
    data = diffusion.circle_data(8, key=KEY)
    run = diffusion.train(data, key=KEY, steps=300, lr=3e-3, ema=0.9, chunk=50, batch=8, model=small_net())
    assert run.losses.shape == (6,)
    assert float(run.losses[-1]) < float(run.losses[0])
    w_ema, w = run.ema.layers[-1].weight, run.model.layers[-1].weight
    assert not np.allclose(w_ema, w)
    with pytest.raises(ValueError, match="chunk"):
        diffusion.train(data, key=KEY, steps=10, chunk=3)


def test_train_refuses_mismatched_model():
    with pytest.raises(ValueError, match="model"):
        diffusion.train(np.zeros((3, 3), np.float32), key=KEY, steps=1, model=small_net())


def test_sample_shapes_and_samplers():
    net = small_net()
    x = diffusion.sample(net, key=KEY, num=11, steps=10)
    assert x.shape == (11, 2) and bool(jnp.all(jnp.isfinite(x)))
    y = diffusion.sample(net, key=KEY, num=11, steps=10, sampler="reference")
    assert not np.allclose(x, y)
    with pytest.raises(ValueError, match="sampler"):
        diffusion.sample(net, key=KEY, sampler="heun")


class _Exact(diffusion.ScoreNet):
    """The exact score of a point mass at c (marginal N(c, t)), for checking the samplers and energies."""

    def __call__(self, x, t):
        return -(x - jnp.array([0.6, -0.3])) / (self.sigma**2 * t)


def exact_model():
    return _Exact(key=KEY, embed_dim=2, hidden=2)


def test_tweedie_sampler_is_exact_for_a_point_mass():
    x = diffusion.sample(exact_model(), key=KEY, num=50, steps=20)
    np.testing.assert_allclose(x, np.tile([0.6, -0.3], (50, 1)), atol=1e-5)


def test_ray_energy_of_an_exact_score():
    # score -(x - c)/t: energy in AM units (x - c)²·(2t)/(2t)... E_AM = ‖x − c‖² + const
    pts = jnp.array([[0.0, 0.0], [1.0, 1.0], [-0.5, 0.2]])
    e = diffusion.ray_energy(exact_model(), pts, t=0.2, nodes=8)
    c = jnp.array([0.6, -0.3])
    expected = jnp.sum((pts - c) ** 2, 1) - jnp.sum(c**2)
    np.testing.assert_allclose(e, expected, rtol=1e-5, atol=1e-5)


def test_flow_energy_of_an_exact_score():
    # point mass at c: p_t = N(c, t), so −log p_t(x) = ‖x − c‖²/(2t) + log(2πt)
    c = np.array([[0.6, -0.3]], np.float32)
    pts = jnp.array([[0.0, 0.0], [1.0, 0.5]])
    t = 0.3
    e = diffusion.flow_energy(exact_model(), pts, c, t=t, steps=40)
    expected = np.sum((np.asarray(pts) - c) ** 2, 1) / (2 * t) + np.log(2 * np.pi * t)
    np.testing.assert_allclose(e, expected, rtol=1e-4)


# ---- metrics --------------------------------------------------------------------------------------


def test_regime_metrics_extremes():
    mem = np.asarray(diffusion.circle_data(3, equispaced=True))
    copies = np.repeat(mem, 100, axis=0)
    m = diffusion.regime_metrics(copies, mem)
    assert m.ang_nn_ratio == 0.0 and m.off_memory == 0.0 and m.radius_error < 1e-6
    assert m.coverage == pytest.approx(3 / 36)
    ring = np.asarray(diffusion.circle_data(3600, equispaced=True))
    m = diffusion.regime_metrics(ring, mem)
    assert m.ang_nn_ratio == pytest.approx(1.0, abs=1e-3) and m.coverage == 1.0
    assert m.off_memory > 0.5
    with pytest.raises(ValueError, match="memories"):
        diffusion.regime_metrics(ring, np.zeros((3, 3)))


# ---- weights ----------------------------------------------------------------------------------------


def test_save_and_load_round_trip(tmp_path):
    net = diffusion.ScoreNet(key=jax.random.key(3))
    path = diffusion.save_model(net, tmp_path / "m.eqx")
    back = diffusion.load_model(2, path=path)
    x = jnp.array([0.1, 0.2])
    np.testing.assert_allclose(back(x, 0.3), net(x, 0.3), rtol=1e-6)
    with pytest.raises(ValueError, match="path"):
        diffusion.save_model(net, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="path"):
        diffusion.load_model(2, path=tmp_path / "missing.eqx")
    with pytest.raises(ValueError, match="num_memories"):
        diffusion.load_model(5)


@pytest.mark.parametrize("K", diffusion.SHIPPED_K)
def test_shipped_weights_load(K):
    net = diffusion.load_model(K)
    assert bool(jnp.all(jnp.isfinite(net(jnp.array([1.0, 0.0]), 0.1))))


def test_trainer_in_miniature(tmp_path, capsys):
    diffusion_train.main(["--out", str(tmp_path), "--sizes", "2", "--steps", "400", "--chunk", "200",
                          "--samples", "16"])
    out = capsys.readouterr().out
    assert (tmp_path / "circle_K2.eqx").exists()
    first, last = (float(v) for v in out.split("loss ")[1].split(";")[0].split(" -> "))
    assert last < first
    assert "ang_nn_ratio" in out and "total training time" in out


# ---- bad input ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("call, name", [
    (lambda: diffusion.dm_energy(MEM, MEM[0], t=0.0), "t"),
    (lambda: diffusion.dm_energy(MEM, MEM[0], t=1.5), "t"),
    (lambda: diffusion.dm_energy(MEM, MEM[0], t=0.5, sigma=0.0), "sigma"),
    (lambda: diffusion.dm_energy(MEM, MEM[0], t=0.5, sigma=-1.0), "sigma"),
    (lambda: diffusion.dm_energy(MEM, np.zeros(3), t=0.5), "x"),
    (lambda: diffusion.dm_energy(np.zeros((0, 2)), MEM[0], t=0.5), "memories"),
    (lambda: diffusion.am_energy(MEM, np.array([np.nan, 0.0]), beta=1.0), "x"),
    (lambda: diffusion.am_energy(np.array([[np.inf, 0.0]]), MEM[0], beta=1.0), "memories"),
    (lambda: diffusion.am_energy(MEM, MEM[0], beta=0.0), "beta"),
    (lambda: diffusion.circle_energy(np.array([-0.1]), beta=1.0), "R"),
    (lambda: diffusion.train(np.zeros((0, 2)), key=KEY, steps=1), "data"),
    (lambda: diffusion.train(np.array([[np.nan, 0.0]]), key=KEY, steps=1), "data"),
    (lambda: diffusion.ray_energy(small_net(), np.zeros((2, 3)), t=0.1), "points"),
    (lambda: diffusion.ray_energy(small_net(), np.zeros((2, 2)), t=2.0), "t"),
    (lambda: diffusion.flow_energy(small_net(), np.zeros((2, 2)), np.zeros((3, 3)), t=0.1), "memories"),
    (lambda: diffusion.sample("net", key=KEY), "model"),
    (lambda: diffusion.circle_data(0), "num_points"),
])
def test_bad_input_is_refused_naming_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=rf"\b{name}\b"):
        call()


def test_energy_minima_runs_on_the_hamux_core(monkeypatch):
    calls = []
    real = hamux.descend

    def spy(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hamux, "descend", spy)
    jax.clear_caches()
    diffusion.energy_minima(MEM, MEM + 0.01, beta=2.0, steps=7)
    assert calls, "energy_minima must descend with amtutor.hamux.descend"
