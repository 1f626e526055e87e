"""A trial of the search benchmark: scikit-learn's digits (bundled with python3-sklearn), an
MLPClassifier trained epoch by epoch with partial_fit, validation accuracy logged after every
epoch. The data split and the weights' initialisation are fixed, so a trial's curve is a function
of its params alone. It stops when the search says so."""
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

import foundations

warnings.filterwarnings("ignore", category=ConvergenceWarning)
p = foundations.load_parameters()
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
scaler = StandardScaler().fit(X_train)
X_train, X_val = scaler.transform(X_train), scaler.transform(X_val)
clf = MLPClassifier(hidden_layer_sizes=(int(p["hidden"]),), alpha=p["alpha"], learning_rate_init=p["lr"],
                    batch_size=int(p["batch_size"]), random_state=0)
order = np.random.RandomState(0)
classes = np.arange(10)
for epoch in range(1, int(p["epochs"]) + 1):
    idx = order.permutation(len(X_train))
    clf.partial_fit(X_train[idx], y_train[idx], classes=classes)  # one pass over the data
    foundations.log_metric("val_acc", float(clf.score(X_val, y_val)), step=epoch)
    if foundations.should_stop():
        break
