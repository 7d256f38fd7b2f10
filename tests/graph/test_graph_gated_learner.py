"""The gated-BKT structure learner (kt.graph.gated, graph method ``gated``): its
filter against a per-learner NumPy loop of the same equations, and graph
recovery on a small gated simulation."""

from __future__ import annotations

import numpy as np
import pytest

import kt
from kt.graph import gated as G


def _sig(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_nll(params: dict, arr: dict) -> float:
    """The filter of the module docstring, one learner and one attempt at a time."""
    p = {k: np.asarray(v, np.float64) for k, v in params.items()}
    K = p["w"].shape[0]
    a = _sig(p["w"]) * (1 - np.eye(K))
    guess = _sig(p["guess_kc"][arr["unit_kc"]] + p["guess_item"])
    slip = _sig(p["slip_kc"][arr["unit_kc"]] + p["slip_item"])
    forget = _sig(p["forget"])
    e_obs, e_learn = _sig(p["e_obs"]), _sig(p["e_learn"])
    total, count = 0.0, 0
    for n in range(arr["y"].shape[0]):
        m = _sig(p["prior"] + p["u"][n])
        learn = _sig(p["learn"] + p["v"][n])
        for t in range(arr["y"].shape[1]):
            if not arr["mask"][n, t]:
                continue
            S = [int(k) for k in arr["kcs"][n, t] if k >= 0]
            out = [i for i in range(K) if i not in S]
            g, s = guess[arr["item"][n, t]], slip[arr["item"][n, t]]
            b = {i: 1 - np.prod([1 - a[i, k] for k in S]) for i in out}
            c = {i: 1 - b[i] * (1 - m[i]) for i in out}
            Q = np.prod(list(c.values())) if out else 1.0
            kS = np.prod([m[k] for k in S])

            def p_y1(q, ks):
                return g + (1 - s - g) * ks * (1 - e_obs * (1 - q))

            pr = np.clip(p_y1(Q, kS), 1e-6, 1 - 1e-6)
            y = arr["y"][n, t]
            total += y * np.log(pr) + (1 - y) * np.log(1 - pr)
            count += 1
            post = m.copy()
            for i in range(K):
                if i in S:
                    p1, p0 = p_y1(Q, kS / m[i]), g
                else:
                    p1, p0 = p_y1(Q / c[i], kS), p_y1(Q / c[i] * (1 - b[i]), kS)
                l1, l0 = (p1, p0) if y else (1 - p1, 1 - p0)
                post[i] = m[i] * l1 / (m[i] * l1 + (1 - m[i]) * l0)
            new = post.copy()
            for k in S:
                gate = np.prod([1 - e_learn * a[i, k] * (1 - post[i]) for i in out])
                new[k] = post[k] + (1 - post[k]) * learn[k] * gate
            m = new * (1 - forget)
    return -total / count


@pytest.fixture(scope="module")
def small():
    frame, truth = kt.simulate(kind="gated", learners=12, kcs=4, steps=15, seed=3, multi_kc=0.5)
    return kt.from_frame(frame), truth


def test_filter_equals_reference_loop(small):
    import jax.numpy as jnp

    data, _ = small
    arr = G.gated_arrays(data)
    assert arr["kcs"].shape[2] == 2 and (arr["kcs"][..., 1] >= 0).any()  # multi-KC items are exercised
    rng = np.random.default_rng(0)
    K, U, N = arr["K"], arr["U"], arr["y"].shape[0]
    params = G._init(K, U, N, -1.0)
    params = {k: v + jnp.asarray(rng.normal(0, 0.7, np.shape(v)), jnp.float32) for k, v in params.items()}
    batch = {k: jnp.asarray(arr[k]) for k in ("kcs", "item", "y", "mask")} | {"learner": jnp.arange(N)}
    got = float(G._neg_loglik(params, batch, jnp.asarray(arr["unit_kc"]))) / arr["mask"].sum()
    assert got == pytest.approx(_reference_nll(params, arr), rel=1e-4)


def test_recovers_a_chain_and_its_orientation():
    from kt.graph.build import data_graph
    from kt.graph.evaluate import graph_metrics
    from kt.graph.truth import Truth

    # kc0 -> kc1 -> kc2 -> kc3: each KC held back (effect 0.9) until the one before is known.
    A = np.diag(np.ones(3, int), k=1)
    frame, truth = kt.simulate(kind="gated", learners=300, kcs=4, steps=40, seed=1, adjacency=A, effect=0.9, withheld=0.0)
    g = data_graph(kt.from_frame(frame), "gated", truth["kcs"])
    assert g.method == "gated" and g.meta["e_obs"] > 0.3
    res = graph_metrics(g, Truth([tuple(e) for e in truth["edges"]], truth["kcs"], "truth", "json"))
    assert res["auroc"] >= 0.95 and res["orientation_accuracy"] == 1.0
    # The probability is the model's own edge probability a = sigmoid(w), and the export
    # threshold keeps the three chain edges and nothing else (no transitive or reverse edge).
    np.testing.assert_allclose(g.prob, np.where(np.eye(4, dtype=bool), 0.0, 1.0 / (1.0 + np.exp(-g.score))))
    assert g.meta["transform"].startswith("prob = sigmoid(w_ik)")
    assert ((g.prob >= 0.5) == (A == 1)).all()


def test_bad_options_are_one_line_errors(small):
    from kt.errors import KTError

    with pytest.raises(KTError, match="steps 0"):
        G.gated_scores(small[0], steps=0)


@pytest.mark.slow  # about 20 s; data_graph's gated path is covered above
def test_learn_graph_cli_writes_a_gated_graph(tmp_path):
    import json

    from typer.testing import CliRunner

    from kt.cli import app

    frame, _ = kt.simulate(kind="gated", learners=60, kcs=3, steps=15, seed=2)
    frame.write_csv(tmp_path / "sim.csv")
    res = CliRunner().invoke(
        app, ["learn-graph", str(tmp_path / "sim.csv"), "--method", "gated", "--out", str(tmp_path / "g.json")]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads((tmp_path / "g.json").read_text())
    assert saved["method"] == "gated" and 0 < saved["meta"]["e_obs"] < 1


def test_refits_on_resamples_reuse_one_compiled_step_and_padding_changes_nothing(small):
    from kt.data.splits import resample_learners

    data, _ = small
    w, info = G.gated_scores(data, steps=3)
    chunk_grad, _, _ = G._steps_jitted()
    compiled = chunk_grad._cache_size()
    rng = np.random.default_rng(0)
    for _ in range(2):  # resampled learners: other sequence lengths and items, the same padded shapes
        G.gated_scores(resample_learners(data, rng), steps=3)
    assert chunk_grad._cache_size() == compiled
    # The masked padding steps leave the likelihood as it was: the same fit without padding.
    arr = G.gated_arrays(data)
    assert arr["y"].shape[1] % G._T_BUCKET != 0  # the fit above did pad
    import jax.numpy as jnp

    batch = {k: jnp.asarray(arr[k]) for k in ("kcs", "item", "y", "mask")} | {"learner": jnp.arange(arr["y"].shape[0])}
    unpadded = float(G._neg_loglik(G._init(arr["K"], arr["U"], arr["y"].shape[0], -3.0), batch, jnp.asarray(arr["unit_kc"])))
    padded = {
        k: np.concatenate([arr[k], np.full((arr[k].shape[0], 5, *arr[k].shape[2:]), f, arr[k].dtype)], axis=1)
        for k, f in (("kcs", -1), ("item", 0), ("y", 0), ("mask", False))
    }
    pb = {k: jnp.asarray(v) for k, v in padded.items()} | {"learner": batch["learner"]}
    assert float(
        G._neg_loglik(G._init(arr["K"], arr["U"], arr["y"].shape[0], -3.0), pb, jnp.asarray(arr["unit_kc"]))
    ) == pytest.approx(unpadded, rel=1e-6)


def test_default_data_method_is_gated_where_affordable(small, monkeypatch, tmp_path):
    from kt.graph import build

    data, _ = small
    assert build.default_data_method(data) == ("gated", None)
    n, t, k = data.n_users, int(data.frame.group_by("user_idx").len()["len"].max()), data.vocab.size("skill_id")
    assert build.gated_cells(data) == n * t * k * k
    monkeypatch.setattr(build, "GATED_AUTO_CELLS", build.gated_cells(data) - 1)
    method, why = build.default_data_method(data)
    assert method == "mastery" and "--method gated" in why and f"{n:,} learners" in why
    # kt learn-graph says so and writes the mastery graph.
    import json

    from tests.cli_run import invoke as run

    kt.simulate(kind="gated", learners=12, kcs=4, steps=15, seed=3, multi_kc=0.5)[0].write_csv(tmp_path / "s.csv")
    res = run("learn-graph", tmp_path / "s.csv", "--out", tmp_path / "g.json")
    assert "--method gated forces it" in res.stderr and json.loads((tmp_path / "g.json").read_text())["method"] == "mastery"
