"""Pareto/NBD (Schmittlein, Morrison & Colombo 1987; likelihood as derived in Fader & Hardie 2005, "A Note on
Deriving the Pareto/NBD Model and Related Expressions"): purchases Poisson(lambda) while alive, lambda ~
Gamma(r, alpha); an unobserved exponential lifetime with rate mu ~ Gamma(s, beta).

Unlike BG/NBD, a customer can drop out without a repeat purchase, so a one-time buyer's p_alive falls as
time passes without an order. Inputs per customer: x repeat purchases, t_x time of the last one and T age,
both from the first purchase, in any time unit (alpha and beta come out in the same unit).

The likelihood of a customer is
    L = G(r+x) alpha^r beta^s / G(r) * [ (alpha+T)^-(r+x) (beta+T)^-s
                                         + s * integral_{t_x}^{T} (alpha+tau)^-(r+x) (beta+tau)^-(s+1) dtau ]
(alive at T, or dead at some tau in (t_x, T)). The published closed form writes the integral with Gauss's
hypergeometric function; scipy's hyp2f1 returns nan or wrong values for many customers with many repeat
purchases or nearly homogeneous dropout (large s), so the integral is computed by Gauss-Legendre
quadrature on a variable in which the integrand is smooth (checked against adaptive quadrature to 1e-8 in
log over a wide grid, tests/predictions). The same quadrature gives the gradient, so the fit needs few
likelihood evaluations.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from rapport.predictions.mle import LOG_BOUND, FitResult, collapse, fit_with_gradient

NAMES = ("r", "alpha", "s", "beta")
# s above this is a dropout rate the same for everyone (the gamma mixing degenerates); the fit stops there
MAX_S = 1e4
_PANELS, _NODES_PER_PANEL = 6, 10
_gl_nodes, _gl_weights = np.polynomial.legendre.leggauss(_NODES_PER_PANEL)
_POSITIONS = (np.arange(_PANELS)[:, None] + (_gl_nodes[None, :] + 1) / 2).ravel()  # in panel widths
_LOG_WEIGHTS = np.log(np.tile(_gl_weights, _PANELS))
_CHUNK = 20_000  # rows per block (memory: rows x 60 nodes x a few arrays of doubles)
# blocks computed at once (each holds ~100 MB of arrays): the cores this process may run on, at most 4
_WORKERS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 4)
_MIN_BLOCK = 2_000  # rows below which a block is not worth a thread of its own


def _death_integral(
    k: np.ndarray, m: float, alpha: float, beta: float, t0: np.ndarray, t1: np.ndarray, moments: bool
) -> tuple[np.ndarray, ...]:
    """log of integral_{t0}^{t1} (alpha+tau)^-k (1+tau/beta)^-m dtau (-inf where t1 == t0) and, with
    moments, the integrand-weighted means of log(alpha+tau), 1/(alpha+tau), log(1+tau/beta), 1/(beta+tau).
    (1+tau/beta) rather than (beta+tau): beta^s cancels exactly, which matters when s and beta are large.

    Variable: u = log(1 + (tau - t0) * rate), rate = the integrand's initial log-decay rate. In u the
    integrand is smooth on the scale of 1 whatever the parameters (double-exponential decay for steep
    power laws, slow growth for flat ones), so fixed Gauss-Legendre panels integrate it accurately.

    The arrays are rows x nodes and this is most of the fit's and the scoring's time, so they are computed
    in place (`out=`) and alpha + tau is kept rather than recomputed: every element goes through the same
    operations in the same order as in the plain expressions (written beside them), so every value is the
    same to the last bit (tests/predictions/test_pareto_nbd_kernel.py compares them)."""
    rate = k / (alpha + t0) + m / (beta + t0)
    width = np.log1p((t1 - t0) * rate) / _PANELS
    u = width[:, None] * _POSITIONS[None, :]
    tau = np.expm1(u)  # tau = t0 + expm1(u) / rate
    tau /= rate[:, None]
    tau += t0[:, None]
    alpha_tau = tau + alpha
    log_a = np.log(alpha_tau)
    log_b = np.divide(tau, beta)  # log1p(tau / beta)
    np.log1p(log_b, out=log_b)
    log_f = log_a * (-k)[:, None]  # -k * log_a - m * log_b + u + weights
    scratch = np.multiply(log_b, m)
    log_f -= scratch
    log_f += u
    log_f += _LOG_WEIGHTS[None, :]
    with np.errstate(divide="ignore"):  # width 0 (t1 == t0): the integral is 0
        log_scale = np.log(width / 2) - np.log(rate)
    total = log_sum_exp_rows(log_f)
    log_integral = total + log_scale
    if not moments:
        return (log_integral,)
    share = np.subtract(log_f, total[:, None], out=u)  # each node's part of the integral
    np.exp(share, out=share)
    np.copyto(share, 0.0, where=~np.isfinite(share))
    beta_tau = np.add(tau, beta, out=tau)
    return (
        log_integral,
        np.multiply(share, log_a, out=scratch).sum(1),
        np.divide(share, alpha_tau, out=scratch).sum(1),
        np.multiply(share, log_b, out=scratch).sum(1),
        np.divide(share, beta_tau, out=scratch).sum(1),
    )


def log_sum_exp_rows(a: np.ndarray) -> np.ndarray:
    """scipy.special.logsumexp(a, axis=1) for a 2-D real array, by scipy's own algorithm (the largest element
    of a row kept out of the sum, then log1p), so the values are the same to the last bit. scipy's general
    version (array API, complex numbers, weights) makes about twice the passes over the array, among them an
    exp of every element computed in advance for rows whose result may turn out infinite: it was a quarter of
    the likelihood's time. Such rows (an infinite or NaN element, all -inf) are rare: they get scipy's own
    function."""
    with np.errstate(divide="ignore", invalid="ignore"):  # NaN and infinite rows: redone below
        a_max = a.max(axis=1, keepdims=True)
        is_max = a == a_max
        count = np.count_nonzero(is_max, axis=1).astype(a.dtype)[:, None]
        terms = np.subtract(a, a_max)
        np.exp(terms, out=terms)
        np.copyto(terms, 0.0, where=is_max)
        s = terms.sum(axis=1, keepdims=True)
        s = np.where(s == 0, s, s / count)
        out = (np.log1p(s) + np.log(count) + a_max)[:, 0]
    odd = ~np.isfinite(out)
    if odd.any():
        out[odd] = logsumexp(a[odd], axis=1)
    return out


def _parts(
    params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, gradient: bool = False
) -> tuple[np.ndarray, ...]:
    """(log 'alive at T' term, log-likelihood[, d log-likelihood / d (r, alpha, s, beta)]) per customer.

    Computed in blocks (`_block_starts`), several at a time: numpy and scipy's ufuncs release the GIL, so the
    blocks use the machine's cores (the fit and the scoring were one core's work). Each block is computed
    exactly as it would be alone and the blocks are joined in order: the values are the same to the last digit."""
    r, alpha, s, beta = (float(v) for v in params)
    x, t_x, T = (np.asarray(v, dtype="float64") for v in (x, t_x, T))

    starts = _block_starts(len(x))

    def block(lo: int) -> tuple[np.ndarray, ...]:
        hi = lo + starts.step
        return _block_parts(r, alpha, s, beta, x[lo:hi], t_x[lo:hi], T[lo:hi], gradient)

    if len(starts) == 1:
        blocks = [block(0)]
    else:
        with ThreadPoolExecutor(max_workers=min(len(starts), _WORKERS)) as pool:
            blocks = list(pool.map(block, starts))
    return tuple(np.concatenate(column) for column in zip(*blocks, strict=True))


def _block_starts(n: int) -> range:
    """Where the blocks of `n` rows start: blocks of at most `_CHUNK` rows, as many as a multiple of the workers
    (none waits for a last, lone block) once there are `_MIN_BLOCK` rows per worker. Every value of a row is
    computed from that row alone (elementwise, or summed over its own quadrature nodes), so the layout of the
    blocks changes no digit of any result."""
    blocks = -(-n // _CHUNK)
    workers = min(_WORKERS, n // _MIN_BLOCK)
    if workers > 1:
        blocks = -(-blocks // workers) * workers
    return range(0, max(n, 1), max(-(-n // max(blocks, 1)), 1))


def _block_parts(
    r: float, alpha: float, s: float, beta: float, xs: np.ndarray, ts: np.ndarray, Ts: np.ndarray, gradient: bool
) -> tuple[np.ndarray, ...]:
    """`_parts` of one block of rows."""
    k = r + xs
    common = gammaln(k) - gammaln(r) + r * np.log(alpha)
    alive = -k * np.log(alpha + Ts) - s * np.log1p(Ts / beta)
    parts = _death_integral(k, s + 1.0, alpha, beta, ts, Ts, gradient)
    died = np.log(s) - np.log(beta) + parts[0]
    both = np.logaddexp(alive, died)
    if not gradient:
        return common + alive, common + both
    _, mean_log_a, mean_inv_a, mean_log_b, mean_inv_b = parts
    p_alive = np.exp(alive - both)
    p_died = 1.0 - p_alive
    grad = np.column_stack(
        [
            digamma(k) - digamma(r) + np.log(alpha) - p_alive * np.log(alpha + Ts) - p_died * mean_log_a,
            r / alpha - k * (p_alive / (alpha + Ts) + p_died * mean_inv_a),
            -p_alive * np.log1p(Ts / beta) + p_died * (1.0 / s - mean_log_b),
            p_alive * s * Ts / (beta * (beta + Ts)) + p_died * (s / beta - (s + 1.0) * mean_inv_b),
        ]
    )
    return common + alive, common + both, grad


def log_likelihood(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    return _parts(params, x, t_x, T)[1]


def fit(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> FitResult:
    """Maximum likelihood. Searched over log(r, alpha, s, s/beta): s/beta is the mean dropout rate, well
    determined even where s (how unequal dropout rates are) is not, which keeps the search off the long
    ridge the likelihood has along s and beta."""
    (ux, ut, uT), weights = collapse(x, t_x, T)

    def to_params(v: np.ndarray) -> np.ndarray:
        r, alpha, s, rate = np.exp(v)
        return np.array([r, alpha, s, s / rate])

    def value_and_gradient(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = to_params(v)
        _, ll, g = _parts(p, ux, ut, uT, gradient=True)
        r, alpha, s, beta = p
        # chain rule to the search variables: beta = s / rate
        jac = np.column_stack([g[:, 0] * r, g[:, 1] * alpha, g[:, 2] * s + g[:, 3] * beta, -g[:, 3] * beta])
        return ll, jac

    scale = max(float(np.mean(T)), 1e-3)
    start = np.log([1.0, scale, 1.0, 1.0 / scale])
    bounds = [(-LOG_BOUND, LOG_BOUND)] * 2 + [(-LOG_BOUND, float(np.log(MAX_S))), (-LOG_BOUND, LOG_BOUND)]
    return fit_with_gradient("pareto_nbd", NAMES, value_and_gradient, to_params, weights, start, bounds, len(x))


def _vector(params: dict[str, float]) -> np.ndarray:
    return np.array([params[k] for k in NAMES], dtype="float64")


def p_alive(params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """P(still alive at T | x, t_x, T)."""
    alive, ll = _parts(_vector(params), x, t_x, T)
    return np.exp(alive - ll)


def p_alive_and_log_likelihood(
    params: dict[str, float], x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(p_alive, log-likelihood) per customer, from one evaluation."""
    alive, ll = _parts(_vector(params), x, t_x, T)
    return np.exp(alive - ll), ll


