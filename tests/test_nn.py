"""The shared LSTM cell (kt.models.nn) against the LSTM equations written out in NumPy."""

from __future__ import annotations

import numpy as np

from kt.models.nn import lstm_update


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
