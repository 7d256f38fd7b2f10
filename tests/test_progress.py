"""Live progress (issue 19 item 2): the API's reporter gets sensible bars from
training (per epoch, per step), BKT's EM, CV folds and compared models; the
command line draws them with rich only on a terminal and never without one or
under --quiet, and outputs (stdout, --json) are unchanged."""

from __future__ import annotations

import contextlib
import io
import json
import re

import polars as pl
import polars.testing
import pytest
from typer.testing import CliRunner

import kt
from kt.api import Reporter, StepBars
from kt.cli import app

BAR = re.compile(r"[━╸╺]+\s+\d+/(\d+|\?)")  # a rich bar and its count (table rules have no count)


class Recorder(Reporter):
    """A reporter that records its bars, their updates and the progress lines, in order."""

    def __init__(self):
        super().__init__(verbose=False)
        self.events: list[tuple] = []

    def line(self, msg: str) -> None:
        self.events.append(("line", msg))

    @contextlib.contextmanager
    def progress(self, what, total=None):
        self.events.append(("open", what, total))
        try:
            yield lambda done, total=None, info="": self.events.append(("update", what, done, total, info))
        finally:
            self.events.append(("close", what))

    def bars(self, what: str) -> list[tuple]:
        return [e for e in self.events if e[0] in ("open", "update") and e[1] == what]


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    df, _ = kt.simulate("bkt", learners=40, kcs=3, steps=6, seed=1)
    return df


@pytest.fixture(scope="module")
def csv_file(frame, tmp_path_factory):
    p = tmp_path_factory.mktemp("progress") / "sim.csv"
    frame.write_csv(p)
    return p


def test_default_reporter_progress_is_a_silent_no_op(capsys):
    with Reporter().progress("epoch 1", total=10) as update:
        update(3, None, "loss 0.5")
        update(10, 10)
    assert capsys.readouterr() == ("", "")


def _bias_logits(model, batch, key):
    return model.b[batch["skill"]]


