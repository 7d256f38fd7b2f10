"""DKT training throughput and test accuracy: kt's ``dkt`` against pyKT's ``DKT`` module (torch, CPU).

Issue acceptance:

* steady-state training throughput (scored interactions per second, 2 CPU
  threads) of kt's DKT at least 2x that of pyKT's ``DKT`` trained with the
  same batch size (256), hidden/embedding size (200), dropout (0.1), Adam
  1e-3 and chunk length (200), measured in the same run of this script;
* peak RSS of kt training DKT on the full ASSISTments 2015 file < 4 GB;
* (issue 9) test AUC/accuracy of both, trained the same way in the same run,
  and the delta kt - pyKT.

"Scored interactions" are the masked next-step positions the loss is taken
over: in a chunk of L real attempts, positions 2..L (L - 1 of them). Both
sides count the same positions (the script checks the totals agree).

What runs, each in its own fresh subprocess (peak RSS per child from ``os.wait4``):

1. pyKT in a peer venv (``/tmp/kt-peer-pykt``, created if missing: CPU
   ``torch==2.13.0`` first, then numpy/pandas/scikit-learn and
   ``pykt-toolkit==0.0.38`` with ``--no-deps``, since its dependency list
   pulls wandb and would let pip pick another torch). The generated driver
   builds pyKT's in-memory dataset exactly like ``KTDataset.__load_data__``
   (sequences cut into non-overlapping chunks of 200, chunks < 3 dropped,
   every chunk padded to 200 with -1; ``KTDataset`` itself cannot be
   constructed on a CPU-only torch because it builds ``torch.cuda``
   tensors), and then runs pyKT's own training loop body:
   ``DataLoader(KTDataset, batch_size=256, shuffle=True)``,
   ``pykt.models.train_model.model_forward`` (DKT forward, one-hot selection
   of the next KC, masked BCE in float64), ``zero_grad/backward/step``
   with Adam 1e-3. Validation is left out. One warm-up epoch, then
   ``--epochs`` timed epochs (``time.perf_counter`` around each whole epoch,
   data loading included, as in pyKT). ``torch.set_num_threads(2)``.
2. kt: ``create('dkt', epochs=1 + --epochs, patience=100).fit(data, key=0)``
   without validation; throughput from ``meta['history']``
   (``interactions_per_second`` = scored training positions / seconds of
   the epoch's training steps). Epoch 1 includes JAX compilation; the
   median over epochs 2.. is reported.
3. Memory: kt trains DKT for one epoch on the full ASSISTments 2015 train
   file (``assist2015/dkvmn``, 3-line format) and evaluates on its test file
   with ``kt.eval.protocols.next_step``; peak RSS of that process.
4. Accuracy (``--skip-accuracy`` to leave out): one more fresh process per
   side trains ``--acc-epochs`` epochs (default 10; fixed, no validation,
   no early stopping) on the whole train file with the settings above and
   scores assist2009/gervet test under pyKT's standard test protocol
   (``test_sequences``): each learner cut into non-overlapping chunks of 200
   from the first attempt, history reset per chunk, chunks < 3 dropped, the
   first step of each chunk unscored; global AUC, accuracy at p >= 0.5.
   pyKT: the driver's chunks, ``DataLoader(shuffle=False)`` and
   ``pykt.models.evaluate_model.evaluate``. kt: ``predict`` with
   ``eval_mode=chunk`` (the same chunks), the chunk starts and the steps of
   dropped chunks left out. Both sides report a fingerprint of the scored
   positions (count, correct labels, sum of label x position in the
   learner); ``accuracy.scored_positions_agree`` says they are equal.
   Results: auc/accuracy/rmse of the kt and pykt rows, ``accuracy`` and
   ``deltas`` in the JSON.

Steps 1 and 2 run ``--repeats`` times (default 3), alternating, each in a
fresh process; the median throughput of each side is reported and the
ratio is taken between the medians (per-repeat ratios are in the JSON).

Both sides get one learner-level pass over assist2009/gervet train (KC =
``skill_id``, the KC-set index, 149 values). Before each timed child the
script waits (``--wait-quiet`` seconds at most) until processes other than
itself use < 0.2 cores, and records the load average and the other
processes' core use while each child ran.

Usage::

    /work/venv/bin/python bench/dkt_vs_pykt.py                  # everything
    /work/venv/bin/python bench/dkt_vs_pykt.py --skip-peer      # kt only
    /work/venv/bin/python bench/dkt_vs_pykt.py --epochs 3 --repeats 5 --wait-quiet 1800
    /work/venv/bin/python bench/dkt_vs_pykt.py --skip-accuracy   # throughput and memory only
    # smoke run (first 100 learners, 1 epoch each, one repeat):
    /work/venv/bin/python bench/dkt_vs_pykt.py --max-learners 100 --epochs 1 --repeats 1 --skip-memory --acc-epochs 1 --wait-quiet 0 --out /tmp/dkt_vs_pykt.json

The shared data directory is ``$KT_SHARED_DATA`` or ``<repo>/../shared/data``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import harness  # noqa: E402
from harness import WAIT_QUIET, busy_note, check, loadavg, machine, run_proc  # noqa: E402

PEER_VENV = Path("/tmp/kt-peer-pykt")
TORCH_PIN = "torch==2.13.0"
PEER_DEPS = ["numpy", "pandas", "scikit-learn"]
PYKT_PIN = "pykt-toolkit==0.0.38"
GERVET_TRAIN = "assist2009/gervet/preprocessed_data_train.csv.gz"
GERVET_TEST = "assist2009/gervet/preprocessed_data_test.csv.gz"
A2015_TRAIN = "assist2015/dkvmn/assist2015_train.csv.gz"
A2015_TEST = "assist2015/dkvmn/assist2015_test.csv.gz"
BATCH, HIDDEN, DROPOUT, WINDOW, MIN_CHUNK, LR = 256, 200, 0.1, 200, 3, 1e-3
TARGET_RATIO = 2.0
ACC_EPOCHS = 10
TARGET_RSS_MB = 4096
THREADS = 2


# --------------------------------------------------------------------------- helpers
def shared_data_dir() -> Path:
    env = os.environ.get("KT_SHARED_DATA")
    d = Path(env) if env else REPO.parent / "shared" / "data"
    if not (d / GERVET_TRAIN).exists():
        sys.exit(f"dkt_vs_pykt: {d / GERVET_TRAIN} not found; set KT_SHARED_DATA to the shared data directory")
    return d


def child_result(res: dict, out: Path) -> dict:
    r = json.loads(out.read_text())
    for k in ("wall", "rss_mb", "load_before", "load_after", "other_cores", "cpu_seconds"):
        r[k] = res[k]
    r["waited"] = res["waited_for_quiet_s"]
    return r


def thread_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(THREADS)
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------- peer venv
PEER_CHECK = textwrap.dedent(
    """
    import json
    out = {}
    try:
        import torch
        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
    except Exception as exc:  # noqa: BLE001
        out["torch_error"] = repr(exc)
    try:
        from importlib.metadata import version
        out["pykt"] = version("pykt-toolkit")
        from pykt.models.dkt import DKT  # noqa: F401
        from pykt.models.train_model import model_forward  # noqa: F401
        out["pykt_ok"] = True
    except Exception as exc:  # noqa: BLE001
        out["pykt_error"] = repr(exc)
        out["pykt_ok"] = False
    print(json.dumps(out))
    """
)


def peer_status(py: Path) -> dict:
    return harness.peer_status(py, PEER_CHECK, "pykt_ok")


def torch_ok(st: dict) -> bool:
    return str(st.get("torch", "")).split("+")[0] == TORCH_PIN.split("==")[1] and st.get("torch_cuda") is None


def ensure_peer(venv: Path) -> dict:
    """Create the pyKT venv if needed: CPU torch first, then pyKT without its dependency list."""
    py = venv / "bin" / "python"
    st = peer_status(py)
    if torch_ok(st) and st.get("pykt_ok"):
        return st
    print(f"setting up peer venv {venv} ({TORCH_PIN} CPU, {PYKT_PIN} --no-deps) ...", flush=True)
    if not py.exists():
        subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]

    def pip_run(args):
        r = subprocess.run(pip + args, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-2000:] + r.stderr[-4000:])
        return r.returncode == 0

    if not torch_ok(st):
        pip_run([TORCH_PIN])
        st = peer_status(py)
        if not torch_ok(st):
            sys.exit(f"dkt_vs_pykt: could not install a CPU {TORCH_PIN} in {venv}: {st}")
    # pyKT's requirements also list wandb (training-script logging only) and an
    # unpinned torch: install its import-time needs explicitly and pyKT with --no-deps.
    pip_run(PEER_DEPS)
    pip_run(["--no-deps", PYKT_PIN])
    st = peer_status(py)
    if not torch_ok(st):
        sys.exit(f"dkt_vs_pykt: installing pyKT changed torch in {venv}: {st}")
    if not st.get("pykt_ok"):
        print(
            f"note: pyKT is not importable in {venv} ({st.get('pykt_error') or st.get('error')}); "
            "falling back to a re-implementation of pyKT's DKT module",
            flush=True,
        )
    return st


PYKT_DRIVER = textwrap.dedent(
    r"""
    import json, resource, statistics, sys, time
    t_proc = time.perf_counter()
    import numpy as np
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, Dataset

    path, out_path, epochs, warmup, batch, hidden, dropout, window, min_chunk, lr, seed, threads = sys.argv[1:13]
    test_path = sys.argv[13] if len(sys.argv) > 13 else ""  # given: score the trained model on it (accuracy run)
    epochs, warmup, batch, hidden, window, min_chunk, seed, threads = map(
        int, (epochs, warmup, batch, hidden, window, min_chunk, seed, threads))
    dropout, lr = float(dropout), float(lr)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)

    try:
        from pykt.models.dkt import DKT
        from pykt.models.train_model import model_forward
        from pykt.datasets.data_loader import KTDataset
        impl = "pykt"
    except Exception as exc:  # noqa: BLE001  (fallback: pyKT's DKT and loop, re-implemented)
        impl = "reimplemented: " + repr(exc)
        from torch.nn import Dropout, Embedding, LSTM, Linear, Module
        from torch.nn.functional import binary_cross_entropy, one_hot

        class DKT(Module):
            def __init__(self, num_c, emb_size, dropout=0.1):
                super().__init__()
                self.model_name, self.num_c = "dkt", num_c
                self.interaction_emb = Embedding(num_c * 2, emb_size)
                self.lstm_layer = LSTM(emb_size, emb_size, batch_first=True)
                self.dropout_layer = Dropout(dropout)
                self.out_layer = Linear(emb_size, num_c)

            def forward(self, q, r):
                h, _ = self.lstm_layer(self.interaction_emb(q + self.num_c * r))
                return torch.sigmoid(self.out_layer(self.dropout_layer(h)))

        def model_forward(model, d):
            y = model(d["cseqs"].long(), d["rseqs"].long())
            y = (y * one_hot(d["shft_cseqs"].long(), model.num_c)).sum(-1)
            sm = d["smasks"]
            return binary_cross_entropy(torch.masked_select(y, sm).double(), torch.masked_select(d["shft_rseqs"], sm).double())

        class KTDataset(Dataset):
            def __len__(self):
                return len(self.dori["rseqs"])

            def __getitem__(self, index):
                m = self.dori["masks"][index]
                d = {}
                for key in self.dori:
                    if key in ("masks", "smasks"):
                        continue
                    if len(self.dori[key]) == 0:
                        d[key] = d["shft_" + key] = self.dori[key]
                        continue
                    d[key] = self.dori[key][index][:-1] * m
                    d["shft_" + key] = self.dori[key][index][1:] * m
                d["masks"], d["smasks"] = m, self.dori["smasks"][index]
                return d

    # ---- pyKT-style sequences (data_preprocess generate_sequences + KTDataset.__load_data__)
    pad_val = -1

    def pykt_dataset(file, kcs=None):
        # pyKT's in-memory dataset of one file: chunks of `window`, chunks < `min_chunk` dropped, padded with -1.
        df = pd.read_csv(file, sep="\t")
        df = df.sort_values(["user_id", "timestamp"], kind="mergesort")  # stable: file order breaks ties
        if kcs is None:
            kcs = np.sort(df["skill_id"].unique())
        unknown = int((~np.isin(df["skill_id"].to_numpy(), kcs)).sum())
        if unknown:
            sys.exit(f"{file}: {unknown} rows with a KC absent from the training file (not supported here)")
        c_all = np.searchsorted(kcs, df["skill_id"].to_numpy())
        r_all = df["correct"].to_numpy().astype(np.int64)
        users = df["user_id"].to_numpy()
        starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]])
        ends = np.r_[starts[1:], len(users)]
        cseqs, rseqs, smasks, offsets = [], [], [], []
        for s, e in zip(starts, ends):
            for a in range(s, e, window):
                b = min(a + window, e)
                n = b - a
                if n < min_chunk:
                    continue
                pad = [-1] * (window - n)
                cseqs.append(list(c_all[a:b]) + pad)
                rseqs.append(list(r_all[a:b]) + pad)
                smasks.append([1] * n + pad)
                offsets.append(a - s)  # position of the chunk's first step within the learner
        dori = {"qseqs": torch.LongTensor([]), "cseqs": torch.LongTensor(cseqs), "rseqs": torch.FloatTensor(rseqs),
                "tseqs": torch.LongTensor([]), "utseqs": torch.LongTensor([]), "smasks": torch.LongTensor(smasks)}
        dori["masks"] = (dori["cseqs"][:, :-1] != pad_val) * (dori["cseqs"][:, 1:] != pad_val)
        dori["smasks"] = dori["smasks"][:, 1:] != pad_val
        ds = KTDataset.__new__(KTDataset)  # KTDataset.__init__ builds torch.cuda tensors: unusable on CPU torch
        Dataset.__init__(ds)
        ds.dori, ds.input_type, ds.qtest = dori, ["concepts"], False
        return ds, kcs, np.asarray(offsets, dtype=np.int64), len(df)

    t_data = time.perf_counter()
    ds, kcs, _, n_rows = pykt_dataset(path)
    dori = ds.dori
    num_c = len(kcs)
    cseqs = dori["cseqs"]
    loader = DataLoader(ds, batch_size=batch, shuffle=True)
    data_seconds = time.perf_counter() - t_data
    n_scored = int(dori["smasks"].sum())
    n_real = int((dori["cseqs"] != pad_val).sum())

    model = DKT(num_c, hidden, dropout=dropout)
    opt = torch.optim.Adam(model.parameters(), lr)
    hist = []
    for ep in range(1, warmup + epochs + 1):
        scored, losses, load_s = 0, [], 0.0
        t0 = time.perf_counter()
        it = iter(loader)
        while True:
            tl = time.perf_counter()
            try:
                data = next(it)
            except StopIteration:
                break
            load_s += time.perf_counter() - tl
            model.train()                      # pyKT train_model's loop body
            loss = model_forward(model, data)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach().cpu().numpy())
            scored += int(data["smasks"].sum())
        sec = time.perf_counter() - t0
        hist.append({"epoch": ep, "seconds": sec, "scored": scored, "interactions_per_second": scored / sec,
                     "loader_seconds": load_s, "train_loss": float(np.mean(losses)), "warmup": ep <= warmup})
        print(json.dumps(hist[-1]), flush=True)
    timed = [h for h in hist if not h["warmup"]]
    test = None
    if test_path:
        # ---- test: pyKT's standard protocol (test_sequences: the same chunks of `window`, chunks < `min_chunk`
        # dropped, the first step of each chunk unscored), scored by pyKT's own evaluate() when importable.
        t_eval = time.perf_counter()
        tds, _, offsets, n_test_rows = pykt_dataset(test_path, kcs)
        tloader = DataLoader(tds, batch_size=batch, shuffle=False)
        official = None
        if impl == "pykt":
            from pykt.models.evaluate_model import evaluate
            auc_o, acc_o = evaluate(model, tloader, "dkt")
            official = {"auc": float(auc_o), "accuracy": float(acc_o)}
        # The same pass by hand (model.eval(), no_grad, masked next-KC probabilities) for RMSE and the
        # fingerprint of the scored positions.
        from sklearn import metrics as skm
        from torch.nn.functional import one_hot as _one_hot
        model.eval()
        ys, ps = [], []
        with torch.no_grad():
            for d in tloader:
                y = model(d["cseqs"].long(), d["rseqs"].long())
                y = (y * _one_hot(d["shft_cseqs"].long(), num_c)).sum(-1)
                ps.append(torch.masked_select(y, d["smasks"]).numpy())
                ys.append(torch.masked_select(d["shft_rseqs"], d["smasks"]).numpy())
        ys, ps = np.concatenate(ys).astype(np.float64), np.concatenate(ps).astype(np.float64)
        sm = tds.dori["smasks"].numpy()
        lab = tds.dori["rseqs"].numpy()[:, 1:]
        pos = offsets[:, None] + np.arange(1, window)[None, :]  # learner position of each scored step
        test = {
            "auc": float(skm.roc_auc_score(ys, ps)), "accuracy": float(np.mean((ps >= 0.5) == (ys == 1))),
            "rmse": float(np.sqrt(np.mean((ps - ys) ** 2))), "official": official,
            "n_scored": int(sm.sum()), "positives": int(lab[sm].sum()),
            "correct_x_position": int((lab[sm] * pos[sm]).sum()),
            "n_chunks": int(sm.shape[0]), "n_rows": int(n_test_rows), "eval_seconds": time.perf_counter() - t_eval,
        }
        if official is not None:
            test["auc"], test["accuracy"] = official["auc"], official["accuracy"]
        print(json.dumps({"test": test}), flush=True)
    json.dump({
        "impl": impl, "history": hist, "test": test,
        "interactions_per_second_median": statistics.median(h["interactions_per_second"] for h in timed),
        "interactions_per_second_total": sum(h["scored"] for h in timed) / sum(h["seconds"] for h in timed),
        "timed_seconds": sum(h["seconds"] for h in timed),
        "n_chunks": len(cseqs), "n_scored": n_scored, "n_real": n_real, "n_rows": int(n_rows), "num_c": num_c,
        "n_batches": len(loader), "computed_positions_per_epoch": len(cseqs) * (window - 1),
        "data_seconds": data_seconds, "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "torch": torch.__version__, "process_seconds": time.perf_counter() - t_proc,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, open(out_path, "w"))
    """
)


# --------------------------------------------------------------------------- kt
KT_DRIVER = textwrap.dedent(
    r"""
    import json, os, resource, statistics, sys, time
    t_proc = time.perf_counter()
    import jax
    import numpy as np
    import kt
    from kt.data.sequences import batches, build_sequences
    from kt.models.base import create

    path, out_path, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    test_path = sys.argv[4] if len(sys.argv) > 4 else ""  # given: score the trained model on it (accuracy run)
    t0 = time.perf_counter()
    data = kt.load(path)
    load_seconds = time.perf_counter() - t0
    # eval_mode only changes how predict() cuts the test learners (chunks, as pyKT's test_sequences).
    m = create("dkt", epochs=epochs, patience=100, **({"eval_mode": "chunk"} if test_path else {}))
    cfg = m.config
    # Work kt's loop does per epoch: packed rows (batching=pack, the default), or batches padded to a
    # length bucket with rows padded to a power of two.
    seqs = build_sequences(data.frame, window=cfg.window, min_len=cfg.min_chunk)
    computed, n_batches, shapes = 0, 0, set()
    for b in batches(seqs, cfg.batch_size, rng=np.random.default_rng(0), buckets=m._buckets(), batching=cfg.batching):
        n = b.mask.shape[0]
        rows = n if b.segment is not None else min(cfg.batch_size, 1 << max(n - 1, 0).bit_length())
        computed += rows * b.mask.shape[1]
        n_batches += 1
        shapes.add((rows, int(b.mask.shape[1])))
    lengths = seqs.mask.sum(1)
    t0 = time.perf_counter()
    m.fit(data, key=0)
    fit_seconds = time.perf_counter() - t0
    hist = m.meta["history"]
    for h in hist:
        h["scored"] = round(h["interactions_per_second"] * h["seconds"])
    steady = [h["interactions_per_second"] for h in hist[1:]]
    test = None
    if test_path:
        import polars as pl
        from kt import metrics
        t0 = time.perf_counter()
        tdata = kt.load(test_path, vocab=data.vocab)
        if tdata.stats.get("unknown_kcs", 0):
            sys.exit(f"{test_path}: {tdata.stats['unknown_kcs']} rows with a KC absent from the training file")
        preds = m.predict(tdata)  # eval_mode=chunk: learners cut into chunks of `window`, state reset per chunk
        W, MIN = cfg.window, cfg.min_chunk
        # pyKT's test protocol: chunks shorter than min_chunk are dropped and the first step of every chunk
        # is unscored (kt's chunk mode predicts it from the bias alone; it is left out here).
        f = preds.with_columns(pl.len().over("user_id").alias("_n")).with_columns(
            (pl.min_horizontal(pl.lit(W), pl.col("_n") - (pl.col("position") // W) * W)).alias("_chunk_len"))
        s = f.filter((pl.col("position") % W != 0) & (pl.col("_chunk_len") >= MIN))
        y, p = s["correct"].to_numpy().astype(np.float64), s["prob"].to_numpy()
        test = {
            "auc": metrics.auc(y, p), "accuracy": metrics.accuracy(y, p), "rmse": metrics.rmse(y, p),
            "n_scored": int(len(y)), "positives": int(y.sum()),
            "correct_x_position": int((y * s["position"].to_numpy()).sum()),
            "n_chunks": int((f["position"] % W == 0).sum() - ((f["position"] % W == 0) & (f["_chunk_len"] < MIN)).sum()),
            "n_rows": int(tdata.n_rows), "eval_mode": m.meta.get("eval_mode"),
            "eval_seconds": time.perf_counter() - t0,
        }
        print(json.dumps({"test": test}), flush=True)
    json.dump({
        "history": hist, "test": test,
        "interactions_per_second_median": statistics.median(steady) if steady else None,
        "timed_seconds": sum(h["seconds"] for h in hist[1:]),
        "fit_seconds": fit_seconds, "load_seconds": load_seconds,
        "n_rows": int(data.n_rows), "num_c": len(m.vocab.skill_id), "n_chunks": int(seqs.mask.shape[0]),
        "n_scored": int(np.maximum(lengths - 1, 0).sum()), "n_real": int(lengths.sum()),
        "n_batches": n_batches, "computed_positions_per_epoch": int(computed), "batch_shapes": sorted(shapes),
        "buckets": list(m._buckets()),
        "config": {k: getattr(cfg, k) for k in ("hidden", "dropout", "lr", "batch_size", "window", "min_chunk", "batching")},
        "jax": jax.__version__, "kt": kt.__version__, "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "process_seconds": time.perf_counter() - t_proc,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, open(out_path, "w"))
    """
)

KT_MEMORY = textwrap.dedent(
    r"""
    import json, resource, sys, time
    t_proc = time.perf_counter()
    import kt
    from kt.eval.protocols import next_step
    from kt.models.base import create

    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # noqa: E731
    train_path, test_path, out_path = sys.argv[1:4]
    rss_import = rss()
    train = kt.load(train_path)
    test = kt.load(test_path, vocab=train.vocab)
    rss_load = rss()
    m = create("dkt", epochs=1, patience=100)
    t0 = time.perf_counter()
    m.fit(train, key=0)
    fit_seconds = time.perf_counter() - t0
    rss_fit = rss()
    t0 = time.perf_counter()
    ev = next_step(m, test, breakdown=False)
    eval_seconds = time.perf_counter() - t0
    json.dump({
        "train_rows": int(train.n_rows), "test_rows": int(test.n_rows), "train_learners": int(train.n_users),
        "num_c": len(m.vocab.skill_id), "train_windows": m.meta.get("train_windows"),
        "fit_seconds": fit_seconds, "eval_seconds": eval_seconds, "history": m.meta["history"],
        "auc": ev.get("auc"), "n_scored_test": ev.get("n"), "eval_window": ev.get("window"),
        "peak_rss_mb": {"after_import": rss_import, "after_load": rss_load, "after_fit": rss_fit, "end": rss()},
        "process_seconds": time.perf_counter() - t_proc,
    }, open(out_path, "w"))
    """
)


def median_run(runs: list[dict]) -> dict:
    """The run with the median steady-state throughput (lower middle for an even count)."""
    return sorted(runs, key=lambda r: r["interactions_per_second_median"])[(len(runs) - 1) // 2]


def run_peer(venv: Path, train: Path, work: Path, epochs: int, seed: int, *, warmup: int = 1, test: Path | None = None) -> dict:
    """pyKT's DKT in the peer venv: ``warmup`` + ``epochs`` epochs on ``train``; with ``test``, score it there."""
    driver = work / "pykt_driver.py"
    driver.write_text(PYKT_DRIVER)
    out = work / "pykt_out.json"
    cmd = [
        venv / "bin" / "python",
        driver,
        train,
        out,
        epochs,
        warmup,
        BATCH,
        HIDDEN,
        DROPOUT,
        WINDOW,
        MIN_CHUNK,
        LR,
        seed,
        THREADS,
    ] + ([test] if test else [])
    return child_result(check(run_proc(cmd, env=thread_env(), cwd=work), "pyKT driver"), out)


def run_kt(train: Path, work: Path, epochs: int, *, test: Path | None = None) -> dict:
    """kt's DKT: ``epochs`` epochs in total on ``train`` (the first compiles); with ``test``, score it there."""
    driver = work / "kt_driver.py"
    driver.write_text(KT_DRIVER)
    out = work / "kt_out.json"
    cmd = [sys.executable, driver, train, out, epochs] + ([test] if test else [])
    return child_result(check(run_proc(cmd, env=thread_env(), cwd=work), "kt DKT fit"), out)


def run_memory(train: Path, test: Path, work: Path) -> dict:
    driver = work / "kt_memory.py"
    driver.write_text(KT_MEMORY)
    out = work / "kt_memory.json"
    res = check(run_proc([sys.executable, driver, train, test, out], env=thread_env(), cwd=work), "kt DKT assist2015")
    return child_result(res, out)


def first_learners(src: Path, dst: Path, n: int, kcs: set[str] | None = None) -> tuple[Path, set[str], int]:
    """The rows of the first ``n`` learners (file order) of a tab-separated (gzipped) file, for smoke runs.

    With ``kcs``, rows whose ``skill_id`` is not in it are dropped too (a test subset keeps only the
    training subset's KCs). Returns the new file, its KCs and the number of rows dropped for their KC.
    """
    import gzip  # noqa: PLC0415

    opener = gzip.open if src.suffix == ".gz" else open
    seen: set[str] = set()
    kept: set[str] = set()
    dropped = 0
    with opener(src, "rt") as fi, open(dst, "w") as fo:
        header = fi.readline()
        fo.write(header)
        names = header.rstrip("\n").split("\t")
        ucol, kcol = names.index("user_id"), names.index("skill_id")
        for line in fi:
            fields = line.rstrip("\n").split("\t")
            u = fields[ucol]
            if u not in seen:
                if len(seen) == n:
                    continue
                seen.add(u)
            if kcs is not None and fields[kcol] not in kcs:
                dropped += 1
                continue
            kept.add(fields[kcol])
            fo.write(line)
    return dst, kept, dropped


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--epochs", type=int, default=2, help="timed steady-state epochs per side, after 1 warm-up/compile epoch (default 2)"
    )
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="fresh pyKT and kt processes per side, alternating; the median throughput is kept (default 3)",
    )
    ap.add_argument("--skip-peer", action="store_true", help="kt only (no pyKT venv, no ratio)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the assist2015 peak-RSS run")
    ap.add_argument("--seed", type=int, default=0, help="torch seed of the pyKT run (kt always uses key 0)")
    ap.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"pyKT venv (default {PEER_VENV})")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each timed process, wait up to this many seconds for other CPU use < 0.2 cores (0: don't wait); default 60",
    )
    ap.add_argument(
        "--acc-epochs",
        type=int,
        default=ACC_EPOCHS,
        help=f"accuracy comparison: epochs each side trains on the whole train file before the test "
        f"file is scored (fixed, no early stopping; default {ACC_EPOCHS})",
    )
    ap.add_argument("--skip-accuracy", action="store_true", help="skip the accuracy comparison (train -> test)")
    ap.add_argument(
        "--max-learners", type=int, default=None, help="smoke runs only: use the first N learners of the train and test files"
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "dkt_vs_pykt.json", help="result JSON")
    args = ap.parse_args(argv)
    if args.epochs < 1 or args.repeats < 1 or args.acc_epochs < 1:
        ap.error("--epochs, --repeats and --acc-epochs must be >= 1")
    if args.max_learners is not None and args.max_learners < 1:
        ap.error("--max-learners must be >= 1")
    WAIT_QUIET["limit"] = max(0.0, args.wait_quiet)

    data = shared_data_dir()
    train, test = data / GERVET_TRAIN, data / GERVET_TEST
    a15_train, a15_test = data / A2015_TRAIN, data / A2015_TEST
    load_before = loadavg()

    import jax  # noqa: PLC0415  (versions only)

    import kt  # noqa: PLC0415

    peer = None if args.skip_peer else ensure_peer(args.peer_venv)
    work = Path(tempfile.mkdtemp(prefix="kt-bench-dkt-"))
    dataset = "assist2009/gervet"
    try:
        if args.max_learners:  # smoke runs: the same subset files feed both sides
            train, kcs, _ = first_learners(train, work / "train_subset.tsv", args.max_learners)
            test, _, dropped = first_learners(test, work / "test_subset.tsv", args.max_learners, kcs)
            dataset += (
                f" (first {args.max_learners} learners of each file; {dropped} test rows with a KC "
                f"outside the training subset dropped)"
            )
        py_runs, k_runs = [], []
        for rep in range(1, args.repeats + 1):
            if peer is not None:
                print(
                    f"[{rep}/{args.repeats}] pyKT {peer.get('pykt')} DKT (torch {peer.get('torch')}, {THREADS} "
                    f"threads): 1 warm-up + {args.epochs} timed epochs ...",
                    flush=True,
                )
                py_runs.append(run_peer(args.peer_venv, train, work, args.epochs, args.seed))
                print(f"  {py_runs[-1]['interactions_per_second_median']:,.0f} scored interactions/s", flush=True)
            print(f"[{rep}/{args.repeats}] kt dkt: 1 compile + {args.epochs} timed epochs ...", flush=True)
            k_runs.append(run_kt(train, work, 1 + args.epochs))
            print(f"  {k_runs[-1]['interactions_per_second_median']:,.0f} scored interactions/s", flush=True)
        # The repeat with the median throughput stands for each side (its details go into the row).
        k = median_run(k_runs)
        py = median_run(py_runs) if py_runs else None
        mem = None
        if not args.skip_memory:
            if a15_train.exists() and a15_test.exists():
                print("kt dkt on assist2015 (1 epoch, full train file, evaluate on test) ...", flush=True)
                mem = run_memory(a15_train, a15_test, work)
            else:
                print(f"note: {a15_train} or {a15_test} not found; skipping the memory run", flush=True)
        py_acc = k_acc = None
        if not args.skip_accuracy:
            # Accuracy, measured in the same run: each side trains --acc-epochs epochs on the whole train file
            # (same settings as above, no validation, no early stopping) and scores the test file under
            # pyKT's protocol (chunks of WINDOW, first step of each chunk unscored).
            if peer is not None:
                print(f"accuracy: pyKT DKT, {args.acc_epochs} epochs on train, then test ...", flush=True)
                py_acc = run_peer(args.peer_venv, train, work, args.acc_epochs, args.seed, warmup=0, test=test)
                print(
                    f"  test AUC {py_acc['test']['auc']:.4f}, accuracy {py_acc['test']['accuracy']:.4f} "
                    f"({py_acc['test']['n_scored']:,} scored)",
                    flush=True,
                )
            print(f"accuracy: kt dkt, {args.acc_epochs} epochs on train, then test (eval_mode=chunk) ...", flush=True)
            k_acc = run_kt(train, work, args.acc_epochs, test=test)
            print(
                f"  test AUC {k_acc['test']['auc']:.4f}, accuracy {k_acc['test']['accuracy']:.4f} "
                f"({k_acc['test']['n_scored']:,} scored)",
                flush=True,
            )
        load_after = loadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    k_ips = k["interactions_per_second_median"]
    k_pad = k["computed_positions_per_epoch"] / max(k["n_scored"], 1)
    kt_epochs = ", ".join(f"{h['interactions_per_second']:,.0f}" for h in k["history"])
    split = (
        "throughput: train (all learners, no validation); accuracy: train->test"
        if k_acc
        else "train (all learners, no validation)"
    )

    def acc_fields(a: dict | None) -> dict:
        """auc/accuracy/rmse of an accuracy run for a row (None without one)."""
        t = a["test"] if a else {}
        return {
            "auc": t.get("auc"),
            "accuracy": t.get("accuracy"),
            "rmse": t.get("rmse"),
            **(
                {
                    "n_scored_test": t["n_scored"],
                    "acc_epochs": args.acc_epochs,
                    "acc_train_seconds": sum(h["seconds"] for h in a["history"]),
                    "acc_peak_rss_mb": a["rss_mb"],
                }
                if a
                else {}
            ),
        }

    def acc_note(a: dict | None, how: str) -> str:
        if not a:
            return ""
        t = a["test"]
        return (
            f" Accuracy (auc/accuracy/rmse): a separate fresh process trained {args.acc_epochs} epoch(s) on the "
            f"whole train file with the same settings (no validation, no early stopping; "
            f"{sum(h['seconds'] for h in a['history']):.0f} s of training, peak RSS {a['rss_mb']:.0f} MB), then "
            f"scored the test file ({t['n_rows']:,} rows) under pyKT's test protocol: learners cut into chunks "
            f"of {WINDOW}, chunks < {MIN_CHUNK} dropped, the first step of each chunk unscored -> "
            f"{t['n_chunks']} chunks, {t['n_scored']:,} scored positions ({t['positives']:,} correct); {how}."
        )

    rows = [
        {
            "dataset": dataset,
            "split": split,
            "model": "dkt",
            "impl": "kt",
            **acc_fields(k_acc),
            "train_seconds": k["timed_seconds"],
            "interactions_per_second": k_ips,
            "peak_rss_mb": k["rss_mb"],
            "notes": (
                f"steady state: median of epochs 2..{len(k['history'])} of meta['history'] interactions_per_second "
                f"(scored training positions / seconds of the epoch's train steps; epoch 1 includes JAX compilation); "
                f"per epoch {kt_epochs}/s; train_seconds = those {len(k['history']) - 1} epochs. "
                f"create('dkt', epochs={len(k['history'])}, patience=100).fit(data, key=0), no validation; "
                f"hidden {k['config']['hidden']}, dropout {k['config']['dropout']}, batch {k['config']['batch_size']}, "
                f"chunks of {k['config']['window']} (drop < {k['config']['min_chunk']}), Adam {k['config']['lr']}. "
                f"{k['n_chunks']} chunks, {k['n_scored']:,} scored positions per epoch. "
                + (
                    f"Batches are {k['config']['batch_size']} uniformly drawn chunks, as in pyKT, packed side by side into "
                    f"rows of {k['config']['window']} steps (LSTM state restarting at each chunk; row count bucketed to "
                    f"two sizes per octave): "
                    if k["config"].get("batching") == "pack"
                    else f"kt pads each batch to a length bucket {k['buckets']} and its rows to a power of two "
                    f"(batching={k['config'].get('batching', 'bucket')}): "
                )
                + f"{k['computed_positions_per_epoch']:,} positions computed per epoch ({k_pad:.2f}x the scored ones) in "
                f"{k['n_batches']} batches of {len(k['batch_shapes'])} shapes -- less padding, not faster kernels, is "
                f"where the speed-up comes from. Peak RSS of the whole process (load + fit). JAX {k['jax']} on "
                f"{k['jax_devices']}."
                + f" Median of {len(k_runs)} fresh processes: "
                + ", ".join(f"{r['interactions_per_second_median']:,.0f}" for r in k_runs)
                + "/s; details from the median run."
                + busy_note(*((f"kt run {i + 1}", r) for i, r in enumerate(k_runs)))
                + acc_note(
                    k_acc,
                    "predict() with eval_mode=chunk (state reset per chunk), the chunk starts and the "
                    "positions of dropped chunks left out, kt.metrics",
                )
                + (busy_note(("kt accuracy run", k_acc)) if k_acc else "")
            ),
        }
    ]
    if py:
        pykt_label = (
            "pyKT 0.0.38 DKT module + model_forward"
            if py["impl"] == "pykt"
            else "pyKT DKT architecture re-implemented (pykt-toolkit not importable: " + py["impl"] + ")"
        )
        py_ips = py["interactions_per_second_median"]
        py_pad = py["computed_positions_per_epoch"] / max(py["n_scored"], 1)
        py_epochs = ", ".join(f"{h['interactions_per_second']:,.0f}" for h in py["history"])
        rows.append(
            {
                "dataset": dataset,
                "split": split,
                "model": "dkt",
                "impl": "pykt",
                **acc_fields(py_acc),
                "train_seconds": py["timed_seconds"],
                "interactions_per_second": py_ips,
                "peak_rss_mb": py["rss_mb"],
                "notes": (
                    f"{pykt_label}; torch {py['torch']} CPU, {py['torch_threads']} threads. Steady state: median of "
                    f"{args.epochs} epochs after 1 warm-up epoch (per epoch incl. warm-up: {py_epochs}/s), each timed "
                    f"whole with perf_counter: DataLoader(batch_size={BATCH}, shuffle=True) over pyKT's KTDataset "
                    f"__getitem__ (loading {statistics.median(h['loader_seconds'] for h in py['history'][1:]):.2f} s "
                    f"of a {statistics.median(h['seconds'] for h in py['history'][1:]):.2f} s epoch), pyKT's "
                    f"model_forward (one-hot next-KC selection, masked float64 BCE), zero_grad/backward/Adam "
                    f"{LR} step; no validation. emb_size {HIDDEN}, dropout {DROPOUT}; sequences cut into "
                    f"non-overlapping chunks of {WINDOW} (drop < {MIN_CHUNK}) and every chunk padded to {WINDOW} as in "
                    f"pyKT: {py['n_chunks']} chunks, {py['n_scored']:,} scored positions, "
                    f"{py['computed_positions_per_epoch']:,} positions computed per epoch ({py_pad:.2f}x the scored "
                    f"ones). KTDataset.__init__ is bypassed (it builds torch.cuda tensors); its dori dict is built "
                    f"the same way. Peak RSS of the whole process."
                    + f" Median of {len(py_runs)} fresh processes: "
                    + ", ".join(f"{r['interactions_per_second_median']:,.0f}" for r in py_runs)
                    + "/s; details from the median run."
                    + busy_note(*((f"pyKT run {i + 1}", r) for i, r in enumerate(py_runs)))
                    + acc_note(
                        py_acc,
                        (
                            "pykt.models.evaluate_model.evaluate (model.eval(), DataLoader(batch_size="
                            f"{BATCH}, shuffle=False), masked next-KC probabilities, sklearn AUC, "
                            "accuracy at 0.5); RMSE from the same predictions"
                        )
                        if py_acc and py_acc["test"].get("official")
                        else "the same masked next-KC probabilities, sklearn",
                    )
                    + (busy_note(("pyKT accuracy run", py_acc)) if py_acc else "")
                ),
            }
        )
    if mem:
        pk = mem["peak_rss_mb"]
        ok = mem["rss_mb"] < TARGET_RSS_MB
        rows.append(
            {
                "dataset": "assist2015/dkvmn",
                "split": "train->test",
                "model": "dkt",
                "impl": "kt",
                "auc": mem["auc"],
                "accuracy": None,
                "rmse": None,
                "train_seconds": mem["fit_seconds"],
                "interactions_per_second": mem["history"][0].get("interactions_per_second"),
                "peak_rss_mb": mem["rss_mb"],
                "notes": (
                    f"memory check: 1 epoch on the full train file ({mem['train_rows']:,} rows, {mem['train_learners']:,} "
                    f"learners, {mem['num_c']} KCs, {mem['train_windows']} chunks; compile included), then "
                    f"next_step on test ({mem['test_rows']:,} rows, {mem['n_scored_test']:,} scored, eval mode "
                    f"{mem['eval_window']}, {mem['eval_seconds']:.1f} s); AUC after 1 epoch only. Peak RSS of the "
                    f"whole process {mem['rss_mb']:.0f} MB (in-process: after import {pk['after_import']:.0f}, load "
                    f"{pk['after_load']:.0f}, fit {pk['after_fit']:.0f}, end {pk['end']:.0f} MB); acceptance < "
                    f"{TARGET_RSS_MB} MB -> {'ok' if ok else 'FAIL'}" + busy_note(("memory run", mem))
                ),
            }
        )

    steps = {
        "kt": k,
        **({"pykt": py} if py else {}),
        **({"kt_assist2015": mem} if mem else {}),
        **({"pykt_accuracy": py_acc} if py_acc else {}),
        **({"kt_accuracy": k_acc} if k_acc else {}),
    }
    result = {
        "machine": machine(),
        "date": _dt.date.today().isoformat(),
        "versions": {
            "kt": kt.__version__,
            "jax": jax.__version__,
            "python": sys.version.split()[0],
            "torch": py["torch"] if py else None,
            "pykt": (peer.get("pykt") if py["impl"] == "pykt" else "pyKT DKT architecture re-implemented") if py else None,
            "peer": (f"pyKT {peer.get('pykt')}" if py["impl"] == "pykt" else "pyKT DKT architecture re-implemented")
            if py
            else None,
        },
        "settings": {
            "batch_size": BATCH,
            "hidden": HIDDEN,
            "dropout": DROPOUT,
            "window": WINDOW,
            "min_chunk": MIN_CHUNK,
            "lr": LR,
            "threads": THREADS,
            "timed_epochs": args.epochs,
            "warmup_epochs": 1,
            "acc_epochs": None if args.skip_accuracy else args.acc_epochs,
            "dataset": dataset,
            "max_learners": args.max_learners,
            "note": "OMP/MKL/OPENBLAS_NUM_THREADS=2 for both children; torch.set_num_threads(2); JAX uses "
            "its default CPU thread pool on the 2-core machine",
        },
        "load_average": {
            "before": load_before,
            "after": load_after,
            "before_each_step": {n: s["load_before"] for n, s in steps.items()},
            "after_each_step": {n: s["load_after"] for n, s in steps.items()},
            "note": "1/5/15-min load averages of the 2-core machine (they include the timed child itself)",
        },
        "other_processes_cores": {
            **{n: round(s["other_cores"], 3) for n, s in steps.items()},
            "each_repeat": {
                "kt": [round(r["other_cores"], 3) for r in k_runs],
                **({"pykt": [round(r["other_cores"], 3) for r in py_runs]} if py_runs else {}),
            },
            "waited_for_quiet_seconds": {n: s["waited"] for n, s in steps.items()},
            "note": "average cores used by processes other than the timed child while it ran (/proc/stat minus the "
            "child's CPU); > 0.2 inflates timings",
        },
        "rows": rows,
        "per_epoch": {n: s["history"] for n, s in steps.items()},
        "repeats": {
            "kt": [r["interactions_per_second_median"] for r in k_runs],
            **(
                {
                    "pykt": [r["interactions_per_second_median"] for r in py_runs],
                    "ratio_per_repeat": [
                        a["interactions_per_second_median"] / b["interactions_per_second_median"] for a, b in zip(k_runs, py_runs)
                    ],
                }
                if py_runs
                else {}
            ),
            "note": "steady-state scored interactions/s of each fresh process, in run order (pyKT and kt alternate); "
            "rows and ratios use the median; per_epoch shows the median run",
        },
        "work_per_epoch": {
            "kt": {
                "chunks": k["n_chunks"],
                "scored": k["n_scored"],
                "computed_positions": k["computed_positions_per_epoch"],
                "batches": k["n_batches"],
                "batch_shapes": k["batch_shapes"],
            },
            **(
                {
                    "pykt": {
                        "chunks": py["n_chunks"],
                        "scored": py["n_scored"],
                        "computed_positions": py["computed_positions_per_epoch"],
                        "batches": py["n_batches"],
                    }
                }
                if py
                else {}
            ),
            "note": "computed_positions = padded batch rows x padded length summed over the epoch's batches "
            "(pyKT feeds 199 positions per chunk: inputs 1..199, targets 2..200)",
        },
    }
    if py:
        ratio = k_ips / py_ips
        rep_ratios = [a["interactions_per_second_median"] / b["interactions_per_second_median"] for a, b in zip(k_runs, py_runs)]
        result["ratios"] = {
            "kt_over_pykt": ratio,
            "target": TARGET_RATIO,
            "ok": ratio >= TARGET_RATIO,
            "scored_positions_agree": k["n_scored"] == py["n_scored"],
            "min_over_repeats": min(rep_ratios),
            "max_over_repeats": max(rep_ratios),
            "note": "steady-state scored interactions/s (kt: median of epochs 2..; pyKT: median of the timed epochs), "
            "median over the repeats of each side, same run of the script",
        }
    if k_acc:
        kt_t = k_acc["test"]
        py_t = py_acc["test"] if py_acc else None
        fp = ("n_scored", "positives", "correct_x_position")
        result["accuracy"] = {
            "epochs": args.acc_epochs,
            "train": "whole train file, no validation, no early stopping",
            "protocol": f"pyKT test_sequences: learners cut into non-overlapping chunks of {WINDOW} from their first "
            f"attempt (history reset per chunk), chunks < {MIN_CHUNK} dropped, first step of each chunk "
            "unscored; global AUC, accuracy at p >= 0.5",
            "kt": kt_t,
            **({"pykt": py_t} if py_t else {}),
            "fingerprint_fields": list(fp),
            **({"scored_positions_agree": all(kt_t[f] == py_t[f] for f in fp)} if py_t else {}),
            "note": "fingerprint: number of scored positions, their correct labels, and sum of label x position in "
            "the learner over them; equal on both sides = the same positions were scored",
        }
        if py_t:
            result["deltas"] = {
                "auc_kt_minus_pykt": kt_t["auc"] - py_t["auc"],
                "accuracy_kt_minus_pykt": kt_t["accuracy"] - py_t["accuracy"],
                "rmse_kt_minus_pykt": kt_t["rmse"] - py_t["rmse"],
                "n_scored_test": {"kt": kt_t["n_scored"], "pykt": py_t["n_scored"]},
                "scored_positions_agree": result["accuracy"]["scored_positions_agree"],
                "epochs": args.acc_epochs,
                "note": "test metrics of the accuracy runs of this script (same run, same split, same scored positions)",
            }
    if mem:
        result["memory"] = {
            "assist2015_peak_rss_mb": mem["rss_mb"],
            "target_mb": TARGET_RSS_MB,
            "ok": mem["rss_mb"] < TARGET_RSS_MB,
            "in_process": mem["peak_rss_mb"],
        }

    from kt.atomic import write_text

    write_text(args.out, json.dumps(result, indent=1) + "\n")

    # ---- table
    print()
    print(
        f"DKT training throughput on assist2009/gervet train ({k['n_rows']:,} rows, {k['num_c']} KCs, "
        f"{k['n_scored']:,} scored positions/epoch); {result['machine']}; load avg before {load_before}, after {load_after}"
    )
    hdr = f"{'impl':<7}{'scored int/s':>14}{'timed s':>9}{'computed/scored':>17}{'RSS MB':>8}  per epoch (first = warm-up)"
    print(hdr)
    print("-" * len(hdr))
    print(f"{'kt':<7}{k_ips:>14,.0f}{k['timed_seconds']:>9.2f}{k_pad:>17.2f}{k['rss_mb']:>8.0f}  {kt_epochs}")
    if py:
        print(
            f"{'pyKT':<7}{py_ips:>14,.0f}{py['timed_seconds']:>9.2f}{py_pad:>17.2f}{py['rss_mb']:>8.0f}  {py_epochs}"
            + ("" if py["impl"] == "pykt" else "  (re-implemented)")
        )
        r = result["ratios"]
        print()
        print(
            f"kt / pyKT: {r['kt_over_pykt']:.2f}x (target >= {TARGET_RATIO:.0f}x: {'ok' if r['ok'] else 'FAIL'}); "
            f"per repeat {r['min_over_repeats']:.2f}-{r['max_over_repeats']:.2f}x; "
            f"scored positions agree: {r['scored_positions_agree']}"
        )
    if len(k_runs) > 1:
        print(
            "repeats (scored int/s): kt "
            + ", ".join(f"{r['interactions_per_second_median']:,.0f}" for r in k_runs)
            + ("; pyKT " + ", ".join(f"{r['interactions_per_second_median']:,.0f}" for r in py_runs) if py_runs else "")
        )
    if mem:
        print(
            f"kt dkt on assist2015 ({mem['train_rows']:,} train rows, 1 epoch + next_step on test): peak RSS "
            f"{mem['rss_mb']:.0f} MB ({'ok' if result['memory']['ok'] else 'FAIL'} < {TARGET_RSS_MB} MB), "
            f"fit {mem['fit_seconds']:.1f} s, test AUC after 1 epoch {mem['auc'] if mem['auc'] is None else round(mem['auc'], 4)}"
        )
    if k_acc:
        a = result["accuracy"]
        print(
            f"test accuracy after {args.acc_epochs} epochs (pyKT chunk protocol): kt AUC {a['kt']['auc']:.4f} "
            f"acc {a['kt']['accuracy']:.4f} ({a['kt']['n_scored']:,} scored)"
            + (
                f"; pyKT AUC {a['pykt']['auc']:.4f} acc {a['pykt']['accuracy']:.4f} ({a['pykt']['n_scored']:,} "
                f"scored); delta kt - pyKT: AUC {result['deltas']['auc_kt_minus_pykt']:+.4f}, accuracy "
                f"{result['deltas']['accuracy_kt_minus_pykt']:+.4f}; same scored positions: "
                f"{a['scored_positions_agree']}"
                if "pykt" in a
                else ""
            )
        )
    oc = result["other_processes_cores"]
    print(
        "other processes' average core use during each timed step: "
        + ", ".join(f"{n} {v:.2f}" for n, v in oc.items() if isinstance(v, float))
        + ("  (> 0.2: timings inflated)" if any(v > 0.2 for v in oc.values() if isinstance(v, float)) else "")
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
