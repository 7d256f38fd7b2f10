"""The shared LSTM cell and recurrence (kt.models.nn) against the LSTM equations written out in NumPy."""

from __future__ import annotations

import numpy as np

from kt.models.nn import lstm_update, scan_from_zero


def test_lstm_update_matches_the_equations():
    rng = np.random.default_rng(0)
    H = 5
    gates, c = rng.normal(size=(3, 4 * H)), rng.normal(size=(3, H))
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))  # PyTorch order i, f, g, o
    c_ref = sig(f) * c + sig(i) * np.tanh(g)
    h_ref = sig(o) * np.tanh(c_ref)
    h, c_new = lstm_update(gates.astype(np.float32), c.astype(np.float32))
    np.testing.assert_allclose(np.asarray(c_new), c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), h_ref, rtol=1e-5, atol=1e-6)


def _lstm_ref(gates_in: np.ndarray, w_hh: np.ndarray, restart: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """h_t and c_t by a Python loop over the steps (zero state at t = 0 and wherever ``restart``)."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    B, T, G = gates_in.shape
    H = G // 4
    h, c = np.zeros((B, H)), np.zeros((B, H))
    hs, cs = np.zeros((B, T, H)), np.zeros((B, T, H))
    for t in range(T):
        h, c = np.where(restart[:, t, None], 0.0, h), np.where(restart[:, t, None], 0.0, c)
        z = gates_in[:, t] + h @ w_hh.T
        i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        hs[:, t], cs[:, t] = h, c
    return hs, cs


def test_scan_from_zero_runs_the_lstm_and_restarts_packed_rows():
    rng = np.random.default_rng(1)
    B, T, H = 2, 6, 3
    gates_in, w_hh = rng.normal(size=(B, T, 4 * H)), rng.normal(size=(4 * H, H)) * 0.5
    reset = np.zeros((B, T), bool)
    reset[0, 3] = reset[1, 1] = True  # a second sequence packed into each row

    def cell(carry, g_in):
        h, c = lstm_update(g_in + carry[0] @ w_hh.astype(np.float32).T, carry[1])
        return (h, c), (h, c)

    g32 = gates_in.astype(np.float32)
    for r in (None, reset):
        hs, cs = scan_from_zero(cell, g32, H, r)
        h_ref, c_ref = _lstm_ref(gates_in, w_hh, np.zeros((B, T), bool) if r is None else r)
        np.testing.assert_allclose(np.asarray(hs), h_ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(np.asarray(cs), c_ref, rtol=1e-5, atol=1e-5)
    # After a restart a row continues exactly as a fresh sequence would.
    hs, _ = scan_from_zero(cell, g32, H, reset)
    fresh, _ = scan_from_zero(cell, g32[:1, 3:], H)
    np.testing.assert_allclose(np.asarray(hs)[0, 3:], np.asarray(fresh)[0], rtol=1e-6, atol=1e-7)
