"""Train the shipped circle score models: ``python -m amtutor.diffusion_train [--out DIR]``.

For K = 2, 9 and 1000 points on the unit circle (:func:`amtutor.diffusion.circle_data`, seed 6)
this trains a :class:`~amtutor.diffusion.ScoreNet` with the recipes of
:data:`amtutor.diffusion.RECIPES`, writes the EMA weights to ``amtutor/weights/circle_K{K}.eqx``
(or ``--out``), samples 1,500 points with the chapter's Tweedie-ending sampler and prints the
regime metrics (:func:`amtutor.diffusion.regime_metrics`) and the training time of each model.
"""

from __future__ import annotations

import argparse
import pathlib
import time

import jax

from . import diffusion

__all__ = ["main"]


def main(argv=None) -> dict:
    """Run the training (arguments as on the command line); returns ``{K: RegimeMetrics}``."""
    parser = argparse.ArgumentParser(prog="python -m amtutor.diffusion_train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=diffusion.WEIGHTS, help="folder for the weights")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(diffusion.SHIPPED_K), help="values of K")
    parser.add_argument("--steps", type=int, default=None, help="override every recipe's number of steps")
    parser.add_argument("--chunk", type=int, default=1000, help="steps per lax.scan chunk")
    parser.add_argument("--seed", type=int, default=diffusion.TRAIN_SEED, help="training seed")
    parser.add_argument("--samples", type=int, default=1500, help="samples for the metrics (0: none)")
    args = parser.parse_args(argv)
    results = {}
    total = 0.0
    for K in args.sizes:
        recipe = dict(diffusion.RECIPES.get(K, diffusion.RECIPES[1000]))
        if args.steps is not None:
            recipe["steps"] = args.steps
        chunk = min(args.chunk, recipe["steps"])
        data = diffusion.circle_data(K)
        start = time.perf_counter()
        run = diffusion.train(data, key=jax.random.key(args.seed), chunk=chunk, **recipe)
        jax.block_until_ready(run.ema)
        seconds = time.perf_counter() - start
        total += seconds
        path = diffusion.save_model(run.ema, args.out / f"circle_K{K}.eqx")
        line = (f"K = {K}: {recipe['steps']} steps, lr {recipe['lr']:g}, EMA {recipe['ema']:g}: "
                f"{seconds:.1f} s; loss {float(run.losses[0]):.3f} -> {float(run.losses[-1]):.3f}; {path}")
        if args.samples:
            x = diffusion.sample(run.ema, key=jax.random.key(1), num=args.samples)
            m = diffusion.regime_metrics(x, data)
            results[K] = m
            line += (f"\n   ang_nn_ratio {m.ang_nn_ratio:.3f}, coverage {m.coverage:.3f}, "
                     f"off-memory {m.off_memory:.3f}, mean |R-1| {m.radius_error:.3f}")
        print(line, flush=True)
    print(f"total training time {total:.1f} s")
    return results


if __name__ == "__main__":
    main()
