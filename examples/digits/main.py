"""Trains a small neural network to recognise handwritten digits, epoch by epoch.

The data is scikit-learn's bundled digits data set (1797 images of 8x8 pixels), so the job
needs no download. Each epoch logs the training loss and the validation loss and accuracy;
at the end a confusion matrix of the validation set is saved as an image artifact.

Runs in the default Atlas worker (atlas-ce/worker:latest), which has scikit-learn and
matplotlib preinstalled:

    foundations submit scheduler . main.py

Parameters come from foundations.load_parameters() (search.py submits several sets); those
not given keep the defaults below.
"""
import foundations
import matplotlib

matplotlib.use("Agg")  # no display in a worker
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

DEFAULTS = {
    "hidden_layer_size": 64,
    "learning_rate": 0.001,
    "alpha": 0.0001,  # L2 penalty
    "batch_size": 64,
    "epochs": 20,
    "seed": 0,
}

params = {**DEFAULTS, **foundations.load_parameters()}
foundations.log_params(params)  # the defaults too, so every job shows its full set

digits = load_digits()
x_train, x_val, y_train, y_val = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.25, stratify=digits.target, random_state=params["seed"])
classes = np.unique(digits.target)

model = MLPClassifier(
    hidden_layer_sizes=(params["hidden_layer_size"],),
    learning_rate_init=params["learning_rate"],
    alpha=params["alpha"],
    batch_size=params["batch_size"],
    random_state=params["seed"],
)
for epoch in range(1, params["epochs"] + 1):
    model.partial_fit(x_train, y_train, classes=classes)  # one pass over the training set
    val_loss = log_loss(y_val, model.predict_proba(x_val), labels=classes)
    val_accuracy = accuracy_score(y_val, model.predict(x_val))
    foundations.log_metric("train_loss", model.loss_)
    foundations.log_metric("val_loss", val_loss)
    foundations.log_metric("val_accuracy", val_accuracy)
    print(f"epoch {epoch}/{params['epochs']}: train loss {model.loss_:.4f}, "
          f"val loss {val_loss:.4f}, val accuracy {val_accuracy:.4f}")

fig, ax = plt.subplots(figsize=(6, 6))
ConfusionMatrixDisplay.from_predictions(y_val, model.predict(x_val), ax=ax, colorbar=False, cmap="Blues")
ax.set_title(f"Validation accuracy {val_accuracy:.3f}")
fig.savefig("confusion_matrix.png", dpi=100, bbox_inches="tight")
foundations.save_artifact("confusion_matrix.png", "confusion_matrix")
foundations.set_tag("model", "mlp")
