"""Plot a model's validation history (loss, localization error, dispersion, AUC).

Run:  python benchmarks/plot_training_history.py weights/fsaverage-brainforge.pt \
          weights/fsaverage-brainforge-history.png
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mne_brainforge.nn import BrainForgeModel  # noqa: E402

PANELS = {
    "val_loss": "validation loss (relative MSE)",
    "localization_error": "LE (mm)",
    "spatial_dispersion": "SD (mm)",
    "auc": "AUC",
}


def main(model_file, out):
    history = BrainForgeModel.load(model_file).config["training"]["history"]
    steps = [h["step"] for h in history]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.2 * len(PANELS), 2.8))
    for ax, (key, label) in zip(axes, PANELS.items()):
        ax.plot(steps, [h[key] for h in history], "o-", ms=3)
        ax.set(xlabel="training step (batch 16)", title=label)
    fig.suptitle(
        f"{Path(model_file).name}: held-out simulated data during training", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(out, dpi=100)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    main(args.model, args.out)