def probability_of_purchase(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, ll_now: np.ndarray | None = None
) -> np.ndarray:
    """P(at least one purchase in the next t | x, t_x, T). No purchase in (T, T + t] together with the
    history is the history observed until T + t, so P(none) = L(x, t_x, T + t) / L(x, t_x, T).
    `ll_now`: the log-likelihood at T, if known."""
    p = _vector(params)
    T = np.asarray(T, dtype="float64")
    if ll_now is None:
        ll_now = log_likelihood(p, x, t_x, T)
    none = log_likelihood(p, x, t_x, T + t) - ll_now
    return np.clip(-np.expm1(none), 0.0, 1.0)  # quadrature rounding can put a certain "no" a hair below 0


def _horizon(s: float, log_q: np.ndarray) -> np.ndarray:
    """(1 - q^(s-1)) / (s - 1) for q = exp(log_q), continuous through s = 1 (where it is -log q)."""
    if abs(s - 1.0) > 1e-9:
        return -np.expm1((s - 1.0) * log_q) / (s - 1.0)
    return -log_q


def expected_purchases(
    params: dict[str, float], t: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, alive: np.ndarray | None = None
) -> np.ndarray:
    """E[Y(t) | x, t_x, T]: expected purchases in the next t time units (`alive`: p_alive, if known)."""
    r, alpha, s, beta = _vector(params)
    x, T = np.asarray(x, dtype="float64"), np.asarray(T, dtype="float64")
    if alive is None:
        alive = p_alive(params, x, t_x, T)
    log_q = np.log1p(-t / (beta + T + t))  # log((beta + T) / (beta + T + t)), exact for huge beta
    return alive * (r + x) * (beta + T) / (alpha + T) * _horizon(s, log_q)


def expected_purchases_new(params: dict[str, float], t: np.ndarray) -> np.ndarray:
    """E[X(t)]: expected purchases of a customer observed from time 0 (the unconditional curve)."""
    r, alpha, s, beta = _vector(params)
    t = np.asarray(t, dtype="float64")
    return r * beta / alpha * _horizon(s, np.log1p(-t / (beta + t)))
