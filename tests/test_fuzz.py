"""Bad input everywhere gets a clear error, and stays that way.

The test walks every public name (``__all__``) of every ``amtutor`` module. Each callable has a
*valid example call* below (``EXAMPLES``); the test first checks that the example runs, then
replaces one argument at a time by each value of a battery of bad inputs chosen from the type of
the valid value (NaN, ±inf, wrong ndim, an empty array, a non-±1 array, mismatched sizes, a
string, ``None``, a batched PRNG key, numbers ≤ 0, non-integers, ...). Acceptable outcomes:

* a ``ValueError``/``TypeError`` whose message names the argument (the public-API promise);
* a normal return with every number finite, for a value that may be valid in that place
  (``-1.0`` is a fine ``t0``); values that are never valid (NaN, strings, wrong ndim, ...) must be
  refused, unless ``ACCEPTED`` below says why the function may take them.

Anything else fails: another exception type (a JAX trace, an ``OverflowError``), an error that
does not name the argument, or a NaN/inf in the result (unless ``NONFINITE_OK`` documents it as
the mathematically right answer). A new public function fails the test until it gets an
example, so new modules are covered as soon as they export something.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import amtutor


# ---- which names are fuzzed ---------------------------------------------------------------------

MODULES = sorted(m.name for m in pkgutil.iter_modules(amtutor.__path__) if not m.name.startswith("_"))

# Public names that are not functions of user input: result records (NamedTuples built by the
# library), abstract bases, and the checkers themselves (amtutor.validation is tested directly in
# tests/test_package.py: its functions *are* the error messages).
NOT_FUZZED = {
    "binary.Recall", "binary.Separation", "capacity.Estimate", "retrieval.RetrievalRate",
    "hamux.Trajectory", "hamux.Synapse", "learning.Classification", "learning.TrainedMemory", "lagrangians.Lagrangian",
    "statmech.ENSEMBLES", "data.IMAGE_SIDE", "kernels.KDE_KERNELS", "kernels.KernelConstants",
    "kernels.LSRMinima", "diffusion.TrainResult", "diffusion.RegimeMetrics",
    # a command line: argparse checks its arguments (tests/test_diffusion.py runs it in miniature)
    "diffusion_train.main",
    # built by et.init_image_et (or load_image_et), which check their arguments
    "et.ImageET",
}
NOT_FUZZED_MODULES = {"validation"}

# ---- shared valid inputs (small, so that every valid call takes milliseconds) -------------------

KEY = jax.random.key(0)
K, D = 6, 16
MEM = np.sign(np.random.default_rng(0).standard_normal((K, D))).astype(np.float32)
STATE = MEM[0].copy()
STATE[:2] *= -1
REAL = np.random.default_rng(1).standard_normal(D).astype(np.float32)


def _graph():
    from amtutor import hamux, lagrangians as L

    return hamux.Graph({"x": hamux.Layer(D, L.Tanh(2.0))},
                       {"M": hamux.MemorySynapse(MEM, L.Softmax(2.0))}, [("M", "x")])


def _labelled():
    from amtutor import learning

    return learning.labelled_memory(MEM, np.arange(K) % 3, num_classes=3)


def _axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots()[1]


def _et_examples():
    import tempfile

    from amtutor import et, et_train

    model = et.init_image_et(key=KEY, side=8, patch=4, dim=8, heads=1, head_dim=2, num_memories=4, steps=2)
    w = np.ones((1, 2, 6), np.float32) * 0.3
    tokens = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    images = np.random.default_rng(3).uniform(size=(2, 8, 8)).astype(np.float32)
    masks = np.array([[True, False, True, False], [False, True, False, True]])
    out = str(Path(tempfile.mkdtemp()) / "fuzz_et.npz")
    saved = str(Path(tempfile.mkdtemp()) / "fuzz_et_saved.npz")
    et.save_image_et(saved, model)
    return {
        "et.energy_transformer": dict(num_tokens=4, Wq=w, Wk=w, memories=tokens[:3], gamma=1.0, delta=0.0,
                                      eps=1e-5, exclude_self=True, memory="relu", memory_beta=1.0),
        "et.layer_norm": dict(x=tokens, gamma=1.0, delta=0.0, eps=1e-5),
        "et.attention_energy": dict(xhat=tokens, Wq=w, Wk=w, beta=0.5, exclude_self=True),
        "et.attention_update": dict(xhat=tokens, Wq=w, Wk=w, beta=0.5, exclude_self=True),
        "et.hopfield_energy": dict(xhat=tokens, memories=tokens[:3]),
        "et.hopfield_update": dict(xhat=tokens, memories=tokens[:3]),
        "et.patchify": dict(image=images[0], patch=4),
        "et.unpatchify": dict(patches=np.ones((4, 16), np.float32), side=8),
        "et.random_patch_masks": dict(num_patches=4, ratio=0.5, key=KEY, count=2),
        "et.init_image_et": dict(key=KEY, side=8, patch=4, dim=8, heads=1, head_dim=2, num_memories=4, steps=2,
                                 alpha=0.1),
        "et.mean_fill": dict(images=images, masks=masks, patch=4),
        "et.neighbour_fill": dict(images=images, masks=masks, patch=4),
        "et.biharmonic_fill": dict(images=images, masks=masks, patch=4),
        "et.masked_mse": dict(predicted=images[::-1], images=images, masks=masks, patch=4),
        "et.held_out_set": dict(count=2, ratio=0.5, side=8, patch=4, seed=0),
        "et.inpainting_errors": dict(model=model, images=images, masks=masks, steps=1, biharmonic=True),
        "et.save_image_et": dict(path=out, model=model),
        "et.load_image_et": dict(path=saved),
        "et_train.trainable": dict(model=model),
        "et_train.train": dict(model=model, steps=1, batch=2, lr=1e-3, final_lr=1e-4, ratio=0.5, key=KEY,
                               log_every=1),
        "data.photographs": dict(names=["camera"], scale=0.5),
        "data.random_crops": dict(images=[images[0]], size=4, count=2, key=KEY, flip=True),
    }


def _kernel_examples():
    from amtutor import kernels

    feats = kernels.random_features(D, 8, key=KEY)
    trace = kernels.distributed_memory(feats, MEM, beta=0.5)
    pts = REAL[:2]
    return {
        "kernels.rbf_kernel": dict(x=REAL, y=MEM[0], beta=0.5),
        "kernels.RandomFeatures": dict(frequencies=np.ones((4, D), np.float32), phases=np.zeros(4, np.float32),
                                       kind="cos"),
        "kernels.random_features": dict(dim=D, num_features=8, key=KEY, kind="cos", spectrum="gaussian"),
        "kernels.feature_kernel": dict(features=feats, x=REAL, y=MEM[0]),
        "kernels.feature_error": dict(dim=3, num_features=8, key=KEY, pairs=4, draws=2, kind="cos"),
        "kernels.divergence": dict(memories=MEM, features=feats, queries=MEM[:2] * 0.5, beta=0.5, alpha=0.1,
                                   steps=3),
        "kernels.distributed_memory": dict(features=feats, memories=MEM, beta=0.5),
        "kernels.DistributedMemorySynapse": dict(features=feats, trace=trace, beta=0.5, floor=1e-10),
        "kernels.distributed_graph": dict(features=feats, trace=trace, beta=0.5, floor=1e-10),
        "kernels.lse_graph": dict(memories=MEM, beta=0.5),
        "kernels.lse_energy": dict(memories=MEM, v=REAL, beta=0.5),
        "kernels.distributed_energy": dict(features=feats, trace=trace, v=REAL, beta=0.5, floor=1e-10),
        "kernels.kernel_sum_estimate": dict(features=feats, trace=trace, v=REAL, beta=0.5),
        "kernels.descent": dict(graph=kernels.lse_graph(MEM, beta=0.5), queries=MEM[:2] * 0.5, alpha=0.1,
                                steps=3),
        "kernels.drdam_step_limit": dict(num_memories=K, beta=0.5, steps=3, c2=0.5),
        "kernels.drdam_bound": dict(energy=REAL[:3], beta=0.5, c1=1.0, c2=0.5),
        "kernels.kernel_constants": dict(kernel="quartic"),
        "kernels.kernel_efficiency": dict(kernel="quartic"),
        "kernels.kde": dict(sample=REAL, points=pts, kernel="quartic", bandwidth=0.5),
        "kernels.optimal_bandwidth": dict(kernel="quartic", num_samples=100, roughness=0.2),
        "kernels.lsr_energy": dict(memories=MEM[:, :2] * 0.3, v=pts, beta=0.5),
        "kernels.lsr_step": dict(memories=MEM[:, :2] * 0.3, v=pts, beta=0.5),
        "kernels.lsr_minima": dict(memories=MEM[:, :2] * 0.3, beta=0.5, max_memories=8),
        "kernels.grid_minima": dict(energies=np.add.outer(np.arange(-3.0, 4.0) ** 2, np.arange(-3.0, 4.0) ** 2)),
        "kernels.count_grid_minima": dict(energies=np.add.outer(np.arange(-3.0, 4.0) ** 2, np.arange(-3.0, 4.0) ** 2)),
    }


def _diffusion_examples():
    from amtutor import diffusion

    net = diffusion.ScoreNet(key=KEY, embed_dim=8, hidden=8)
    pts = np.array([[1.0, 0.0], [0.0, 1.0], [-0.6, 0.7]], np.float32)
    radii = np.array([0.5, 1.0], np.float32)
    return {
        "diffusion.beta_of_time": dict(t=0.1, sigma=1.0),
        "diffusion.marginal_std": dict(t=0.1, sigma=1.0),
        "diffusion.dm_energy": dict(memories=pts, x=pts[:2] * 0.5, t=0.1, sigma=1.0),
        "diffusion.am_energy": dict(memories=pts, x=pts[:2] * 0.5, beta=2.0),
        "diffusion.two_memory_curvature": dict(beta=2.0, distance=0.5),
        "diffusion.energy_minima": dict(memories=pts, starts=pts * 0.9, beta=2.0, steps=5, tol=1e-3),
        "diffusion.circle_data": dict(num_points=5, key=KEY, equispaced=False),
        "diffusion.circle_energy": dict(R=radii, beta=2.0),
        "diffusion.circle_score": dict(R=radii, beta=2.0),
        "diffusion.circle_minimum": dict(beta=2.0),
        "diffusion.ScoreNet": dict(key=KEY, dim=2, embed_dim=8, scale=16.0, hidden=8, sigma=1.0),
        "diffusion.dsm_loss": dict(model=net, x0=pts, key=KEY, eps=1e-5),
        "diffusion.train": dict(data=pts, key=KEY, steps=2, lr=1e-3, ema=0.9, batch=2, chunk=1, eps=1e-5,
                                model=net),
        "diffusion.sample": dict(model=net, key=KEY, num=3, steps=4, sampler="tweedie", eps=1e-5),
        "diffusion.ray_energy": dict(model=net, points=pts, t=0.15, nodes=4),
        "diffusion.flow_energy": dict(model=net, points=pts, memories=pts, t=0.5, steps=2),
        "diffusion.regime_metrics": dict(samples=pts, memories=pts, bins=4, off_angle=0.2, on_circle=0.2),
        "diffusion.save_model": dict(model=net, path=_tmp_weights()),
        "diffusion.load_model": dict(num_memories=2),
    }


def _tmp_weights():
    import tempfile

    return str(Path(tempfile.mkdtemp()) / "fuzz.eqx")


def _ml_examples():
    from amtutor import learning

    x = REAL.reshape(4, 4)
    labels = np.array([0, 1, 2, 1])
    pairs = learning.labelled_pairs(x, labels, num_classes=3)
    centres, points = MEM[:3, :2] * 0.5, REAL.reshape(8, 2)
    options = dict(beta=2.0, eta=0.1, steps=3)
    return {
        "learning.GeneralMemorySynapse": dict(memories=MEM, beta=0.5, similarity="dot", separation=2,
                                              scaling="identity"),
        "learning.memory_graph": dict(memories=MEM, beta=0.5, similarity="negative_squared_distance",
                                      separation="exp", scaling="log"),
        "learning.memory_energy": dict(memories=MEM, v=REAL, beta=0.5, similarity="dot", separation="exp",
                                       scaling="log"),
        "learning.clamped_descent": dict(graph=learning.memory_graph(MEM, beta=0.5), v=REAL, eta=0.1, steps=3,
                                         mask=np.arange(D) % 2 == 0),
        "learning.supervised_mask": dict(num_features=4, num_classes=3, given="x"),
        "learning.labelled_pairs": dict(x=x, labels=labels, num_classes=3),
        "learning.am_predict": dict(memories=pairs, x=x, num_classes=3, **options),
        "learning.am_classify": dict(memories=pairs, x=x, num_classes=3, **options),
        "learning.initial_prototypes": dict(x=x, labels=labels, num_classes=3, num_prototypes=3, key=KEY),
        "learning.train_classifier": dict(x=x, labels=labels, num_classes=3, num_prototypes=3, key=KEY,
                                          iterations=2, learning_rate=0.01, regularization=1e-4, **options),
        "learning.clam_graph": dict(centres=centres, beta=2.0),
        "learning.clam_energy": dict(centres=centres, points=points, beta=2.0),
        "learning.clam_descent": dict(centres=centres, points=points, **options),
        "learning.clam_loss": dict(centres=centres, points=points, **options),
        "learning.masked_clam_loss": dict(centres=centres, points=points, key=KEY, mask_fraction=0.3, **options),
        "learning.train_clam": dict(points=points, num_clusters=3, key=KEY, iterations=2, learning_rate=0.05,
                                    masked=True, mask_fraction=0.3, **options),
        "learning.basin_assignment": dict(centres=centres, points=points, **options),
        "learning.voronoi_assignment": dict(centres=centres, points=points),
        "learning.kmeans_objective": dict(centres=centres, points=points),
    }


def EXAMPLES():  # noqa: N802 - a table, built lazily so that collection stays cheap
    from amtutor import binary, hamux, lagrangians as L, learning

    sep = binary.power(3)
    graph = _graph()
    labelled = _labelled()
    return {
        # data
        "data.binary_patterns": dict(num_patterns=3, dim=D, key=KEY),
        "data.gaussian_patterns": dict(num_patterns=3, dim=D, key=KEY),
        "data.spherical_patterns": dict(num_patterns=3, dim=D, key=KEY),
        "data.flip_bits": dict(pattern=STATE, flip_fraction=0.25, key=KEY),
        "data.glyph_images": dict(dtype=jnp.float32),
        "data.glyph_labels": dict(),
        "data.digit_images": dict(upscale=1, dtype=jnp.float32),
        # binary
        "binary.Quadratic": dict(),
        "binary.Power": dict(n=3),
        "binary.RectifiedPower": dict(n=3),
        "binary.Exponential": dict(beta=0.5),
        "binary.LogSumExp": dict(beta=0.5),
        "binary.SumOf": dict(function=jnp.square, label="square"),
        "binary.quadratic": dict(),
        "binary.power": dict(n=3),
        "binary.rectified_power": dict(n=3),
        "binary.exponential": dict(beta=0.5),
        "binary.log_sum_exp": dict(beta=0.5),
        "binary.sum_of": dict(F=jnp.square, name="square"),
        "binary.energy": dict(memories=MEM, state=STATE, separation=sep),
        "binary.overlaps": dict(memories=MEM, state=STATE),
        "binary.hebbian_weights": dict(memories=MEM),
        "binary.hopfield_energy": dict(weights=MEM.T @ MEM, state=STATE),
        "binary.site_order": dict(key=KEY, steps=2 * D, dim=D),
        "binary.async_recall": dict(memories=MEM, query=STATE, separation=sep, key=KEY, sweeps=2),
        "binary.async_recall_in_order": dict(memories=MEM, query=STATE, separation=sep,
                                             order=np.arange(D)),
        "binary.sync_update": dict(memories=MEM, state=STATE, separation=sep),
        "binary.sync_recall": dict(memories=MEM, state=STATE, separation=sep, steps=3),
        "binary.is_fixed_point": dict(memories=MEM, state=STATE, separation=sep),
        # capacity
        "capacity.largest_k": dict(is_success=lambda k: k < 7, k_min=1, k_max=20),
        "capacity.double_factorial": dict(k=7),
        "capacity.signal": dict(dim=100, n=3),
        "capacity.noise_variance": dict(num_memories=50, dim=100, n=3),
        "capacity.overlap_moment": dict(dim=100, order=4),
        "capacity.overlap_moment_leading": dict(dim=100, p=2),
        "capacity.exact_noise_variance": dict(num_memories=50, dim=100, n=3),
        "capacity.gaussian_error_probability": dict(num_memories=50, dim=100, n=3),
        "capacity.exact_error_probability": dict(num_memories=20, dim=30, n=3),
        "capacity.moment_matched_error_probability": dict(num_memories=20, dim=30, n=3),
        "capacity.epsilon_for_error_rate": dict(error_rate=0.01),
        "capacity.k_max": dict(dim=100, n=3, epsilon=2.326),
        "capacity.k_max_no_flips": dict(dim=100, n=3),
        "capacity.crosstalk_noise": dict(memories=MEM, n=3),
        "capacity.aligned_fields": dict(memories=MEM, n=3),
        "capacity.measured_noise_variance": dict(num_memories=8, dim=D, n=3, key=KEY, trials=2),
        "capacity.measured_error_probability": dict(num_memories=8, dim=D, n=3, key=KEY, trials=2),
        "capacity.measured_capacity": dict(dim=D, n=2, key=KEY, num_bits=2000, k_range=(2, 8)),
        "capacity.fit_loglog_slope": dict(x=[1.0, 2.0, 4.0], y=[1.0, 4.1, 15.9]),
        # retrieval
        "retrieval.retrieval_rate": dict(pool=MEM, num_memories=3, separation=sep, flip_fraction=0.1,
                                         draws=2, key=KEY, sweeps=1),
        "retrieval.retrieved_exactly": dict(memories=MEM, separation=sep, flip_fraction=0.1, key=KEY,
                                            probes=2, sweeps=1),
        "retrieval.basin_curve": dict(memories=MEM, separation=sep, flip_fractions=[0.0, 0.1], key=KEY,
                                      probes=2, sweeps=1),
        "retrieval.empirical_capacity": dict(separation=sep, dim=D, key=KEY, k_max=8, probes=4),
        "retrieval.predicted_capacity": dict(n=3, dim=100),
        # statmech
        "statmech.check_ensemble": dict(ensemble="gaussian"),
        "statmech.rate_function": dict(q=0.5, ensemble="spherical"),
        "statmech.cumulant": dict(lam=0.5, ensemble="gaussian"),
        "statmech.tilted_overlap": dict(lam=0.5, ensemble="gaussian"),
        "statmech.max_overlap": dict(alpha=0.1, ensemble="spherical"),
        "statmech.rem_free_energy": dict(lam=0.5, alpha=0.1, ensemble="gaussian"),
        "statmech.rem_objective": dict(q=0.5, lam=0.5, alpha=0.1, ensemble="gaussian"),
        "statmech.is_condensed": dict(lam=0.5, alpha=0.1, ensemble="gaussian"),
        "statmech.alpha_1": dict(lam=0.5, ensemble="gaussian"),
        "statmech.alpha_1_numerical": dict(lam=0.5, ensemble="gaussian"),
        "statmech.condensation_alpha": dict(lam=0.5, ensemble="gaussian"),
        "statmech.condensation_lambda": dict(alpha=0.1, ensemble="gaussian"),
        "statmech.gaussian_norm_rate": dict(rho=1.2),
        "statmech.gaussian_alpha_c": dict(lam=0.5),
        "statmech.basin_cos_min": dict(lam=0.5, alpha=0.05, ensemble="spherical", rho=1.0),
        "statmech.num_patterns": dict(alpha=0.1, dim=20, per_pattern=0),
        "statmech.crossing_point": dict(x=[0.1, 0.2, 0.3], success=[0.9, 0.5, 0.1], level=0.5),
        "statmech.crossing_error": dict(x=[0.1, 0.2, 0.3], success=[0.9, 0.5, 0.1], trials=20,
                                        level=0.5, seed=0, resamples=20),
        "statmech.gaussian_failing_norm": dict(lam=0.5, alpha=0.1),
        "statmech.gaussian_target_success": dict(lam=0.5, alpha=0.1, dim=20),
        # statmech_sims
        "statmech_sims.lse_memory": dict(memories=MEM, lam=0.5),
        "statmech_sims.lse_energy": dict(memories=MEM, state=REAL, lam=0.5),
        "statmech_sims.lse_update": dict(memories=MEM, state=REAL, lam=0.5),
        "statmech_sims.rem_success": dict(lam=0.5, alpha=0.1, dim=D, ensemble="gaussian", trials=4, key=KEY),
        "statmech_sims.retrieval_overlaps": dict(lam=0.5, alpha=0.1, dim=D, ensemble="gaussian", trials=2,
                                                 key=KEY, targets_per_set=2, max_steps=3),
        "statmech_sims.retrieval_success": dict(lam=0.5, alpha=0.1, dim=D, ensemble="gaussian", trials=2,
                                                key=KEY, threshold=0.9),
        "statmech_sims.success_curve": dict(experiment=_sims().rem_success, lam=0.5, alphas=[0.1, 0.2],
                                            dim=D, key=KEY, ensemble="gaussian", trials=4),
        "statmech_sims.all_patterns_success": dict(lam=0.5, alpha=0.1, dim=D, ensemble="gaussian",
                                                   trials=2, key=KEY),
        "statmech_sims.one_step_success": dict(lam=0.5, alpha=0.1, dim=D, cos_theta=np.array([0.9]),
                                               ensemble="gaussian", trials=2, key=KEY, targets_per_set=2),
        # lagrangians
        "lagrangians.Identity": dict(),
        "lagrangians.ReLU": dict(),
        "lagrangians.RectifiedPower": dict(n=3),
        "lagrangians.Sigmoid": dict(beta=2.0),
        "lagrangians.Tanh": dict(beta=2.0),
        "lagrangians.Exponential": dict(beta=2.0),
        "lagrangians.Softmax": dict(beta=2.0, axis=-1),
        "lagrangians.LayerNorm": dict(gamma=1.0, delta=0.0, eps=1e-5, axis=-1),
        "lagrangians.SphericalNorm": dict(gamma=1.0, eps=1e-5, axis=-1),
        "lagrangians.neuron_energy": dict(lagrangian=L.Tanh(2.0), xhat=np.tanh(2 * REAL), x=REAL),
        "lagrangians.log_sum_exp": dict(z=REAL, beta=2.0, axis=-1),
        # hamux
        "hamux.Layer": dict(shape=D, lagrangian=L.Tanh(2.0), tau=1.0),
        "hamux.DenseSynapse": dict(W=MEM[:, :D].T @ MEM[:, :D] / D),
        "hamux.BiasSynapse": dict(b=REAL),
        "hamux.MemorySynapse": dict(memories=MEM, separation=L.Softmax(2.0), similarity="dot"),
        "hamux.dot_similarity": dict(memories=MEM, xhat=REAL),
        "hamux.negative_squared_distance": dict(memories=MEM, xhat=REAL),
        "hamux.AttentionSynapse": dict(Wq=MEM[None, :2], Wk=MEM[None, 2:4], beta=1.0),
        "hamux.ConvSynapse": dict(W=np.ones((3, 3, 1, 2), np.float32), strides=(1, 1), padding="SAME"),
        "hamux.FunctionSynapse": dict(fn=lambda x: -jnp.sum(x**2)),
        "hamux.Graph": dict(layers={"x": hamux.Layer(D, L.Tanh(2.0))},
                            synapses={"M": hamux.MemorySynapse(MEM, L.Softmax(2.0))},
                            connections=[("M", "x")]),
        "hamux.descend": dict(graph=graph, xs={"x": REAL}, dt=0.1, steps=5),
        "hamux.solve": dict(graph=graph, xs={"x": REAL}, t1=1.0, saves=3),
        "hamux.state_energy_graph": dict(shape=D, synapses={"M": hamux.MemorySynapse(MEM, L.Softmax(2.0))}),
        # kernels
        **_kernel_examples(),
        **_et_examples(),
        # diffusion
        **_diffusion_examples(),
        # continuous
        "continuous.tanh_memory": dict(memories=MEM, separation=sep, beta=0.5),
        "continuous.tanh_energy": dict(memories=MEM, x=REAL, separation=sep, beta=0.5),
        "continuous.input_current": dict(memories=MEM, activations=np.tanh(REAL), separation=sep),
        "continuous.tanh_descent": dict(memories=MEM, x0=REAL, separation=sep, beta=0.5, steps=5),
        "continuous.tanh_ode": dict(memories=MEM, x0=REAL, separation=sep, beta=0.5, t1=1.0, saves=3),
        # learning
        "learning.labelled_memory": dict(images=MEM, labels=np.arange(K) % 3, num_classes=3),
        "learning.clamped_state": dict(graph=labelled, image=STATE),
        "learning.classify": dict(graph=labelled, image=STATE, steps=5),
        "learning.label_energies": dict(graph=labelled, image=STATE, steps=5),
        "learning.classify_by_energy": dict(graph=labelled, image=STATE, steps=5),
        "learning.generate": dict(graph=labelled, label=1, key=KEY, steps=5),
        **_ml_examples(),
        # plot (matplotlib objects are returned; the checks are about the inputs)
        "plot.show_image": dict(ax=_axes(), image=MEM[0], side=4),
        "plot.image_grid": dict(images=MEM, ncols=3, side=4),
        "plot.recall_figure": dict(snapshots=MEM[:3], energies=np.array([-3.0, -4.0, -5.0])),
        "plot.draw_graph": dict(graph=graph),
        # page helpers
        "widgets.interact": dict(plot_function=lambda beta: None, beta=(0.5, 2.0)),
        "book.glue": dict(name="fuzz_example", value=1.0),
        "book.markdown_table": dict(header=["kernel", "efficiency"], rows=[("gaussian", 95.1)],
                                    formats=[None, ".1f"]),
    }


def _sims():
    from amtutor import statmech_sims

    return statmech_sims


# ---- what may legitimately come out ----------------------------------------------------------------

# (name, argument, kind) -> why a non-finite number in the result is the right answer.
NONFINITE_OK = {
    ("statmech.rate_function", "q", "one"): "I(1) = +inf: an overlap of 1 is impossible (documented)",
    ("statmech.rate_function", "q", "negative"): "I(-1) = +inf, as I(1) (documented: inf for |q| >= 1)",
    # documented: -inf where no competitor has overlap q (q = ±1 here, or alpha = 0: one pattern)
    **{("statmech.rem_objective", a, k): "-inf where alpha - I(q) < 0 (documented, for plots)"
       for a, k in [("q", "negative"), ("q", "ndim+"), ("alpha", "zero")]},
    # a success curve never crosses level 0 from above: NaN is documented as "never crosses"
    ("statmech.crossing_point", "level", "zero"): "NaN = the curve never crosses (documented)",
    ("statmech.crossing_error", "level", "zero"): "NaN = no redrawn curve crosses (documented)",
}

# (name, argument, kind) -> why a never-valid-looking value is accepted.
ACCEPTED = {
    **{(f"kernels.{f}", "energies", "inf"): "+inf marks points no memory supports (log-sum-ReLU)"
       for f in ("grid_minima", "count_grid_minima")},
    # book.glue stores any Python object for the page (strings, None and arrays included).
    **{("book.glue", "value", k): "glue stores any value" for k in ("str", "none", "nan", "inf", "ndim+",
                                                                    "ndim-", "empty", "list")},
    ("book.glue", "value", "complex"): "glue stores any value",
    # widgets.interact forwards controls to ipywidgets: a string makes a text box.
    ("widgets.interact", "beta", "str"): "ipywidgets turns a string into a Text control",
    # dtype=None is NumPy's and JAX's spelling of "the default dtype".
    ("data.glyph_images", "dtype", "none"): "None means the default float dtype",
    ("data.digit_images", "dtype", "none"): "None means the default float dtype",
    # probes=None means every stored pattern (documented default-like value; the default is 100).
    ("retrieval.basin_curve", "probes", "none"): "None queries every stored pattern (documented)",
    # an energy curve may be empty or hold ±inf (drawn off the axes): documented in plot._values.
    ("plot.recall_figure", "energies", "empty"): "an empty energy curve draws empty axes",
    ("plot.recall_figure", "energies", "inf"): "±inf energies are drawn off the axes (documented)",
}


# ---- the battery -------------------------------------------------------------------------------

# Values no function should take. Others (0, -1, 1.5, an extra or a missing axis, a shorter
# array) are valid in some places, so there they only have to give a finite result or a clear error.
NEVER_VALID = {"nan", "inf", "str", "none", "empty", "batched_key", "int_key", "complex",
               "not_callable", "unknown", "number"}
# Modules whose arrays are ±1 patterns, so a non-±1 array is never valid there.
PM1_MODULES = {"binary", "capacity", "retrieval", "data"}
# Arguments that hold free text (any string is fine).
FREE_TEXT = {"name", "label", "title"}


def _is_key(value) -> bool:
    return isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _is_pm1(array) -> bool:
    array = np.asarray(array)
    return array.size > 0 and np.issubdtype(array.dtype, np.floating) and bool(np.all(np.abs(array) == 1))


def bad_values(name: str, value):
    """(kind, bad value) pairs for an argument whose valid value is ``value``."""
    if _is_key(value):
        return [("batched_key", jax.random.split(value, 2)), ("int_key", 0), ("none", None), ("str", "key")]
    if isinstance(value, bool):
        return [("str", "yes")]
    if isinstance(value, (int, np.integer)):
        return [("zero", 0), ("negative", -1), ("fraction", 1.5), ("str", "3"), ("none", None),
                ("nan", float("nan"))]
    if isinstance(value, (float, np.floating)):
        return [("nan", float("nan")), ("inf", float("inf")), ("zero", 0.0), ("negative", -1.0),
                ("str", "0.5"), ("none", None), ("complex", 1 + 1j), ("ndim+", [value, value])]
    if isinstance(value, str):
        return [("none", None), ("number", 3)] + ([] if name in FREE_TEXT else [("unknown", "nonsense")])
    if isinstance(value, (np.ndarray, jax.Array, list)) and not isinstance(value, dict):
        array = np.asarray(value)
        if array.dtype == object:
            return [("str", "x"), ("none", None)]
        out = [("str", "x"), ("none", None), ("ndim+", array[None]), ("empty", array[:0])]
        if array.ndim >= 1:
            out.append(("ndim-", array[0] if array.ndim > 1 else array[0].item()))
            if array.shape[-1] > 1:
                out.append(("mismatch", array[..., :-1]))
        if np.issubdtype(array.dtype, np.floating):
            nan = array.copy()
            nan.flat[0] = np.nan
            out.append(("nan", nan))
            big = array.copy()
            big.flat[0] = np.inf
            out.append(("inf", big))
            if array.dtype == np.float64:  # finite, but inf once cast to float32
                huge = array.copy()
                huge.flat[0] = 1e39
                out.append(("overflow", huge))
            if _is_pm1(array):
                out.append(("notpm1", array * 0.5))
            out.append(("complex", array.astype(np.complex64) * 1j))
        return out
    if isinstance(value, tuple):
        return [("str", "x"), ("none", None), ("empty", ())]
    if isinstance(value, dict):
        return [("str", "x"), ("none", None), ("empty", {})]
    if callable(value):
        return [("not_callable", "notfn"), ("none", None)]
    return [("str", "x"), ("none", None), ("number", 3)]


def _finite(result) -> bool:
    for leaf in jax.tree_util.tree_leaves(result):
        if isinstance(leaf, (bool, int, str, np.bool_)) or leaf is None:
            continue
        try:
            array = np.asarray(leaf)
        except Exception:  # matplotlib objects and the like
            continue
        if array.dtype.kind in "fc" and not np.all(np.isfinite(array)):
            return False
    return True


def _public_names():
    names = []
    for module_name in MODULES:
        if module_name in NOT_FUZZED_MODULES:
            continue
        module = importlib.import_module(f"amtutor.{module_name}")
        for name in getattr(module, "__all__", []):
            full = f"{module_name}.{name}"
            if full not in NOT_FUZZED and callable(getattr(module, name)):
                names.append(full)
    return names


def _resolve(full: str):
    module_name, name = full.split(".", 1)
    return getattr(importlib.import_module(f"amtutor.{module_name}"), name)


def _call(fn, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn(**kwargs)
    try:
        import matplotlib.pyplot as plt

        plt.close("all")
    except ImportError:
        pass
    return result


# ---- the tests -------------------------------------------------------------------------------------


def test_every_public_callable_has_an_example():
    missing = sorted(set(_public_names()) - set(EXAMPLES()))
    assert not missing, f"add a valid example call to tests/test_fuzz.py for: {missing}"


def test_fuzz_every_public_callable():
    examples = EXAMPLES()
    failures, counts = [], {"refused": 0, "accepted": 0}
    for full in _public_names():
        fn, example = _resolve(full), examples[full]
        _call(fn, example)  # the example itself must be valid
        defaults = _defaults(fn)
        for argument, valid in example.items():
            for kind, bad in bad_values(argument, valid):
                if kind == "none" and argument in defaults and defaults[argument] is None:
                    continue  # None is this argument's default, so it is valid
                outcome = _outcome(fn, full, example, argument, kind, bad)
                if outcome in counts:
                    counts[outcome] += 1
                else:
                    failures.append(f"{full}({argument}={kind}): {outcome}")
    print(f"\nfuzz: {counts['refused']} refused clearly, {counts['accepted']} accepted, "
          f"{len(failures)} failures")
    assert not failures, "\n".join(failures)


def _defaults(fn) -> dict:
    try:
        parameters = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}
    return {name: p.default for name, p in parameters.items() if p.default is not inspect.Parameter.empty}


def _never_valid(full: str, kind: str) -> bool:
    return kind in NEVER_VALID or (kind == "notpm1" and full.split(".")[0] in PM1_MODULES)


def _outcome(fn, full, example, argument, kind, bad) -> str:
    try:
        result = _call(fn, {**example, argument: bad})
    except (ValueError, TypeError) as error:
        message = str(error)
        # plural arguments (alphas, flip_fractions) may be named by their singular, as each
        # entry is checked on its own ("alpha * dim = ..." for one entry of alphas)
        named = argument in message or (argument.endswith("s") and argument[:-1] in message)
        if named or (argument == "xs" and "layer" in message):
            return "refused"
        return f"unclear {type(error).__name__}: {message[:160]}"
    except Exception as error:  # noqa: BLE001 - any other exception is the failure we look for
        return f"crash {type(error).__name__}: {str(error)[:160]}"
    if not _finite(result) and (full, argument, kind) not in NONFINITE_OK:
        return "silent non-finite result"
    if _never_valid(full, kind) and (full, argument, kind) not in ACCEPTED:
        return "accepted a never-valid value"
    return "accepted"
