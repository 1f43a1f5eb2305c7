"""L2-regularised logistic regression on `Sparse` rows, in pure numpy.

- `fit_logistic`: the batch fit, minimising  sum_i logloss(y_i, sigmoid(x_i.w + b + offset_i)) + l2/2 |w|^2
  (the bias is not penalised) with L-BFGS (10 pairs, backtracking Armijo line search), optionally
  warm-started; labels may be fractional scores in [0, 1]; an offset per row (e.g. a tag's prior
  log-odds) is added to the linear term and not learned.
- `OnlineLogistic`: the same model updated one outcome at a time by AdaGrad (per-coordinate steps), as a
  gateway learns from feedback between batch refits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from architect.routing.features import Sparse

__all__ = ["OnlineLogistic", "fit_logistic", "sigmoid"]

F64 = NDArray[np.float64]


def sigmoid(z: F64) -> F64:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)


def _loss_grad(theta: F64, x: Sparse, y: F64, offset: F64, l2: float) -> tuple[float, F64]:
    w, b = theta[:-1], theta[-1]
    z = x.dot(w) + b + offset
    # logloss = log(1 + e^z) - y z, computed stably
    loss = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * float(w @ w))
    r = sigmoid(z) - y
    grad = np.empty_like(theta)
    grad[:-1] = x.tdot(r) + l2 * w
    grad[-1] = r.sum()
    return loss, grad


def fit_logistic(
    x: Sparse,
    y: F64,
    l2: float = 1.0,
    offset: F64 | None = None,
    init: F64 | None = None,
    iters: int = 200,
    tol: float = 1e-6,
) -> F64:
    """The weights (last entry the bias) of a logistic regression fitted by L-BFGS. Only the columns the
    rows use are optimised (a column no row touches keeps its initial weight shrunk to 0 by the L2 term's
    minimiser, i.e. 0), which makes hashed features cheap."""
    used, remap = np.unique(x.indices, return_inverse=True)
    small = Sparse(x.indptr, remap.astype(np.int64), x.data, len(used))
    start = None if init is None else np.concatenate((init[used], init[-1:]))
    fitted = _lbfgs(small, y, l2, np.zeros(x.n) if offset is None else offset, start, iters, tol)
    theta = np.zeros(x.dim + 1)
    theta[used] = fitted[:-1]
    theta[-1] = fitted[-1]
    return theta


def _lbfgs(x: Sparse, y: F64, l2: float, off: F64, init: F64 | None, iters: int, tol: float) -> F64:
    theta = np.zeros(x.dim + 1) if init is None else init.copy()
    f, g = _loss_grad(theta, x, y, off, l2)
    s_list: list[F64] = []
    y_list: list[F64] = []
    scale0 = max(float(np.abs(y - 0.5).sum()), 1.0)
    for it in range(iters):
        # two-loop recursion
        q = g.copy()
        alphas = []
        for s, yy in zip(reversed(s_list), reversed(y_list), strict=True):
            a = float(s @ q) / float(yy @ s)
            alphas.append(a)
            q -= a * yy
        if s_list:
            q *= float(s_list[-1] @ y_list[-1]) / float(y_list[-1] @ y_list[-1])
        else:
            q /= max(float(np.linalg.norm(g)), 1e-12)
        for (s, yy), a in zip(zip(s_list, y_list, strict=True), reversed(alphas), strict=True):
            bcoef = float(yy @ q) / float(yy @ s)
            q += (a - bcoef) * s
        d = -q
        slope = float(g @ d)
        if slope >= 0:  # not a descent direction: restart from the gradient
            s_list.clear()
            y_list.clear()
            d = -g / max(float(np.linalg.norm(g)), 1e-12)
            slope = float(g @ d)
        step = 1.0
        while True:
            cand = theta + step * d
            f2, g2 = _loss_grad(cand, x, y, off, l2)
            if f2 <= f + 1e-4 * step * slope or step < 1e-10:
                break
            step *= 0.5
        s_new, y_new = cand - theta, g2 - g
        if float(s_new @ y_new) > 1e-12:
            s_list.append(s_new)
            y_list.append(y_new)
            if len(s_list) > 10:
                s_list.pop(0)
                y_list.pop(0)
        done = abs(f - f2) <= tol * max(abs(f), scale0) and it > 2
        theta, f, g = cand, f2, g2
        if done:
            break
    return theta


class OnlineLogistic:
    """Logistic regression learned one outcome at a time (AdaGrad, L2 applied on the touched columns)."""

    def __init__(self, dim: int, lr: float = 0.3, l2: float = 1e-4, init: F64 | None = None) -> None:
        self.theta = np.zeros(dim + 1) if init is None else init.copy()
        self.acc = np.full(dim + 1, 1e-2)
        self.lr = lr
        self.l2 = l2

    def predict(self, x: Sparse, offset: F64 | None = None) -> F64:
        z = x.dot(self.theta[:-1]) + self.theta[-1]
        return sigmoid(z if offset is None else z + offset)

    def update(self, idx: NDArray[np.int64], val: F64, y: float, offset: float = 0.0) -> None:
        """One AdaGrad step on one row (its columns `idx`, values `val`) with label `y`."""
        w = self.theta
        z = float(val @ w[idx]) + w[-1] + offset
        r = 0.5 * (1.0 + np.tanh(0.5 * z)) - y
        g = r * val + self.l2 * w[idx]
        self.acc[idx] += g * g
        w[idx] -= self.lr * g / np.sqrt(self.acc[idx])
        self.acc[-1] += r * r
        w[-1] -= self.lr * r / np.sqrt(self.acc[-1])