def test_training_loop_steps_feed_one_bar_per_epoch_closed_before_the_epoch_line(frame):
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from kt.api import epoch_line
    from kt.models.dkt.model import _known, build_sequences
    from kt.train import loop

    class Bias(eqx.Module):  # the smallest model: one logit per KC (compiles in a moment)
        b: jax.Array

    seqs = build_sequences(_known(kt.load(frame)), window=200, min_len=2)
    n = seqs.mask.shape[0]
    ui = Recorder()
    settings = loop.LoopSettings(epochs=2, batch_size=10, buckets=(32,))
    with StepBars(ui) as bars:
        loop.fit(
            Bias(jnp.zeros(3)),
            _bias_logits,
            seqs,
            None,
            settings,
            jax.random.key(0),
            on_step=bars.on_step,
            on_epoch=bars.on_epoch(lambda rec: ui.line(epoch_line(rec))),
        )
    steps = -(-n // 10)
    assert loop.n_batches(seqs, 10) == steps > 1
    for epoch in (1, 2):
        ev = ui.bars(f"epoch {epoch}")
        assert ev[0] == ("open", f"epoch {epoch}", steps)
        updates = [e for e in ev if e[0] == "update"]
        assert [u[2] for u in updates] == list(range(steps + 1))  # 0 at the start, then every step
        assert all(u[3] == steps for u in updates)
        assert "loss " in updates[-1][4] and "interactions/s" in updates[-1][4]
    kinds = [(e[0], e[1]) for e in ui.events if e[0] in ("close", "line")]
    assert kinds[0] == ("close", "epoch 1") and kinds[1][1].startswith("  epoch 1 | loss ")
    assert kinds[2] == ("close", "epoch 2") and kinds[3][1].startswith("  epoch 2 | loss ")
    assert ui.events[-1][0] == "line"  # nothing left open after the last summary line


@pytest.mark.slow
def test_dkt_training_opens_one_bar_per_epoch_with_steps_loss_and_rate(frame):
    from kt.models.dkt.model import _known, build_sequences

    ui = Recorder()
    # no validation and full batches: one compiled step (a fast test)
    m = kt.train(frame, "dkt", epochs=2, hidden=8, batch_size=10, valid_frac=0, _ui=ui)
    # batches per epoch: ceil(training sequences / batch size)
    tr = kt.load(frame)
    n_seq = build_sequences(_known(tr), window=m.config.window, min_len=m.config.min_chunk).mask.shape[0]
    steps = -(-n_seq // 10)
    assert steps > 1
    for epoch in (1, 2):
        ev = ui.bars(f"epoch {epoch}")
        assert ev[0] == ("open", f"epoch {epoch}", steps)
        updates = [e for e in ev if e[0] == "update"]
        assert [u[2] for u in updates] == list(range(steps + 1))  # 0 at the start, then every step
        assert all(u[3] == steps for u in updates)
        assert "loss " in updates[-1][4] and "interactions/s" in updates[-1][4]
    # each bar closes before its epoch's summary line, which is printed as before
    kinds = [(e[0], e[1]) for e in ui.events if e[0] in ("close", "line")]
    assert kinds[0] == ("close", "epoch 1") and kinds[1][0] == "line" and kinds[1][1].startswith("  epoch 1 | loss ")
    assert kinds[2] == ("close", "epoch 2") and kinds[3][1].startswith("  epoch 2 | loss ")
    assert ui.events[-1][0] != "open"  # nothing left open


def test_loop_on_step_streams_count_batches_in_the_first_epoch():
    from kt.train.loop import n_batches

    class Stream:
        def chunks(self, rng):
            return iter(())

    assert n_batches(Stream(), 8) is None


def test_bkt_em_reports_converged_kcs_per_iteration(frame):
    ui = Recorder()
    kt.train(frame, "bkt", num_fits=1, _ui=ui)
    ev = ui.bars("EM: KCs converged")
    assert ev[0] == ("open", "EM: KCs converged", 3)  # one bar, total = KCs
    updates = [e for e in ev if e[0] == "update"]
    assert len(updates) >= 2
    assert all(0 <= u[2] <= 3 and u[3] == 3 for u in updates)
    assert [u[2] for u in updates] == sorted(u[2] for u in updates)  # converged KCs never go back
    assert updates[-1][4] == f"iteration {len(updates)}"
    assert ("close", "EM: KCs converged") in ui.events


def test_cv_and_compare_bars_count_folds_and_models(frame):
    ui = Recorder()
    kt.cross_validate(frame, "kc-rate", folds=2, _ui=ui)
    assert [e for e in ui.events if e[1] == "folds"] == [
        ("open", "folds", 2),
        ("update", "folds", 1, None, ""),
        ("update", "folds", 2, None, ""),
        ("close", "folds"),
    ]

    ui = Recorder()
    kt.compare(frame, ["kc-rate", "majority"], _ui=ui)
    got = [e[:3] for e in ui.events if e[1] == "models"]
    assert got == [
        ("open", "models", 2),
        ("update", "models", 0),
        ("update", "models", 1),
        ("update", "models", 1),
        ("update", "models", 2),
        ("close", "models"),
    ]


def test_step_bars_close_on_errors():
    ui = Recorder()
    with pytest.raises(RuntimeError), StepBars(ui) as bars:
        bars.on_step(0, 4, {"epoch": 1})
        raise RuntimeError("boom")
    assert ui.events[-1] == ("close", "epoch 1")


def _cli(*args):
    res = CliRunner().invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def test_cli_output_has_no_bars_without_a_terminal_and_quiet_drops_progress_lines(csv_file, tmp_path):
    out = _cli("cv", csv_file, "--model", "kc-rate", "--folds", "2", "--json", tmp_path / "a.json")
    assert not BAR.search(out)
    assert "fold 1/2: AUC" in out
    quiet = _cli("--quiet", "cv", csv_file, "--model", "kc-rate", "--folds", "2", "--json", tmp_path / "b.json")
    assert "fold 1/2" not in quiet and not BAR.search(quiet)

    def result(p):  # the JSON without its timings
        rec = json.loads(p.read_text())
        for f in rec["fold_results"]:
            f["result"].pop("train_seconds")
        return rec

    assert result(tmp_path / "a.json") == result(tmp_path / "b.json")
    for o in (out, quiet):
        assert "wrote" in o


def test_json_on_stdout_is_unchanged(csv_file):
    plain = _cli("data", "inspect", csv_file, "--json")
    assert plain == _cli("--quiet", "data", "inspect", csv_file, "--json")
    json.loads(plain)  # nothing but the JSON on stdout


def test_cli_reporter_draws_bars_only_on_a_terminal_and_not_under_quiet(monkeypatch):
    from rich.console import Console

    from kt.cli import common

    def draw(terminal: bool, quiet: bool) -> str:
        buf = io.StringIO()
        monkeypatch.setattr(common, "err", Console(file=buf, force_terminal=terminal, width=100))
        token = common._QUIET.set(quiet)
        try:
            with common.CliReporter().progress("epoch 1", total=4) as update:
                for i in range(5):
                    update(i, None, "loss 0.5000")
        finally:
            common._QUIET.reset(token)
        return buf.getvalue()

    tty = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", draw(True, False))  # without the terminal's control codes
    assert "epoch 1" in tty and BAR.search(tty) and "4/4" in tty and "loss 0.5000" in tty
    assert draw(False, False) == ""
    assert draw(True, True) == ""


@pytest.mark.parametrize("name,opts", [("bkt", {"num_fits": 1}), ("dkt", {"epochs": 1, "hidden": 8})])
def test_predicting_by_learner_groups_equals_one_call(frame, name, opts):
    # evaluate/predict run over learner groups to draw a bar; the outputs must be those of one call
    data = kt.load(frame)
    m = kt.train(data, name, seed=0, verbose=False, **opts)
    test = kt.load(frame, vocab=m.vocab)
    seen = []
    by = kt.api._ByLearners(m, lambda done, total=None, info="": seen.append((done, total)), parts=7)
    polars.testing.assert_frame_equal(by.predict(test), m.predict(test))
    polars.testing.assert_frame_equal(by.mastery(test), m.mastery(test))
    assert seen[0] == (0, test.n_users) and seen[-1] == (test.n_users, test.n_users) and len(seen) == 2 * 8


def test_evaluate_and_predict_draw_a_bar_over_learners(frame):
    m = kt.train(kt.load(frame), "bkt", seed=0, num_fits=1, verbose=False)
    ui = Recorder()
    res = kt.evaluate(m, frame, _ui=ui)
    assert res == kt.evaluate(m, frame, verbose=False)
    opened = [e for e in ui.events if e[0] == "open"]
    assert len(opened) == 1 and opened[0][2] == 40
    assert [e[2:4] for e in ui.events if e[0] == "update"][-1] == (40, 40)
    ui = Recorder()
    preds = kt.predict(m, frame, _ui=ui)
    polars.testing.assert_frame_equal(preds, m.predict(kt.load(frame, vocab=m.vocab, min_attempts=1)))
    assert [e[2:4] for e in ui.events if e[0] == "update"][-1] == (40, 40)
