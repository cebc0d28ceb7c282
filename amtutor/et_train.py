"""Train the Energy Transformer that inpaints the chapter's photographs, and write its weights.

    python -m amtutor.et_train                  # the shipped model: ~10 min on a 2-core CPU
    python -m amtutor.et_train --steps 20 --out /tmp/et.npz   # a quick check
    python -m amtutor.et_train --dim 256 --heads 8 --num-memories 1024 --batch 128   # a bigger model, for a GPU

The recipe (measured on a 2-core CPU): random 32×32 crops, mirrored at random, of the 18 training
photographs; 4×4 patches (64 tokens of 16 pixels); half the patches hidden at random; loss = MSE on
the hidden patches after T = 12 descent steps of α = 0.1; Adam with a cosine decay of the learning
rate from 3e-3 to 3e-4; batch 32. The held-out photographs are never seen. The script prints the
held-out masked-patch errors of the model and of the baselines, and stores them with the weights.
"""

from __future__ import annotations

import argparse
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import et
from .data import TRAIN_PHOTOGRAPHS, photographs, random_crops
from .validation import check_int, check_key, check_positive, check_probability

__all__ = ["trainable", "train"]


def trainable(model: et.ImageET):
    """Filter spec: every array of the model except the layer's τ and the attention's β (fixed at
    1 and 1/√Y: the step size is α and the temperature is the architecture's)."""
    if not isinstance(model, et.ImageET):
        raise TypeError(f"model must be an ImageET (amtutor.et.init_image_et), got {type(model).__name__}")
    spec = jax.tree_util.tree_map(eqx.is_inexact_array, model)
    return eqx.tree_at(lambda m: (m.graph.layers[et.TOKENS].tau, m.graph.synapses["attention"].beta), spec,
                       (False, False))


def _loss(params, static, images, masks, normalised):
    """(training loss, masked-patch MSE in pixels). With ``normalised`` each crop's squared errors are
    divided by its visible pixels' variance, so low- and high-contrast crops weigh alike."""
    model = eqx.combine(params, static)

    def one(image, mask):
        filled, (_, std) = model.inpaint(image, mask)
        err = (et.patchify(filled, model.patch) - et.patchify(image, model.patch)) ** 2
        hidden = mask[:, None] * jnp.ones_like(err)
        return jnp.sum(err * hidden), jnp.sum(err * hidden) / std**2, jnp.sum(hidden)

    pixel, scaled, count = jax.vmap(one)(images, masks)
    mse = jnp.sum(pixel) / jnp.maximum(jnp.sum(count), 1.0)
    return (jnp.sum(scaled) / jnp.maximum(jnp.sum(count), 1.0) if normalised else mse), mse


def train(model: et.ImageET, *, steps: int, batch: int = 32, lr: float = 3e-3, final_lr: float = 3e-4,
          ratio: float = 0.5, key, log_every: int = 100, log=print, batches=None, normalised_loss: bool = True):
    """Adam with a cosine-decayed learning rate on fresh random crops of the training photographs and
    fresh masks every step (or on ``batches(step) -> (crops, masks)`` when given). The loss is the
    hidden patches' squared error, each crop scaled by its visible variance (``normalised_loss``) or in
    pixels. Returns ``(model, losses)`` with the pixel MSE of every batch."""
    if not isinstance(model, et.ImageET):
        raise TypeError(f"model must be an ImageET (amtutor.et.init_image_et), got {type(model).__name__}")
    steps = check_int("steps", steps, minimum=1)
    batch = check_int("batch", batch, minimum=1)
    log_every = check_int("log_every", log_every, minimum=1)
    lr, final_lr = check_positive("lr", lr), check_positive("final_lr", final_lr)
    ratio = float(check_probability("ratio", ratio))
    check_key("key", key)
    if log is not None and not callable(log):
        raise TypeError(f"log must be a function of one string (e.g. print) or None, got {log!r}")
    if not isinstance(normalised_loss, bool):
        raise TypeError(f"normalised_loss must be True or False, got {normalised_loss!r}")
    if batches is not None and not callable(batches):
        raise TypeError(f"batches must be a function step -> (crops, masks) or None, got {batches!r}")
    images = [photographs(TRAIN_PHOTOGRAPHS)[n] for n in TRAIN_PHOTOGRAPHS]
    params, static = eqx.partition(model, trainable(model))
    schedule = optax.cosine_decay_schedule(lr, steps, alpha=final_lr / lr)
    optimiser = optax.adam(schedule)
    state = optimiser.init(params)

    @eqx.filter_jit
    def step(params, state, crops, masks):
        (_, mse), grads = eqx.filter_value_and_grad(_loss, has_aux=True)(params, static, crops, masks,
                                                                          normalised_loss)
        updates, state = optimiser.update(grads, state, params)
        return eqx.apply_updates(params, updates), state, mse

    losses, baselines, start = [], [], time.time()
    n = model.num_patches
    for i in range(steps):
        key, k_crop, k_mask = jax.random.split(key, 3)
        if batches is None:
            crops = random_crops(images, model.side, batch, key=k_crop, flip=True)
            masks = et.random_patch_masks(n, ratio, key=k_mask, count=batch)
        else:
            crops, masks = batches(i)
        params, state, loss = step(params, state, crops, masks)
        losses.append(float(loss))
        if log:
            # the batch's mean-fill error: the loss alone is too noisy across random crops to read
            baselines.append(float(et.masked_mse(et.mean_fill(crops, masks, patch=model.patch), crops, masks,
                                                 patch=model.patch)))
            if (i + 1) % log_every == 0 or i == 0:
                vs_mean = np.sum(losses[-log_every:]) / np.sum(baselines[-log_every:])
                log(f"step {i + 1:5d}  loss {np.mean(losses[-log_every:]):.5f}  ({vs_mean:.3f} × mean fill)  "
                    f"{time.time() - start:6.1f} s")
    return eqx.combine(params, static), np.asarray(losses)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1300)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--final-lr", type=float, default=3e-4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=32)
    parser.add_argument("--num-memories", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-count", type=int, default=512)
    parser.add_argument("--out", default=str(et.WEIGHTS))
    parser.add_argument("--pixel-loss", action="store_true", help="train on the pixel MSE, not the normalised one")
    args = parser.parse_args(argv)
    k_init, k_train = jax.random.split(jax.random.key(args.seed))
    model = et.init_image_et(key=k_init, dim=args.dim, heads=args.heads, head_dim=args.head_dim,
                             num_memories=args.num_memories)
    print(f"device {jax.devices()[0].platform}; "
          f"{sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, trainable(model))))} parameters")
    start = time.time()
    model, losses = train(model, steps=args.steps, batch=args.batch, lr=args.lr, final_lr=args.final_lr,
                          key=k_train, normalised_loss=not args.pixel_loss)
    seconds = time.time() - start
    images, masks = et.held_out_set(count=args.test_count)
    errors = et.inpainting_errors(model, images, masks)
    for name, value in errors.items():
        print(f"held-out masked-patch MSE  {name:15s} {value:.5f}  ({value / errors['mean fill']:.2f} × mean fill)")
    et.save_image_et(args.out, model, train_seconds=seconds, train_steps=args.steps,
                     final_loss=float(np.mean(losses[-50:])),
                     **{f"mse_{k.replace(' ', '_').replace(',', '').replace('=', '')}": v for k, v in errors.items()})
    print(f"trained in {seconds:.0f} s; wrote {args.out}")
    return model, errors


if __name__ == "__main__":
    main()
