"""BKT benchmark: kt's ``bkt`` against pyBKT 1.4.1 (C++ core) on assist2009/gervet.

Issue acceptance (see ``shared/spec/BKT.md``, "Tests that prove it" 7):

* AUC on the Gervet assist09 test split within 0.003 of pyBKT, measured in
  the same run of this script (pyBKT convention: every test row is scored,
  including each learner's first attempt);
* per-KC parameters (prior/learn/guess/slip) within 0.02 of pyBKT for KCs
  with >= 100 distinct training learners (EM restarts may land in different
  local optima: the script counts and lists the KCs that exceed 0.02 and
  says, from a float64 forward pass over the training data, which of the two
  parameter sets has the higher log-likelihood);
* speed: pyBKT's ``fit`` (fit only) against kt's whole ``kt train`` process
  (import + data loading + JAX compilation + EM + save);
* peak RSS of each process; kt on assist2012 (560k rows) under 2 GB.

What runs, each in its own subprocess (peak RSS per child from ``os.wait4``):

1. pyBKT in a peer venv (``/tmp/kt-peer-pybkt``, created if missing with
   numpy 1.26.4, pandas 2.2.3, scikit-learn 1.5.2, pyBKT 1.4.1). The script
   checks that pyBKT's compiled ``E_step`` extension is the one used (1.4.1
   silently installs its pure-Python fallback when the C++ build fails, which
   is ~150x slower). A generated driver times ``model.fit`` with
   ``time.perf_counter`` (fit only; median of ``--repeats``), predicts the
   test split, scores all rows with scikit-learn and dumps ``model.params()``.
   pyBKT reads CSVs written here with columns ``user_id, skill_name,
   correct, order_id`` (order_id = row number, so pyBKT keeps file order).
2. ``kt train TRAIN --model bkt --valid-frac 0 --seed 0``, timed as whole
   processes (wall clock), cold: each gets a fresh ``HOME`` /
   ``XDG_CACHE_HOME`` (and no ``JAX_COMPILATION_CACHE_DIR``), so it is cold
   even though kt keeps a persistent JAX compilation cache under the user's
   cache directory. Steps 1 and 2 alternate ``--rounds`` times (default 3)
   so that both see the same machine; medians are compared. Then one more
   ``kt train`` in the median cold run's home shows what the cache saves.
   Files that appear in that fresh home are reported.
3. ``kt evaluate DIR TEST --include-first --json`` and ``kt export-params``.
4. Steady-state EM speed: one kt process fits three times on the same data;
   fits 2-3 reuse the compiled kernel. ``em_iterations_per_second`` = EM
   iterations the loop ran (``meta['fit']['max_iterations']``) / their median
   seconds (every iteration is one E+M step over the KC x restart pairs still
   iterating); the lane engine's counters (kernel calls, lane-steps) are kept.
   The same process then builds and writes ``graph.json`` as ``kt train`` does
   (``graph_for`` + ``to_json`` + write; three times, the first importing
   ``kt.graph``): the graph's seconds and their share of the cold ``kt train``.
5. kt only on ``assist2012_dktplus_test/A2012_skill_id_test.csv.gz``
   (3-line, ~560k rows): wall time and peak RSS.

Usage::

    /work/venv/bin/python bench/bkt_vs_pybkt.py              # everything
    /work/venv/bin/python bench/bkt_vs_pybkt.py --skip-peer  # kt only
    /work/venv/bin/python bench/bkt_vs_pybkt.py --rounds 5   # 5 alternating pyBKT / cold kt rounds

The shared data directory is ``$KT_SHARED_DATA`` or ``<repo>/../shared/data``.
Other processes may share the machine's cores: the load average before and
after the measurements is recorded in the JSON.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import gzip
import json
import math
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

PEER_VENV = Path("/tmp/kt-peer-pybkt")
PEER_PINS = ["numpy==1.26.4", "pandas==2.2.3", "scikit-learn==1.5.2"]
PEER_PKG = "pyBKT==1.4.1"
GERVET = "assist2009/gervet"
A2012 = "assist2012_dktplus_test/A2012_skill_id_test.csv.gz"
PARAMS = ("prior", "learn", "guess", "slip")
PYBKT_PARAM = {"prior": "prior", "learns": "learn", "guesses": "guess", "slips": "slip", "forgets": "forget"}
MIN_LEARNERS = 100
TARGET_AUC_DELTA = 0.003
TARGET_PARAM_DIFF = 0.02
TARGET_RSS_MB = 2048


# --------------------------------------------------------------------------- helpers
def shared_data_dir() -> Path:
    env = os.environ.get("KT_SHARED_DATA")
    d = Path(env) if env else REPO.parent / "shared" / "data"
    need = [d / GERVET / "preprocessed_data_train.csv.gz", d / GERVET / "preprocessed_data_test.csv.gz"]
    missing = [str(p) for p in need if not p.exists()]
    if missing:
        sys.exit(
            "bkt_vs_pybkt: shared data not found: " + ", ".join(missing) + "\n"
            "Set KT_SHARED_DATA to the shared data directory (the one holding DATA.md)."
        )
    return d


def kt_executable() -> Path:
    cand = Path(sys.executable).parent / "kt"
    if cand.exists():
        return cand
    found = shutil.which("kt")
    if not found:
        sys.exit("bkt_vs_pybkt: the `kt` command was not found; run with the venv that has kt installed")
    return Path(found)


def read_tsv5(path: Path) -> list[dict]:
    with gzip.open(path, "rt", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def fmt(x, nd=4):
    if x is None:
        return "-"
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        return f"{x:.{nd}f}"
    return str(x)


# --------------------------------------------------------------------------- peer venv
PEER_CHECK = textwrap.dedent(
    """
    import json, importlib
    import numpy, pandas, scipy, sklearn
    out = {"numpy": numpy.__version__, "pandas": pandas.__version__, "sklearn": sklearn.__version__,
           "scipy": scipy.__version__}
    try:
        from importlib.metadata import version
        out["pyBKT"] = version("pyBKT")
        E = importlib.import_module("pyBKT.fit.E_step")
        out["E_step"] = getattr(E, "__file__", "")
        out["compiled"] = out["E_step"].endswith((".so", ".pyd")) and hasattr(E, "run")
        from pyBKT.fit import EM_fit
        out["EM_fit_uses_compiled"] = EM_fit.E_step is E
    except Exception as exc:  # noqa: BLE001
        out["error"] = repr(exc)
        out["compiled"] = False
    print(json.dumps(out))
    """
)


def peer_status(py: Path) -> dict:
    return harness.peer_status(py, PEER_CHECK, "compiled")


def ensure_peer(venv: Path) -> dict:
    """Create the pyBKT venv if needed and make sure the C++ core is installed."""
    py = venv / "bin" / "python"
    st = peer_status(py)
    if st.get("compiled") and st.get("pyBKT") == PEER_PKG.split("==")[1] and st.get("numpy") == "1.26.4":
        return st
    print(f"setting up peer venv {venv} ({PEER_PKG}, {' '.join(PEER_PINS)}) ...", flush=True)
    if not py.exists():
        subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check"]

    def pip_run(args):
        r = subprocess.run(pip + args, capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-2000:] + r.stderr[-4000:])
        return r.returncode == 0

    # numpy (and setuptools/wheel) first: pyBKT's setup.py imports numpy for its headers.
    if not pip_run([*PEER_PINS, "setuptools", "wheel"]):
        sys.exit("bkt_vs_pybkt: could not install the peer's pinned numpy/pandas/scikit-learn")
    # 1) whatever pip picks (a manylinux wheel where the index has one), against the pinned numpy;
    pip_run(["--no-build-isolation", PEER_PKG, *PEER_PINS])
    st = peer_status(py)
    if not st.get("compiled"):
        # 2) force a source build of the C++ extension (gcc, OpenMP, bundled Eigen).
        print("pyBKT's compiled E_step is missing; building pyBKT from source ...", flush=True)
        pip_run(["--no-build-isolation", "--no-binary", "pyBKT", "--no-cache-dir", "--force-reinstall", "--no-deps", PEER_PKG])
        st = peer_status(py)
    if not st.get("compiled"):
        sys.exit(
            "bkt_vs_pybkt: pyBKT's C++ core (pyBKT.fit.E_step extension) is not importable in "
            f"{venv}: {st}. The pure-Python fallback is ~150x slower and would make the timing "
            "comparison meaningless; fix the build (gcc, numpy headers) or use --skip-peer."
        )
    return st


PYBKT_DRIVER = textwrap.dedent(
    """
    import json, resource, sys, time
    t_proc = time.perf_counter()
    import numpy as np
    import pandas as pd
    import pyBKT.fit.E_step as E
    from pyBKT.fit import EM_fit
    from pyBKT.models import Model
    from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score

    train, test, out_path, repeats, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    assert E.__file__.endswith(".so"), E.__file__
    defaults = {"order_id": "order_id", "skill_name": "skill_name", "correct": "correct", "user_id": "user_id"}
    em_runs = []
    _em = EM_fit.EM_fit

    def em_logged(*a, **k):  # per restart: EM iterations run and the final log-likelihood
        m, ll = _em(*a, **k)
        em_runs.append((int(len(ll)), float(ll[-1][0])))
        return m, ll

    EM_fit.EM_fit = em_logged
    fit_s = []
    model = None
    for r in range(repeats):
        del em_runs[:]
        model = Model(seed=seed, num_fits=5, parallel=True)
        t0 = time.perf_counter()
        model.fit(data_path=train, defaults=defaults, forgets=False)
        fit_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    pred = model.predict(data_path=test)
    predict_s = time.perf_counter() - t0
    y = pred["correct"].to_numpy().astype(int)
    p = pred["correct_predictions"].to_numpy().astype(float)
    fitted = set(model.fit_model)
    unseen = int((~pred["skill_name"].astype(str).isin(fitted)).sum())
    params = model.params().reset_index()
    out = {
        "fit_seconds": fit_s,
        "predict_seconds": predict_s,
        "n_test": int(len(y)),
        "n_test_unseen_kc": unseen,
        "auc": float(roc_auc_score(y, p)),
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "rmse": float(np.sqrt(mean_squared_error(y, p))),
        "n_skills": len(fitted),
        "params": [
            {"skill": str(s), "param": str(pa), "class": str(c), "value": float(v)}
            for s, pa, c, v in params[["skill", "param", "class", "value"]].itertuples(index=False)
        ],
        "E_step": E.__file__,
        "em_iterations_per_restart": [n for n, _ in em_runs],
        "em_final_loglik_integer_share": float(np.mean([ll == int(ll) for _, ll in em_runs])) if em_runs else None,
        "process_seconds": time.perf_counter() - t_proc,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    with open(out_path, "w") as f:
        json.dump(out, f)
    """
)


def run_pybkt(venv: Path, rows_train, rows_test, work: Path, repeats: int, seed: int) -> dict:
    def write(rows, path):
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["order_id", "user_id", "skill_name", "correct"])
            for i, r in enumerate(rows):
                w.writerow([i, r["user_id"], r["skill_id"], r["correct"]])

    tr, te = work / "pybkt_train.csv", work / "pybkt_test.csv"
    write(rows_train, tr)
    write(rows_test, te)
    driver = work / "pybkt_driver.py"
    driver.write_text(PYBKT_DRIVER)
    out = work / "pybkt_out.json"
    res = check(run_proc([venv / "bin" / "python", driver, tr, te, out, repeats, seed], cwd=work), "pyBKT driver")
    r = json.loads(out.read_text())
    r["wall"], r["rss_mb"], r["load_before"] = res["wall"], res["rss_mb"], res["load_before"]
    r["other_cores"], r["cpu_seconds"], r["waited"] = res["other_cores"], res["cpu_seconds"], res["waited_for_quiet_s"]
    return r


# --------------------------------------------------------------------------- kt
KT_STEADY = textwrap.dedent(
    """
    import json, sys, time
    t_proc = time.perf_counter()
    import jax
    import numpy as np
    import kt
    from kt.data.splits import train_valid
    from kt.models.base import create

    path, out_path = sys.argv[1], sys.argv[2]
    data = kt.load(path)
    tr, _ = train_valid(data, 0.0, 0)
    fits, models = [], []
    for _ in range(3):
        m = create("bkt")
        t0 = time.perf_counter()
        m.fit(tr, key=0)
        fits.append(time.perf_counter() - t0)
        models.append(m)
    a, b = models[0], models[-1]
    same = all(np.array_equal(np.asarray(getattr(a.params.params, f)), np.asarray(getattr(b.params.params, f)))
               for f in ("prior", "learn", "forget", "guess", "slip"))
    fit_meta = b.meta["fit"]
    # graph.json as `kt train` makes it (graph_for + to_json + write), 3 times; the first includes
    # importing kt.graph, as in a `kt train` process
    from pathlib import Path
    gpath = Path(out_path).with_name("kt_steady_graph.json")
    graph_build, graph_write = [], []
    for _ in range(3):
        t0 = time.perf_counter()
        from kt.graph.build import graph_for
        g = graph_for(b, tr)
        t1 = time.perf_counter()
        gpath.write_text(g.to_json(), encoding="utf-8")
        graph_build.append(t1 - t0)
        graph_write.append(time.perf_counter() - t1)
    graph = {"build_seconds": graph_build, "write_seconds": graph_write, "method": g.method, "n_kc": g.n_kcs,
             "bytes": gpath.stat().st_size, "nested_list_bytes": len(g.to_json(compact=False).encode())}
    json.dump({
        "fit_seconds": fits,
        "graph": graph,
        "engine": {k: fit_meta.get(k) for k in ("engine", "lane_steps", "kernel_calls", "layouts", "phases")},
        "max_iterations": int(fit_meta["max_iterations"]),
        "n_kc": len(b.vocab.skill_id),
        "num_fits": b.config.num_fits,
        "n_rows": int(tr.n_rows),
        "deterministic": bool(same),
        "process_seconds": time.perf_counter() - t_proc,
        "jax_devices": [str(d) for d in jax.devices()],
    }, open(out_path, "w"))
    """
)


def kt_env(home: Path) -> dict:
    env = dict(os.environ)
    # kt's defaults: its own cache switches and any JAX cache setting of the caller are removed.
    for var in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "KT_CACHE_DIR", "KT_NO_COMPILE_CACHE"):
        env.pop(var, None)
    env["HOME"] = str(home)
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    return env


def tree_summary(root: Path) -> dict:
    files = [p for p in root.rglob("*") if p.is_file()]
    return {
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
        "dirs": sorted({str(p.parent.relative_to(root)) for p in files})[:5],
    }


def kt_cache_in_source() -> list[str]:
    """Places in kt's source that mention JAX's persistent compilation cache."""
    hits = []
    for p in sorted((REPO / "kt").rglob("*.py")):
        try:
            for i, line in enumerate(p.read_text().splitlines(), 1):
                if "compilation_cache" in line.lower():
                    hits.append(f"{p.relative_to(REPO)}:{i}")
        except OSError:
            pass
    return hits


def run_kt_train(ktexe: Path, train: Path, work: Path, home: Path, name: str) -> dict:
    """One timed `kt train` process with HOME (and its JAX cache) at ``home``."""
    home.mkdir(exist_ok=True)
    d = work / name
    r = check(
        run_proc(
            [ktexe, "train", train, "--model", "bkt", "--out", d, "--valid-frac", "0", "--seed", "0"], env=kt_env(home), cwd=work
        ),
        "kt train",
    )
    meta = json.loads((d / "model.json").read_text())["meta"]
    return {
        "dir": d,
        "wall": r["wall"],
        "rss_mb": r["rss_mb"],
        "fit_seconds_in_process": meta.get("train_seconds"),
        "train_attempts": meta.get("train_attempts"),
        "max_iterations": meta["fit"]["max_iterations"],
        "load_before": r["load_before"],
        "other_cores": r["other_cores"],
        "cpu_seconds": r["cpu_seconds"],
        "waited": r["waited_for_quiet_s"],
        "home_after": tree_summary(home),
    }


def run_kt(ktexe: Path, train: Path, test: Path, work: Path, cold: dict, home: Path) -> dict:
    """The warm-cache run (same HOME as the cold run ``cold``), then evaluate and export-params."""
    second = run_kt_train(ktexe, train, work, home, "kt_model_second")
    env = kt_env(home)
    d = cold["dir"]
    ev_json = work / "kt_eval.json"
    ev = check(run_proc([ktexe, "evaluate", d, test, "--include-first", "--json", ev_json], env=env, cwd=work), "kt evaluate")
    evaluation = json.loads(ev_json.read_text())
    pcsv = work / "kt_params.csv"
    check(run_proc([ktexe, "export-params", d, "--out", pcsv], env=env, cwd=work), "kt export-params")
    with open(pcsv, newline="") as f:
        params = list(csv.DictReader(f))
    meta = json.loads((d / "model.json").read_text())["meta"]
    return {
        "runs": [cold, second],
        "eval": evaluation,
        "eval_wall": ev["wall"],
        "eval_rss_mb": ev["rss_mb"],
        "params": params,
        "meta_fit": meta["fit"],
        "degenerate_gs_slots": meta.get("degenerate_gs_slots"),
        "notes": sorted({ln.strip() for ln in (ev["stderr"] + ev["stdout"]).splitlines() if ln.strip().startswith("note:")}),
    }


def run_kt_cpp_rule(ktexe: Path, train: Path, test: Path, work: Path) -> dict | None:
    """kt with pyBKT's C++ stopping rule (integer logL), for the parameter comparison only."""
    d = work / "kt_model_cpp"
    env = kt_env(work / "home")
    r = run_proc(
        [ktexe, "train", train, "--model", "bkt", "--out", d, "--valid-frac", "0", "--seed", "0", "--set", "stop_rule=pybkt_cpp"],
        env=env,
        cwd=work,
    )
    if r["rc"] != 0:
        print(f"note: kt train --set stop_rule=pybkt_cpp failed (exit {r['rc']}); skipping that comparison", flush=True)
        return None
    ev_json = work / "kt_eval_cpp.json"
    check(run_proc([ktexe, "evaluate", d, test, "--include-first", "--json", ev_json], env=env, cwd=work), "kt evaluate")
    pcsv = work / "kt_params_cpp.csv"
    check(run_proc([ktexe, "export-params", d, "--out", pcsv], env=env, cwd=work), "kt export-params")
    with open(pcsv, newline="") as f:
        params = list(csv.DictReader(f))
    return {"eval": json.loads(ev_json.read_text()), "params": params, "wall": r["wall"]}


def run_kt_steady(train: Path, work: Path) -> dict:
    script = work / "kt_steady.py"
    script.write_text(KT_STEADY)
    out = work / "kt_steady.json"
    res = check(run_proc([sys.executable, script, train, out], env=kt_env(work / "home"), cwd=work), "kt steady-state fit")
    r = json.loads(out.read_text())
    r["wall"], r["rss_mb"], r["load_before"] = res["wall"], res["rss_mb"], res["load_before"]
    r["other_cores"], r["cpu_seconds"], r["waited"] = res["other_cores"], res["cpu_seconds"], res["waited_for_quiet_s"]
    return r


def run_kt_a2012(ktexe: Path, path: Path, work: Path) -> dict:
    d = work / "kt_a2012"
    r = check(
        run_proc(
            [ktexe, "train", path, "--model", "bkt", "--out", d, "--valid-frac", "0", "--seed", "0"],
            env=kt_env(work / "home"),
            cwd=work,
        ),
        "kt train (assist2012)",
    )
    meta = json.loads((d / "model.json").read_text())["meta"]
    return {
        "wall": r["wall"],
        "rss_mb": r["rss_mb"],
        "fit_seconds_in_process": meta.get("train_seconds"),
        "rows": meta.get("train_attempts"),
        "learners": meta.get("train_learners"),
        "load_before": r["load_before"],
        "other_cores": r["other_cores"],
        "cpu_seconds": r["cpu_seconds"],
        "waited": r["waited_for_quiet_s"],
        "n_kc": len(meta["fit"]["iterations"]),
        "max_iterations": meta["fit"]["max_iterations"],
        "not_converged": sum(1 for c in meta["fit"]["converged"] if not c),
    }


# --------------------------------------------------------------------------- comparison
def forward_loglik(rows, params: dict[str, dict[str, float]]) -> dict[str, float]:
    """Per-KC training log-likelihood (float64 forward pass, file order, forget = 0)."""
    ll: dict[str, float] = {}
    state: dict[tuple[str, str], float] = {}
    for r in rows:
        k = r["skill_id"]
        pk = params.get(k)
        if pk is None:
            continue
        key = (r["user_id"], k)
        p = state.get(key, pk["prior"])
        g, s, t = pk["guess"], pk["slip"], pk["learn"]
        pc = p * (1 - s) + (1 - p) * g
        if r["correct"] == "1":
            ll[k] = ll.get(k, 0.0) + math.log(max(pc, 1e-300))
            post = p * (1 - s) / max(pc, 1e-300)
        else:
            ll[k] = ll.get(k, 0.0) + math.log(max(1 - pc, 1e-300))
            post = p * s / max(1 - pc, 1e-300)
        state[key] = post + (1 - post) * t
    return ll


def compare_params(kt_params, py_params, rows_train) -> dict:
    learners: dict[str, set] = {}
    nrows: dict[str, int] = {}
    for r in rows_train:
        learners.setdefault(r["skill_id"], set()).add(r["user_id"])
        nrows[r["skill_id"]] = nrows.get(r["skill_id"], 0) + 1
    kt_p: dict[str, dict[str, float]] = {}
    kt_ll: dict[str, tuple[float, bool]] = {}
    for r in kt_params:
        if r["class"] == "all":
            kt_p.setdefault(str(r["skill_id"]), {})[r["param"]] = float(r["value"])
        if r.get("loglik") not in (None, ""):
            kt_ll[str(r["skill_id"])] = (float(r["loglik"]), str(r.get("converged")).lower() == "true")
    py_p: dict[str, dict[str, float]] = {}
    for r in py_params:
        name = PYBKT_PARAM.get(r["param"])
        if name:
            py_p.setdefault(r["skill"], {})[name] = r["value"]
    common = sorted(set(kt_p) & set(py_p), key=lambda s: int(s) if s.isdigit() else s)
    big = [k for k in common if len(learners.get(k, ())) >= MIN_LEARNERS]

    def stats(kcs):
        out = {}
        for prm in PARAMS:
            d = [abs(kt_p[k][prm] - py_p[k][prm]) for k in kcs]
            out[prm] = {"max": max(d) if d else None, "median": statistics.median(d) if d else None}
        return out

    ll_kt = forward_loglik(rows_train, kt_p)
    ll_py = forward_loglik(rows_train, py_p)
    exceed = []
    for k in big:
        diffs = {prm: kt_p[k][prm] - py_p[k][prm] for prm in PARAMS}
        worst = max(PARAMS, key=lambda prm: abs(diffs[prm]))
        if abs(diffs[worst]) > TARGET_PARAM_DIFF:
            exceed.append(
                {
                    "kc": k,
                    "learners": len(learners[k]),
                    "rows": nrows[k],
                    "param": worst,
                    "abs_diff": round(abs(diffs[worst]), 4),
                    "kt": {p: round(kt_p[k][p], 4) for p in PARAMS},
                    "pybkt": {p: round(py_p[k][p], 4) for p in PARAMS},
                    "loglik_kt": round(ll_kt.get(k, float("nan")), 3),
                    "loglik_pybkt": round(ll_py.get(k, float("nan")), 3),
                }
            )
    exceed.sort(key=lambda e: -e["abs_diff"])
    # kt's own per-KC logL (float32, from EM) against the float64 forward pass with its fitted parameters.
    conv = [k for k in common if k in kt_ll and kt_ll[k][1] and k in ll_kt]
    rel = [abs(kt_ll[k][0] - ll_kt[k]) / max(1.0, abs(ll_kt[k])) for k in conv]
    higher_kt = sum(1 for e in exceed if e["loglik_kt"] > e["loglik_pybkt"] + 1e-6)
    ll_all_kt = sum(ll_kt.get(k, 0.0) for k in common)
    ll_all_py = sum(ll_py.get(k, 0.0) for k in common)
    return {
        "kcs_compared": len(common),
        "kcs_only_kt": sorted(set(kt_p) - set(py_p)),
        "kcs_only_pybkt": sorted(set(py_p) - set(kt_p)),
        "min_learners": MIN_LEARNERS,
        "kcs_with_min_learners": len(big),
        "abs_diff_kcs_with_min_learners": stats(big),
        "abs_diff_all_kcs": stats(common),
        "kcs_exceeding_0.02": len(exceed),
        "exceeding_with_higher_loglik_in_kt": higher_kt,
        "worst": exceed[:8],
        "kt_reported_loglik_vs_float64": {
            "kcs": len(conv),
            "max_rel_diff": max(rel) if rel else None,
            "worst": [
                {"kc": k2, "kt_reported": round(kt_ll[k2][0], 3), "float64": round(ll_kt[k2], 3)}
                for _, k2 in sorted(zip(rel, conv), reverse=True)[:3]
            ],
            "note": "converged KCs only; kt's loglik column (export-params) against a float64 forward pass with kt's "
            "fitted parameters; a gap beyond float32 rounding means kt's float32 filter diverged",
        },
        "train_loglik_float64": {
            "kt": ll_all_kt,
            "pybkt": ll_all_py,
            "kcs_where_kt_higher": sum(1 for k in common if ll_kt.get(k, 0) > ll_py.get(k, 0) + 1e-6),
            "kcs_where_pybkt_higher": sum(1 for k in common if ll_py.get(k, 0) > ll_kt.get(k, 0) + 1e-6),
            "pybkt_higher_by_more_than_0.1": [
                {
                    "kc": k,
                    "learners": len(learners.get(k, ())),
                    "loglik_kt": round(ll_kt[k], 3),
                    "loglik_pybkt": round(ll_py[k], 3),
                    "max_abs_param_diff": round(max(abs(kt_p[k][q] - py_p[k][q]) for q in PARAMS), 4),
                }
                for k in common
                if ll_py.get(k, 0) > ll_kt.get(k, 0) + 0.1
            ],
        },
    }


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-peer", action="store_true", help="kt only (no pyBKT venv, no parity numbers)")
    ap.add_argument("--repeats", type=int, default=1, help="pyBKT fits per pyBKT process (median kept); default 1")
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternate this many pyBKT processes with cold `kt train` processes (medians compared); default 3",
    )
    ap.add_argument("--seed", type=int, default=0, help="pyBKT Model seed (kt always uses --seed 0)")
    ap.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"pyBKT venv (default {PEER_VENV})")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before each timed process, wait up to this many seconds for other CPU use < 0.2 cores (0: don't wait); default 60",
    )
    ap.add_argument(
        "--no-cpp-rule",
        action="store_true",
        help="skip the extra kt fit with --set stop_rule=pybkt_cpp (pyBKT's integer-logL stopping rule)",
    )
    ap.add_argument("--skip-a2012", action="store_true", help="skip the assist2012 kt-only run")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "bkt.json", help="result JSON")
    args = ap.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        ap.error("--repeats and --rounds must be >= 1")
    WAIT_QUIET["limit"] = max(0.0, args.wait_quiet)

    data = shared_data_dir()
    train = data / GERVET / "preprocessed_data_train.csv.gz"
    test = data / GERVET / "preprocessed_data_test.csv.gz"
    a2012 = data / A2012
    ktexe = kt_executable()
    load_before = loadavg()

    import jax  # noqa: PLC0415  (versions only)

    import kt  # noqa: PLC0415

    peer = None if args.skip_peer else ensure_peer(args.peer_venv)
    rows_train, rows_test = read_tsv5(train), read_tsv5(test)
    work = Path(tempfile.mkdtemp(prefix="kt-bench-bkt-"))
    try:
        # pyBKT fit processes alternate with cold `kt train` processes (each with an empty JAX cache), so that
        # both see the same machine; the medians are compared.
        py_rounds, kt_colds = [], []
        for i in range(args.rounds):
            if peer is not None:
                print(f"[{i + 1}/{args.rounds}] pyBKT {peer['pyBKT']} (C++ E_step: {peer['E_step']}): fitting ...", flush=True)
                py_rounds.append(run_pybkt(args.peer_venv, rows_train, rows_test, work, args.repeats, args.seed))
            print(f"[{i + 1}/{args.rounds}] kt train, cold (fresh HOME) ...", flush=True)
            kt_colds.append(run_kt_train(ktexe, train, work, work / f"home{i}", f"kt_model_cold{i}"))
        py = None
        if py_rounds:
            py = py_rounds[0]
            py["fit_seconds_rounds"] = [statistics.median(r["fit_seconds"]) for r in py_rounds]
            py["other_cores_rounds"] = [round(r["other_cores"], 2) for r in py_rounds]
        rep = sorted(kt_colds, key=lambda r: r["wall"])[(len(kt_colds) - 1) // 2]  # the median cold run
        print("kt train (warm cache), evaluate, export-params ...", flush=True)
        k = run_kt(ktexe, train, test, work, rep, rep["dir"].parent / f"home{kt_colds.index(rep)}")
        k["cold_walls"] = [r["wall"] for r in kt_colds]
        k["cold_other_cores"] = [round(r["other_cores"], 2) for r in kt_colds]
        print("kt steady-state EM ...", flush=True)
        st = run_kt_steady(train, work)
        kcpp = None
        if py is not None and not args.no_cpp_rule:
            print("kt with stop_rule=pybkt_cpp (parameter comparison) ...", flush=True)
            kcpp = run_kt_cpp_rule(ktexe, train, test, work)
        a12 = None
        if not args.skip_a2012:
            if a2012.exists():
                print("kt on assist2012 ...", flush=True)
                a12 = run_kt_a2012(ktexe, a2012, work)
            else:
                print(f"note: {a2012} not found; skipping the assist2012 run", flush=True)
        load_after = loadavg()
        parity = compare_params(k["params"], py["params"], rows_train) if py else None
        parity_cpp = compare_params(kcpp["params"], py["params"], rows_train) if (py and kcpp) else None
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n_train = len(rows_train)
    cold, second = k["runs"]
    kt_cold_s = statistics.median(k["cold_walls"])
    py_fit_s = statistics.median(py["fit_seconds_rounds"]) if py else None
    ev = k["eval"]
    steady_s = statistics.median(st["fit_seconds"][1:])
    em_ips = st["max_iterations"] / steady_s
    eng = st["engine"]
    if eng.get("engine") == "lanes":
        phase_txt = (
            f"lane engine: {eng['kernel_calls']} kernel calls ({eng['lane_steps'] / 1e6:.1f}M lane-steps, "
            f"padding included) in {eng['layouts']} lane layouts; converged KC x restart pairs drop out"
        )
    else:
        phase_txt = f"grid engine, phases {eng.get('phases')}"
    cache_src = kt_cache_in_source()
    cache_files = cold["home_after"]
    gr = st["graph"]
    graph_s = gr["build_seconds"][0] + gr["write_seconds"][0]  # first time: imports kt.graph, as `kt train` does
    graph_share = graph_s / kt_cold_s

    rows = [
        {
            "dataset": GERVET,
            "split": "train->test",
            "model": "bkt",
            "impl": "kt",
            "auc": ev["auc"],
            "accuracy": ev["accuracy"],
            "rmse": ev["rmse"],
            "train_seconds": kt_cold_s,
            "interactions_per_second": n_train / kt_cold_s,
            "peak_rss_mb": cold["rss_mb"],
            "notes": (
                f"train_seconds = whole `kt train` process, cold (import + load + JAX compile + EM + save; empty JAX "
                f"cache), median of {len(k['cold_walls'])}: {', '.join(f'{s:.2f}' for s in k['cold_walls'])} s; "
                f"second run (warm cache) {second['wall']:.2f} s; in-process fit {cold['fit_seconds_in_process']:.2f} s cold / "
                f"{second['fit_seconds_in_process']:.2f} s second; steady-state fit (compiled) {steady_s:.2f} s, "
                f"EM {st['max_iterations']} iterations at {em_ips:.1f} it/s ({st['n_kc']} KCs x {st['num_fits']} restarts). "
                f"graph.json ({gr['method']}, K={gr['n_kc']}, {gr['bytes'] / 1e3:.0f} kB): {graph_s:.3f} s to build and "
                f"write = {graph_share:.1%} of the cold `kt train`. "
                f"Scored every test row incl. first attempts (--include-first), n={ev['n']}. num_fits=5, seed 0."
                + busy_note(("cold run", cold), ("second run", second), ("steady-state run", st))
            ),
        }
    ]
    if py:
        rows.append(
            {
                "dataset": GERVET,
                "split": "train->test",
                "model": "bkt",
                "impl": "pybkt",
                "auc": py["auc"],
                "accuracy": py["accuracy"],
                "rmse": py["rmse"],
                "train_seconds": py_fit_s,
                "interactions_per_second": n_train / py_fit_s,
                "peak_rss_mb": py["rss_mb"],
                "notes": (
                    f"pyBKT 1.4.1 C++ core; train_seconds = model.fit only, median over {len(py['fit_seconds_rounds'])} "
                    f"processes alternating with kt's cold runs: {', '.join(f'{s:.2f}' for s in py['fit_seconds_rounds'])} s "
                    f"(other processes' cores during them: {py['other_cores_rounds']}); first process: whole process {py['wall']:.2f} s "
                    f"(imports, {len(py['fit_seconds'])} fits, predict {py['predict_seconds']:.2f} s); peak RSS of that whole process; num_fits=5, "
                    f"Model(seed={args.seed}); order_id = file row; all {py['n_test']} test rows scored "
                    f"({py['n_test_unseen_kc']} with an unseen KC at pyBKT's 0.5)." + busy_note(("pyBKT run", py))
                ),
            }
        )
    if a12:
        rows.append(
            {
                "dataset": "assist2012_dktplus_test (A2012_skill_id_test)",
                "split": "train only",
                "model": "bkt",
                "impl": "kt",
                "auc": None,
                "accuracy": None,
                "rmse": None,
                "train_seconds": a12["wall"],
                "interactions_per_second": a12["rows"] / a12["wall"] if a12["rows"] else None,
                "peak_rss_mb": a12["rss_mb"],
                "notes": (
                    f"whole `kt train --valid-frac 0` process (first run on this file); {a12['rows']} rows, "
                    f"{a12['learners']} learners, {a12['n_kc']} KCs; in-process fit {a12['fit_seconds_in_process']:.2f} s; "
                    f"{a12['max_iterations']} EM iterations, {a12['not_converged']} KCs not converged at max_iter; "
                    f"acceptance: peak RSS < {TARGET_RSS_MB} MB -> {'ok' if a12['rss_mb'] < TARGET_RSS_MB else 'FAIL'}"
                    + busy_note(("run", a12))
                ),
            }
        )

    result = {
        "machine": machine(),
        "date": _dt.date.today().isoformat(),
        "versions": {
            "kt": kt.__version__,
            "jax": jax.__version__,
            "python": sys.version.split()[0],
            "peer": "pyBKT 1.4.1" if py else None,
            **({"peer_stack": {k2: peer.get(k2) for k2 in ("numpy", "pandas", "sklearn", "scipy")}} if peer else {}),
        },
        "load_average": {
            "before": load_before,
            "after": load_after,
            "before_each_step": {
                **({"pybkt": py["load_before"]} if py else {}),
                "kt_train_cold": cold["load_before"],
                "kt_train_second": second["load_before"],
                "kt_steady": st["load_before"],
                **({"kt_assist2012": a12["load_before"]} if a12 else {}),
            },
            "note": "1/5/15-min load averages of the 2-core machine; > 2 means other work shared the cores",
        },
        "other_processes_cores": {
            **({"pybkt": round(py["other_cores"], 2), "pybkt_rounds": py["other_cores_rounds"]} if py else {}),
            "kt_train_cold": round(cold["other_cores"], 2),
            "kt_train_cold_rounds": k["cold_other_cores"],
            "kt_train_second": round(second["other_cores"], 2),
            "kt_steady": round(st["other_cores"], 2),
            **({"kt_assist2012": round(a12["other_cores"], 2)} if a12 else {}),
            "waited_for_quiet_seconds": {
                **({"pybkt": py["waited"]} if py else {}),
                "kt_train_cold": cold["waited"],
                "kt_train_second": second["waited"],
                "kt_steady": st["waited"],
                **({"kt_assist2012": a12["waited"]} if a12 else {}),
            },
            "note": "average cores used by processes other than the timed child while it ran (/proc/stat minus the "
            "child's CPU); > 0.2 inflates timings (pyBKT's OpenMP E-step suffers most)",
        },
        "rows": rows,
        "kt_steady_state": {
            "fit_seconds": st["fit_seconds"],
            "engine": eng,
            "em_iterations": st["max_iterations"],
            "em_iterations_per_second": em_ips,
            "lane_steps_per_second": eng["lane_steps"] / steady_s if eng.get("lane_steps") else None,
            "note": (
                f"one process fits 3 times; fits 2-3 reuse the compiled kernel (median {steady_s:.2f} s); "
                f"em_iterations_per_second = meta['fit']['max_iterations'] / that (host prep + EM, every "
                f"iteration an E+M step of every KC x restart still iterating); {st['n_kc']} KCs x "
                f"{st['num_fits']} restarts, {st['n_rows']} rows; {phase_txt}"
            ),
            "deterministic_refit": st["deterministic"],
        },
        "kt_graph": {
            "seconds": graph_s,
            "share_of_kt_train_cold": graph_share,
            "build_seconds": gr["build_seconds"],
            "write_seconds": gr["write_seconds"],
            "method": gr["method"],
            "n_kc": gr["n_kc"],
            "bytes": gr["bytes"],
            "nested_list_bytes": gr["nested_list_bytes"],
            "note": (
                "graph.json as `kt train` makes it (graph_for + to_json + write), in the steady-state process after "
                "its fits, 3 times; seconds = the first (it imports kt.graph, as `kt train` does); share = seconds / "
                "median cold `kt train` process; nested_list_bytes = the same graph as format-1 nested lists"
            ),
        },
        "kt_compilation_cache": {
            "mentioned_in_kt_source": cache_src,
            "files_in_fresh_home_after_cold_run": cache_files,
            "second_run_faster_by_seconds": cold["wall"] - second["wall"],
            "note": "second run = `kt train` again with the cold run's HOME, whose JAX cache that run filled",
        },
        "kt_evaluate": {
            "wall_seconds": k["eval_wall"],
            "peak_rss_mb": k["eval_rss_mb"],
            "note": "whole `kt evaluate --include-first` process on the test split",
        },
        "kt_fit_diagnostics": {
            "max_iterations": k["meta_fit"]["max_iterations"],
            "kcs_not_converged": sum(1 for c in k["meta_fit"]["converged"] if not c),
            "degenerate_gs_slots": k["degenerate_gs_slots"],
        },
    }
    if py:
        delta = ev["auc"] - py["auc"]
        result["ratios"] = {
            "speed_pybkt_fit_over_kt_process_cold": py_fit_s / kt_cold_s,
            "speed_pybkt_fit_over_kt_process_second": py_fit_s / second["wall"],
            "speed_pybkt_fit_over_kt_steady_fit": py_fit_s / steady_s,
            "per_round_pybkt_fit_over_kt_cold": [round(p / c, 3) for p, c in zip(py["fit_seconds_rounds"], k["cold_walls"])],
            "rss_kt_over_pybkt": cold["rss_mb"] / py["rss_mb"],
            "note": (
                ">1 means kt is faster; medians of the alternating rounds (pyBKT model.fit only against the whole "
                "cold `kt train` process); second = warm JAX cache; steady = in-process compiled refit"
            ),
        }
        result["parity"] = {
            "auc_kt": ev["auc"],
            "auc_pybkt": py["auc"],
            "auc_delta_kt_minus_pybkt": delta,
            "auc_target_abs_delta": TARGET_AUC_DELTA,
            "auc_ok": abs(delta) <= TARGET_AUC_DELTA,
            "accuracy_delta": ev["accuracy"] - py["accuracy"],
            "rmse_delta": ev["rmse"] - py["rmse"],
            "n_test_kt": ev["n"],
            "n_test_pybkt": py["n_test"],
            "param_target_max_abs_diff": TARGET_PARAM_DIFF,
            **parity,
        }
        agg = parity["abs_diff_kcs_with_min_learners"]
        its = sorted(py["em_iterations_per_restart"])
        kt_its = sorted(k["meta_fit"]["iterations"])
        result["parity"]["em_iterations"] = {
            "pybkt_per_restart_median": statistics.median(its) if its else None,
            "pybkt_per_restart_max": its[-1] if its else None,
            "pybkt_restarts": len(its),
            "pybkt_final_loglik_is_integer_share": py["em_final_loglik_integer_share"],
            "kt_best_restart_median": statistics.median(kt_its) if kt_its else None,
            "kt_best_restart_max": kt_its[-1] if kt_its else None,
            "note": "pyBKT 1.4.1's C++ E-step returns an integer-truncated logL, so |dlogL| < 1e-3 means "
            "'unchanged integer' and EM often stops early (spec/BKT.md pitfalls)",
        }
        if parity_cpp:
            result["parity"]["kt_stop_rule_pybkt_cpp"] = {
                "auc": kcpp["eval"]["auc"],
                "auc_delta_kt_minus_pybkt": kcpp["eval"]["auc"] - py["auc"],
                "abs_diff_kcs_with_min_learners": parity_cpp["abs_diff_kcs_with_min_learners"],
                "kcs_exceeding_0.02": parity_cpp["kcs_exceeding_0.02"],
                "train_loglik_float64": {k2: parity_cpp["train_loglik_float64"][k2] for k2 in ("kt", "pybkt")},
                "train_seconds_whole_process": kcpp["wall"],
                "note": "kt refitted with --set stop_rule=pybkt_cpp (stops on unchanged integer logL, like pyBKT's "
                "C++ core); restarts still start from different random values than pyBKT's",
            }
        result["parity"]["params_ok"] = all(agg[p]["max"] is not None and agg[p]["max"] <= TARGET_PARAM_DIFF for p in PARAMS)

    from kt.atomic import write_text

    write_text(args.out, json.dumps(result, indent=1) + "\n")

    # ---- table
    print()
    print(
        f"BKT on {GERVET} (train {n_train:,} rows -> test {len(rows_test):,} rows); {result['machine']}; "
        f"load avg before {load_before}, after {load_after}"
    )
    hdr = f"{'impl':<7}{'AUC':>8}{'acc':>8}{'RMSE':>8}{'train s':>10}{'rows/s':>11}{'RSS MB':>9}  what is timed"
    print(hdr)
    print("-" * len(hdr))
    print(
        f"{'kt':<7}{fmt(ev['auc']):>8}{fmt(ev['accuracy']):>8}{fmt(ev['rmse']):>8}{kt_cold_s:>10.2f}"
        f"{n_train / kt_cold_s:>11,.0f}{cold['rss_mb']:>9.0f}  whole `kt train`, cold (median of {len(k['cold_walls'])})"
    )
    print(
        f"{'kt':<7}{'':>8}{'':>8}{'':>8}{second['wall']:>10.2f}{n_train / second['wall']:>11,.0f}"
        f"{second['rss_mb']:>9.0f}  whole `kt train`, second run"
    )
    print(
        f"{'kt':<7}{'':>8}{'':>8}{'':>8}{steady_s:>10.2f}{n_train / steady_s:>11,.0f}"
        f"{'':>9}  in-process refit (compiled), {em_ips:.1f} EM it/s"
    )
    print(
        f"{'kt':<7}{'':>8}{'':>8}{'':>8}{graph_s:>10.3f}{'':>11}{'':>9}  graph.json: build + write "
        f"({graph_share:.1%} of the cold `kt train`; {gr['bytes'] / 1e3:.0f} kB, K={gr['n_kc']})"
    )
    if py:
        fm = py_fit_s
        print(
            f"{'pyBKT':<7}{fmt(py['auc']):>8}{fmt(py['accuracy']):>8}{fmt(py['rmse']):>8}{fm:>10.2f}"
            f"{n_train / fm:>11,.0f}{py['rss_mb']:>9.0f}  model.fit only (whole process {py['wall']:.2f} s)"
        )
        r, p = result["ratios"], result["parity"]
        print()
        print(
            f"AUC delta kt - pyBKT: {p['auc_delta_kt_minus_pybkt']:+.4f} (target |delta| <= {TARGET_AUC_DELTA}: "
            f"{'ok' if p['auc_ok'] else 'FAIL'})"
        )
        print(
            f"speed (pyBKT fit / kt): cold process {r['speed_pybkt_fit_over_kt_process_cold']:.2f}x, "
            f"second process {r['speed_pybkt_fit_over_kt_process_second']:.2f}x, "
            f"compiled refit {r['speed_pybkt_fit_over_kt_steady_fit']:.2f}x  (>1: kt faster)"
        )
        print(
            f"per-KC params, {p['kcs_with_min_learners']} KCs with >= {MIN_LEARNERS} learners (of {p['kcs_compared']} compared):"
        )
        print(f"  {'param':<7}{'max |d|':>9}{'median':>9}   all KCs: {'max':>7}{'median':>9}")
        for prm in PARAMS:
            a, b = p["abs_diff_kcs_with_min_learners"][prm], p["abs_diff_all_kcs"][prm]
            print(f"  {prm:<7}{fmt(a['max']):>9}{fmt(a['median']):>9}   {'':9}{fmt(b['max']):>7}{fmt(b['median']):>9}")
        print(
            f"  KCs over {TARGET_PARAM_DIFF}: {p['kcs_exceeding_0.02']} "
            f"(kt's optimum has the higher float64 train logL in {p['exceeding_with_higher_loglik_in_kt']})"
        )
        for e in p["worst"][:5]:
            print(
                f"    KC {e['kc']:>4} ({e['learners']} learners, {e['rows']} rows): {e['param']} "
                f"kt {e['kt'][e['param']]:.3f} vs pyBKT {e['pybkt'][e['param']]:.3f}; "
                f"logL kt {e['loglik_kt']:.1f} / pyBKT {e['loglik_pybkt']:.1f}"
            )
        pc = p.get("kt_stop_rule_pybkt_cpp")
        if pc:
            mx = pc["abs_diff_kcs_with_min_learners"]
            print(
                f"  kt with stop_rule=pybkt_cpp: AUC {pc['auc']:.4f}; max |d| "
                + ", ".join(f"{q} {mx[q]['max']:.3f}" for q in PARAMS)
                + "; medians "
                + ", ".join(f"{mx[q]['median']:.4f}" for q in PARAMS)
                + f"; {pc['kcs_exceeding_0.02']} KCs over {TARGET_PARAM_DIFF}"
            )
        ei = p["em_iterations"]
        print(
            f"  EM iterations: pyBKT median {ei['pybkt_per_restart_median']} per restart (max {ei['pybkt_per_restart_max']}, "
            f"integer final logL in {ei['pybkt_final_loglik_is_integer_share']:.0%} of restarts); kt median "
            f"{ei['kt_best_restart_median']} for the chosen restart (max {ei['kt_best_restart_max']})"
        )
        tl = p["train_loglik_float64"]
        print(
            f"  train logL (float64, all common KCs): kt {tl['kt']:.1f}, pyBKT {tl['pybkt']:.1f}; "
            f"higher in kt for {tl['kcs_where_kt_higher']} KCs, in pyBKT for {tl['kcs_where_pybkt_higher']}"
        )
        lc = p["kt_reported_loglik_vs_float64"]
        if lc["max_rel_diff"] is not None:
            w = lc["worst"][0]
            print(
                f"  kt's reported per-KC logL vs float64 recomputation: max rel. diff {lc['max_rel_diff']:.1e} "
                f"over {lc['kcs']} converged KCs (KC {w['kc']}: kt {w['kt_reported']:.2f}, float64 {w['float64']:.2f})"
            )
    if a12:
        print()
        print(
            f"kt on assist2012 ({a12['rows']:,} rows, {a12['n_kc']} KCs): whole process {a12['wall']:.2f} s, "
            f"peak RSS {a12['rss_mb']:.0f} MB ({'ok' if a12['rss_mb'] < TARGET_RSS_MB else 'FAIL'} < {TARGET_RSS_MB} MB)"
        )
    oc = result["other_processes_cores"]
    print(
        "other processes' average core use during each timed step: "
        + ", ".join(f"{k2} {v:.2f}" for k2, v in oc.items() if isinstance(v, float))
        + ("  (> 0.2: timings inflated)" if any(v > 0.2 for v in oc.values() if isinstance(v, float)) else "")
    )
    cc = result["kt_compilation_cache"]
    print(
        f"JAX persistent cache: kt source mentions it at {cc['mentioned_in_kt_source'] or 'nowhere'}; "
        f"{cache_files['files']} files in the fresh HOME after the cold run; second run "
        f"{cc['second_run_faster_by_seconds']:+.2f} s faster"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
