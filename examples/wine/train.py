"""Train a random forest on a bundled scikit-learn dataset and log it to W&B."""

from __future__ import annotations

import argparse
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import wandb
from sklearn.datasets import load_iris, load_wine
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_score, recall_score
from sklearn.model_selection import train_test_split

DEFAULT_PROJECT = "wine-quality-dev"
HEARTBEAT_INTERVAL_S = 0.2
LOADERS = {"wine": load_wine, "iris": load_iris}
# Half the data held out and one feature per split keep the task from saturating at 100%,
# so sweeps over n_estimators / max_depth have something to find.
TEST_SIZE = 0.5
MAX_FEATURES = 1


@dataclass(frozen=True)
class Split:
    """Hold a train/test split of one dataset."""

    x_train: np.ndarray
    x_test: np.ndarray
    y_train: np.ndarray
    y_test: np.ndarray
    labels: np.ndarray


def optional_int(text: str) -> int | None:
    """Parse an int where 0, "None" or "" mean no limit (sweeps pass `--max_depth=None`)."""
    if text.strip().lower() in {"", "none", "null", "0"}:
        return None
    value = int(float(text))
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value or None


def positive_int(text: str) -> int:
    """Parse a strictly positive int, accepting "200.0" as sweep engines may send it."""
    value = int(float(text))
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def curve(text: str) -> tuple[float, ...]:
    """Parse comma-separated floats, one per step."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,0.6, got {text!r}") from None
    return values


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line the lab (or `wandb agent`) passes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=sorted(LOADERS), default="wine")
    parser.add_argument("--n_estimators", type=positive_int, default=100)
    parser.add_argument(
        "--max_depth", type=optional_int, default=None, help="0 or None: grow trees fully"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epochs", type=positive_int, default=5, help="log this many steps, growing the forest"
    )
    parser.add_argument(
        "--fail-at", type=int, default=None, help="raise RuntimeError after logging this step"
    )
    parser.add_argument(
        "--hang", action="store_true", help="after training, log a heartbeat metric forever"
    )
    parser.add_argument(
        "--stall", action="store_true", help="log a few steps, then stay alive without a new step"
    )
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds between steps")
    parser.add_argument(
        "--nan-at", type=int, default=None, help="log loss as NaN from this step on (divergence)"
    )
    parser.add_argument(
        "--curve",
        type=curve,
        default=None,
        help="log val/accuracy as these comma-separated values, one a step (sets --epochs)",
    )
    args = parser.parse_args(argv)
    if args.hang and args.stall:
        parser.error("--hang and --stall are exclusive")
    if args.curve:
        args.epochs = len(args.curve)
    return args


def shaped(metrics: dict[str, float], epoch: int, args: argparse.Namespace) -> dict[str, float]:
    """Apply the test hooks that shape what a step logs: a NaN loss, a given accuracy curve."""
    out = dict(metrics)
    if args.nan_at is not None and epoch >= args.nan_at:
        out["loss"] = out["train/loss"] = math.nan
    if args.curve:
        out["val/accuracy"] = args.curve[epoch - 1]
    return out


def load_split(dataset: str, seed: int) -> Split:
    """Load a bundled dataset and split it in half, stratified."""
    bunch = LOADERS[dataset]()
    x_train, x_test, y_train, y_test = train_test_split(
        bunch.data, bunch.target, test_size=TEST_SIZE, random_state=seed, stratify=bunch.target
    )
    return Split(x_train, x_test, y_train, y_test, np.unique(bunch.target))


def evaluate(model: RandomForestClassifier, split: Split) -> dict[str, float]:
    """Score a fitted model on the test set with macro averages and log loss."""
    predicted = model.predict(split.x_test)
    proba = model.predict_proba(split.x_test)
    macro: dict[str, Any] = {"average": "macro", "zero_division": 0}
    return {
        "accuracy": float(accuracy_score(split.y_test, predicted)),
        "precision": float(precision_score(split.y_test, predicted, **macro)),
        "recall": float(recall_score(split.y_test, predicted, **macro)),
        "f1": float(f1_score(split.y_test, predicted, **macro)),
        "loss": float(log_loss(split.y_test, proba, labels=split.labels)),
        "train_accuracy": float(model.score(split.x_train, split.y_train)),
    }


def trees_at(epoch: int, epochs: int, n_estimators: int) -> int:
    """Return how many trees the forest has after `epoch` of `epochs` (1-based)."""
    return max(1, math.ceil(n_estimators * epoch / epochs))


def main(argv: Sequence[str] | None = None) -> int:
    """Train, log each step and the final summary, then obey the test hooks."""
    args = parse_args(argv)
    project = os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT
    split = load_split(args.dataset, args.seed)
    # warm_start grows the same forest each epoch, so N epochs cost one forest of compute.
    model = RandomForestClassifier(
        n_estimators=1,
        max_depth=args.max_depth,
        max_features=MAX_FEATURES,
        random_state=args.seed,
        warm_start=True,
    )
    with wandb.init(project=project, config=vars(args)) as run:
        metrics: dict[str, float] = {}
        for epoch in range(1, args.epochs + 1):
            model.set_params(n_estimators=trees_at(epoch, args.epochs, args.n_estimators))
            model.fit(split.x_train, split.y_train)
            metrics = shaped(evaluate(model, split), epoch, args)
            run.log({"epoch": epoch, "n_trees": len(model.estimators_), **metrics})
            if args.fail_at is not None and epoch == args.fail_at:
                raise RuntimeError(f"simulated failure at step {epoch}")
            if args.sleep > 0:
                time.sleep(args.sleep)
        run.summary.update({**metrics, "n_trees": len(model.estimators_)})
        if args.hang:
            hang(run)
        if args.stall:
            stall(run)
    return 0


def stall(run: Any) -> None:
    """Stay alive without a new step: the summary changes, so W&B still hears heartbeats."""
    started = time.monotonic()
    while True:
        run.summary["alive_s"] = round(time.monotonic() - started, 1)
        time.sleep(HEARTBEAT_INTERVAL_S * 2.5)


def hang(run: Any) -> None:
    """Log a heartbeat metric every 0.2 s until stopped or killed."""
    started = time.monotonic()
    beat = 0
    while True:
        beat += 1
        run.log({"heartbeat": beat, "uptime_s": time.monotonic() - started})
        time.sleep(HEARTBEAT_INTERVAL_S)


if __name__ == "__main__":
    raise SystemExit(main())
