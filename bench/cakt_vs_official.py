"""CAKT training throughput: kt's ``cakt`` against the authors' PyTorch CAKT module (Badstu/CAKT, CPU torch).

Issue 17 item 1 (acceptance: kt >= 2x the official module in the same run of
this script). The official code is GPL: it is never copied into this
repository. ``--official DIR`` names a clone of https://github.com/Badstu/CAKT
(a work tree holding ``model/CAKT.py``) or a bare git directory of it (the
file is then read with ``git show HEAD:model/CAKT.py`` into the run's
temporary directory under /tmp). The generated peer driver loads that file
with ``importlib`` at run time, inside the peer's own virtual environment
(``/tmp/kt-peer-cakt``, created if missing: CPU ``torch==2.13.0`` and numpy
from the configured pip index).

Workload (both sides the same): ASSISTments 2009 (``assist2009/gervet`` train,
KC = ``skill_id``), every learner cut into non-overlapping chunks of 200 steps
from the first attempt (kt's ``window``), and only *full* 200-step chunks
kept, the first ``batch x (1 + --steps)`` of them in file order. Every batch
is then ``32 x 200`` on both sides (kt's bucket is 200, the official collate
pads to the batch's longest sequence, also 200). kt computes the CNN only
for the volumes a batch needs, padded to a multiple of 512 rows, so a batch
with a new row count compiles a program (about 7 s here; an assist2009
epoch meets about 4-7 such shapes once). The kt driver records the XLA
compile time inside each step (``jax.monitoring``): the throughput is that
of the timed steps that compiled nothing (steady state, the official module
has nothing to compile), and the rate with compiles included is reported
beside it. Scored positions: steps 2..200 of a
chunk (199 per chunk): kt's training targets (``mask & prev >= 0``), and the
official loop's labels (``knowledge2vec`` turns a chunk of L attempts into
L - 1 inputs, each labelled with the next attempt). The script checks that
both sides count the same total. Each side trains one warm-up batch (kt: JAX
compilation of the one 32 x 200 program; the official module: the same rows
cut to their first ``--peer-warmup-len`` steps, default 20: torch has
nothing to compile, and its first full batch runs at its steady speed: 16 s,
then 15 s per batch, in a check with a full warm-up batch) and then ``--steps`` timed batches,
default 4 (``time.perf_counter`` around each step: batch preparation,
forward, backward, Adam update). With the defaults a run takes about 5
minutes on a quiet 2-core machine (official about 17 s per batch, kt about
28 s per batch after a compile of about the same). Timings need a quiet
machine, the official module's more than kt's: its thousands of small torch
ops per batch each synchronise the 2 OpenMP threads, and in a smoke run with
other processes using about one core it took 117 s per batch (7x slower)
where kt lost less than 20%.

Options and their mapping (kt ``CAKTConfig`` defaults -> official constructor
``CAKT(k_frames, input_dim, H, embed_dim, hidden_dim, num_layers, output_dim,
batch_size, device)``):

* ``k = 4`` -> ``k_frames = 4`` (the official ``main.py`` default too);
* ``frame = 15`` -> ``H = 15``; embedding size ``H * H = 225`` ->
  ``embed_dim = hidden_dim = 225`` (the official model views embeddings as
  H x H frames and fuses the pooled H x H CNN output with the LSTM output, so
  both must be H * H); ``num_layers = 1``;
* channels 1 -> 4 -> 8 -> 4 -> 1 in both (fixed in the official module);
* K KCs of the chunks: ``input_dim = 2K`` (official interaction id ``k`` for
  a wrong and ``K + k`` for a right answer on 1-based KC ``k``, 0 = padding;
  kt's ``1 + q + K r`` is the same layout), ``output_dim = K``;
* ``batch_size = 32`` (kt's default; the official ``main.py`` uses 80);
* optimiser: Adam lr 1e-3, betas (0.9, 0.99), L2 1e-5 in both (official
  ``CAKT_experiment.py``: ``torch.optim.Adam(weight_decay=1e-5,
  betas=(0.9, 0.99))``; kt: ``beta2 = 0.99``, coupled ``weight_decay = 1e-5``);
* loss: masked binary cross-entropy on the logit of the next step's KC
  (official ``train_cakt``: ``BCEWithLogitsLoss`` on ``masked_select`` of
  ``output[:, next_kc - 1]``, mean over the scored positions); kt: the same
  logits, its loop's sum over the scored positions divided by a constant
  (batch x bucket length), which only rescales the gradient.
* recent frames: kt's default ``recent_key = next`` (the next question's KC)
  vs the official module's current KC; the work per step is the same.

How the official module is driven (adapted in the generated driver only):
``device = torch.device('cpu')``; its forward ``(x, past_counts,
repeat_gaps)`` ignores the two forgetting features (their use is commented
out in ``model/CAKT.py``), so zero tensors are passed and the collate's
``extract_ff`` is not run; the inputs and labels are built as the official
``collate_fn``/``knowledge2vec`` build them; the loop body is
``train_cakt``'s (forward, mask of the next KC's logit, ``BCEWithLogitsLoss``,
``backward``, ``optimizer.step``, ``zero_grad``) with the mask built by one
vectorised assignment instead of a Python loop over the rows and without the
per-batch sklearn AUC and tqdm/visdom logging (both only favour the peer).
``torch.set_num_threads(2)``; OMP/MKL/OPENBLAS_NUM_THREADS=2 for both children.

kt: ``create('cakt', epochs=1, patience=100).fit(data, key=0, on_step=...)``
on a file holding exactly those chunks (one pseudo-learner per chunk), the
``on_step`` hook timing each batch and stopping the fit after ``1 + --steps``
batches. Each side runs ``--repeats`` times (default 3) in fresh processes,
alternating (peer first); the median of each side's scored positions per
second is reported and the ratio taken between the medians. Peak RSS per
child from ``os.wait4``.

Usage::

    /work/venv/bin/python bench/cakt_vs_official.py --official /path/to/CAKT          # defaults
    /work/venv/bin/python bench/cakt_vs_official.py --official DIR --steps 1 --repeats 1 --wait-quiet 0
    /work/venv/bin/python bench/cakt_vs_official.py --skip-peer                         # kt only

The shared data directory is ``$KT_SHARED_DATA`` or ``<repo>/../shared/data``;
without assist2009 the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gzip
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

PEER_VENV = Path("/tmp/kt-peer-cakt")
TORCH_PIN = "torch==2.13.0"
PEER_DEPS = ["numpy"]
TRAIN = "assist2009/gervet/preprocessed_data_train.csv.gz"
OFFICIAL_FILE = "model/CAKT.py"
THREADS = 2
TARGET_RATIO = 2.0
STEPS = 4
PEER_WARMUP_LEN = 20


def shared_data_dir() -> Path:
    env = os.environ.get("KT_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def thread_env() -> dict:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[var] = str(THREADS)
    return env


def step_rates(hist: list[dict]) -> dict:
    """Throughput of a driver's timed steps (after the warm-up), from its per-step history.

    Steps that compiled a program (kt: a new CNN row count) are left out of
    the rate; with no step free of compilation the rate falls back to all
    timed steps (``steady_state`` false).
    """
    timed = [h for h in hist if not h["warmup"]]
    steady = [h for h in timed if not h.get("compiled")] or timed
    return {
        "interactions_per_second": sum(h["scored"] for h in steady) / sum(h["seconds"] for h in steady),
        "steady_state": not any(h.get("compiled") for h in steady),
        "interactions_per_second_with_compiles": sum(h["scored"] for h in timed) / sum(h["seconds"] for h in timed),
        "compiled_timed_steps": sum(bool(h.get("compiled")) for h in timed),
        "timed_seconds": sum(h["seconds"] for h in steady),
        "n_scored_timed": sum(h["scored"] for h in steady),
        "n_scored_all_timed": sum(h["scored"] for h in timed),
    }


def child_result(res: dict, out: Path) -> dict:
    r = json.loads(out.read_text())
    r.update(step_rates(r["history"]))
    for k in ("wall", "rss_mb", "load_before", "load_after", "other_cores", "cpu_seconds"):
        r[k] = res[k]
    r["waited"] = res["waited_for_quiet_s"]
    return r


# --------------------------------------------------------------------------- official module
def official_source(src: Path, work: Path) -> tuple[Path, str]:
    """The official ``model/CAKT.py`` (a work tree's file, or read from a bare git dir into ``work``) and its commit."""

    def git(*a):
        r = subprocess.run(["git", *a], capture_output=True, text=True)
        return r.stdout if r.returncode == 0 else None

    if (src / OFFICIAL_FILE).exists():
        rev = git("-C", str(src), "rev-parse", "HEAD")
        return src / OFFICIAL_FILE, (rev or "unknown (not a git work tree)").strip()
    text = git("--git-dir", str(src), "show", f"HEAD:{OFFICIAL_FILE}")
    if text is None:
        sys.exit(f"cakt_vs_official: {src} holds no {OFFICIAL_FILE} (neither a work tree nor a git dir of Badstu/CAKT)")
    dst = work / "official" / "CAKT.py"  # run-time copy under /tmp, deleted with the run
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return dst, (git("--git-dir", str(src), "rev-parse", "HEAD") or "unknown").strip()


# --------------------------------------------------------------------------- peer venv
PEER_CHECK = textwrap.dedent(
    """
    import json
    out = {}
    try:
        import numpy, torch
        out["torch"] = torch.__version__
        out["torch_cuda"] = torch.version.cuda
        out["numpy"] = numpy.__version__
        out["ok"] = True
    except Exception as exc:  # noqa: BLE001
        out["error"] = repr(exc)
        out["ok"] = False
    print(json.dumps(out))
    """
)


def torch_ok(st: dict) -> bool:
    return (
        bool(st.get("ok")) and str(st.get("torch", "")).split("+")[0] == TORCH_PIN.split("==")[1] and st.get("torch_cuda") is None
    )


def ensure_peer(venv: Path) -> dict:
    """Create the peer venv if needed: CPU torch and numpy, nothing else (the module imports only those)."""
    py = venv / "bin" / "python"
    st = harness.peer_status(py, PEER_CHECK, "ok")
    if torch_ok(st):
        return st
    print(f"setting up peer venv {venv} ({TORCH_PIN} CPU, numpy) ...", flush=True)
    if not py.exists():
        subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
    r = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", TORCH_PIN, *PEER_DEPS],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        sys.stderr.write(r.stdout[-2000:] + r.stderr[-4000:])
    st = harness.peer_status(py, PEER_CHECK, "ok")
    if not torch_ok(st):
        sys.exit(f"cakt_vs_official: could not install a CPU {TORCH_PIN} in {venv}: {st}")
    return st


PEER_DRIVER = textwrap.dedent(
    r"""
    import importlib.util, json, resource, sys, time
    t_proc = time.perf_counter()
    import numpy as np
    import torch

    (module_path, chunks_path, out_path, steps, batch, k, H, lr, wd, seed, threads, warmup_len) = sys.argv[1:13]
    steps, batch, k, H, seed, threads, warmup_len = map(int, (steps, batch, k, H, seed, threads, warmup_len))
    lr, wd = float(lr), float(wd)
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    # The authors' module, loaded from the given checkout at run time (never copied into kt).
    spec = importlib.util.spec_from_file_location("official_cakt", module_path)
    official = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(official)

    z = np.load(chunks_path)
    skill, correct, K = z["skill"], z["correct"], int(z["n_kc"])  # [C, L] 1-based KC, 0/1; every chunk full
    C, L = skill.shape
    device = torch.device("cpu")
    model = official.CAKT(k, 2 * K, H, H * H, H * H, 1, K, batch, device)
    opt = torch.optim.Adam(params=model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.99))
    criterion = torch.nn.BCEWithLogitsLoss()
    order = rng.permutation(C)

    def make_batch(rows, length):
        # collate_fn / knowledge2vec: input k (wrong) or K + k (right) at steps 1..L-1, label (next KC, next answer).
        s, c = skill[rows, :length], correct[rows, :length]
        seq = np.where(c[:, :-1] == 1, K + s[:, :-1], s[:, :-1])
        label = np.stack([s[:, 1:], c[:, 1:]], -1)
        lens = np.full(len(rows), s.shape[1] - 1)
        return (torch.from_numpy(lens), torch.from_numpy(seq.astype(np.int64)), torch.from_numpy(label.astype(np.int64)))

    hist = []
    model.train()
    for step in range(1 + steps):
        t0 = time.perf_counter()
        # The warm-up batch (torch compiles nothing) is cut to its first warmup_len steps: it only initialises kernels.
        batch_len, batch_seq, batch_label = make_batch(order[step * batch:(step + 1) * batch], warmup_len if step == 0 else L)
        batch_label = batch_label.float()
        zeros = torch.zeros_like(batch_seq)  # past_counts / repeat_gaps: unused by model/CAKT.py's forward
        max_seq_len = batch_seq.shape[1]
        # One training step as the official train_cakt does it (same operations, written here): logits of every
        # (position, KC), the cell of the next attempt's KC kept at real positions, BCE with logits, Adam.
        logits = model(batch_seq, zeros, zeros)[0]  # [B * T, K]
        real = (torch.arange(max_seq_len)[None, :] < batch_len[:, None]).reshape(-1)
        target_kc = batch_label[..., 0].reshape(-1).long() - 1
        keep = torch.zeros_like(logits, dtype=torch.bool)
        keep[real.nonzero().squeeze(1), target_kc[real]] = True  # one cell per real position (official: row by row)
        predict = logits.masked_select(keep)
        loss = criterion(predict, batch_label[..., 1].reshape(-1)[real])
        loss.backward()
        opt.step()
        opt.zero_grad()
        loss = float(loss.item())
        sec = time.perf_counter() - t0
        hist.append({"step": step + 1, "seconds": sec, "scored": int(predict.numel()), "loss": loss,
                     "interactions_per_second": int(predict.numel()) / sec, "warmup": step == 0})
        print(json.dumps(hist[-1]), flush=True)
    json.dump({
        "history": hist,  # rates: step_rates() in the parent
        "n_chunks": int(C), "num_c": K, "batch_shape": [batch, int(L - 1)],
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "process_seconds": time.perf_counter() - t_proc,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, open(out_path, "w"))
    """
)


# --------------------------------------------------------------------------- kt
KT_DRIVER = textwrap.dedent(
    r"""
    import json, os, resource, sys, time
    t_proc = time.perf_counter()
    import jax
    import numpy as np
    import kt
    from kt.data.sequences import build_sequences
    from kt.models.base import create
    from kt.models.dkt.model import _known

    path, out_path, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = kt.load(path)
    m = create("cakt", epochs=1, patience=100, embed_init="kaiming")  # the official model's init (speed does not depend on it)
    cfg = m.config
    seqs = build_sequences(_known(data), window=cfg.window, min_len=cfg.min_chunk)
    lengths = seqs.mask.sum(1)

    class Stop(Exception):
        pass

    hist, last = [], {"t": None, "n": 0}
    compile_s = [0.0]
    # XLA compile time spent inside each step: a batch whose CNN row count is new compiles a program
    jax.monitoring.register_event_duration_secs_listener(
        lambda name, dur, **kw: compile_s.__setitem__(0, compile_s[0] + dur) if name.endswith("backend_compile_duration") else None)

    def on_step(done, total, metrics):
        now = time.perf_counter()
        if done == 0:
            last["t"] = now
            compile_s[0] = 0.0
            return
        n = metrics["interactions"] - last["n"]
        sec = now - last["t"]
        hist.append({"step": done, "seconds": sec, "scored": int(n), "loss": metrics["loss"],
                     "interactions_per_second": n / sec, "warmup": done == 1, "compile_seconds": compile_s[0],
                     "compiled": compile_s[0] > 0.5})
        compile_s[0] = 0.0
        print(json.dumps(hist[-1]), flush=True)
        last["t"], last["n"] = now, metrics["interactions"]
        if done >= 1 + steps:
            raise Stop

    try:
        m.fit(data, key=0, on_step=on_step)
    except Stop:
        pass
    json.dump({
        "history": hist,  # rates: step_rates() in the parent
        "n_chunks": int(seqs.mask.shape[0]), "chunk_lengths": sorted(set(int(x) for x in lengths)),
        "num_c": len(data.vocab.skill_id), "batch_shape": [cfg.batch_size, int(seqs.mask.shape[1])],
        "config": {a: getattr(cfg, a) for a in ("k", "frame", "channels", "batch_size", "window", "recent_key", "lr",
                                                "beta2", "weight_decay", "norm", "fusion")},
        "jax": jax.__version__, "kt": kt.__version__, "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS"),
        "process_seconds": time.perf_counter() - t_proc,
        "peak_rss_mb_self": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }, open(out_path, "w"))
    """
)


# --------------------------------------------------------------------------- workload
def full_chunks(src: Path, n: int, window: int) -> tuple[list[str], list[list[list[str]]]]:
    """The first ``n`` full ``window``-step chunks of the file (learners in file order, chunks from the first attempt)."""
    import itertools  # noqa: PLC0415

    chunks: list[list[list[str]]] = []
    with gzip.open(src, "rt") if src.suffix == ".gz" else open(src) as fi:
        header = fi.readline().rstrip("\n").split("\t")
        ucol = header.index("user_id")
        rows = (line.rstrip("\n").split("\t") for line in fi)
        for _, group in itertools.groupby(rows, key=lambda f: f[ucol]):
            g = list(group)
            for a in range(0, len(g) - window + 1, window):
                chunks.append(g[a : a + window])
                if len(chunks) == n:
                    return header, chunks
    return header, chunks


def write_workload(header: list[str], chunks: list, work: Path) -> tuple[Path, Path, int]:
    """kt's input (one pseudo-learner per chunk, TSV) and the peer's (npz: 1-based KC ids, answers)."""
    import numpy as np  # noqa: PLC0415

    u, k, c = header.index("user_id"), header.index("skill_id"), header.index("correct")
    tsv = work / "chunks.tsv"
    with open(tsv, "w") as fo:
        fo.write("\t".join(header) + "\n")
        for i, ch in enumerate(chunks):
            for f in ch:
                f = list(f)
                f[u] = str(i)
                fo.write("\t".join(f) + "\n")
    kcs = sorted({f[k] for ch in chunks for f in ch}, key=int)
    index = {s: j + 1 for j, s in enumerate(kcs)}
    skill = np.array([[index[f[k]] for f in ch] for ch in chunks], np.int64)
    correct = np.array([[int(f[c]) for f in ch] for ch in chunks], np.int64)
    npz = work / "chunks.npz"
    np.savez(npz, skill=skill, correct=correct, n_kc=len(kcs))
    return tsv, npz, len(kcs)


def run_peer(py: Path, module: Path, npz: Path, work: Path, args) -> dict:
    driver = work / "official_driver.py"
    driver.write_text(PEER_DRIVER)
    out = work / "official_out.json"
    cmd = [py, driver, module, npz, out, args.steps, BATCH, K_FRAMES, H, LR, WD, args.seed, THREADS, args.peer_warmup_len]
    return child_result(check(run_proc(cmd, env=thread_env(), cwd=work, timeout=6 * 3600), "official CAKT driver"), out)


def run_kt(tsv: Path, work: Path, args) -> dict:
    driver = work / "kt_driver.py"
    driver.write_text(KT_DRIVER)
    out = work / "kt_out.json"
    cmd = [sys.executable, driver, tsv, out, args.steps]
    return child_result(check(run_proc(cmd, env=thread_env(), cwd=work, timeout=6 * 3600), "kt cakt fit"), out)


def median_run(runs: list[dict]) -> dict:
    return sorted(runs, key=lambda r: r["interactions_per_second"])[(len(runs) - 1) // 2]


# kt's CAKT defaults, read once (the peer gets the same values)
def _kt_defaults():
    from kt.models.cakt.model import CAKTConfig  # noqa: PLC0415

    c = CAKTConfig()
    return c.batch_size, c.k, c.frame, c.window, c.lr, c.weight_decay, c.beta2


BATCH, K_FRAMES, H, WINDOW, LR, WD, BETA2 = _kt_defaults()


# --------------------------------------------------------------------------- main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--official", type=Path, help="clone (work tree) or bare git dir of github.com/Badstu/CAKT")
    ap.add_argument("--steps", type=int, default=STEPS, help=f"timed batches per process after 1 warm-up batch (default {STEPS})")
    ap.add_argument("--repeats", type=int, default=3, help="fresh processes per side, alternating; medians (default 3)")
    ap.add_argument(
        "--peer-warmup-len",
        type=int,
        default=PEER_WARMUP_LEN,
        help=f"steps of the official module's warm-up batch (same rows, cut; default {PEER_WARMUP_LEN}; 200 = a full batch)",
    )
    ap.add_argument("--skip-peer", action="store_true", help="kt only (no peer venv, no ratio)")
    ap.add_argument("--seed", type=int, default=0, help="torch seed and batch order of the peer (kt: key 0)")
    ap.add_argument("--peer-venv", type=Path, default=PEER_VENV, help=f"peer venv (default {PEER_VENV})")
    ap.add_argument(
        "--wait-quiet", type=float, default=60.0, help="wait up to S s before each timed process for other CPU use < 0.2 cores"
    )
    ap.add_argument("--out", type=Path, default=HERE / "results" / "cakt_vs_official.json", help="result JSON")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.repeats < 1 or not 2 <= args.peer_warmup_len <= WINDOW:
        ap.error(f"--steps and --repeats must be >= 1, --peer-warmup-len in 2..{WINDOW}")
    if not args.skip_peer and args.official is None:
        ap.error("--official DIR is required (a clone or git dir of github.com/Badstu/CAKT), or --skip-peer")
    WAIT_QUIET["limit"] = max(0.0, args.wait_quiet)
    src = shared_data_dir() / TRAIN
    if not src.exists():
        print(f"cakt_vs_official: {src} not found (set KT_SHARED_DATA); skipping", flush=True)
        return 0

    import jax  # noqa: PLC0415  (versions only)

    import kt  # noqa: PLC0415

    load_before = loadavg()
    peer = None if args.skip_peer else ensure_peer(args.peer_venv)
    work = Path(tempfile.mkdtemp(prefix="kt-bench-cakt-"))
    n_chunks = BATCH * (1 + args.steps)
    try:
        header, chunks = full_chunks(src, n_chunks, WINDOW)
        if len(chunks) < n_chunks:
            sys.exit(f"cakt_vs_official: only {len(chunks)} full {WINDOW}-step chunks in {src}; lower --steps")
        tsv, npz, n_kc = write_workload(header, chunks, work)
        module, commit = official_source(args.official, work) if peer else (None, None)
        o_runs, k_runs = [], []
        for rep in range(1, args.repeats + 1):
            if peer:
                print(
                    f"[{rep}/{args.repeats}] official CAKT (torch {peer['torch']}): 1 warm-up + {args.steps} batches", flush=True
                )
                o_runs.append(run_peer(args.peer_venv / "bin" / "python", module, npz, work, args))
                print(f"  {o_runs[-1]['interactions_per_second']:,.1f} scored positions/s", flush=True)
            print(f"[{rep}/{args.repeats}] kt cakt: 1 compile + {args.steps} batches", flush=True)
            k_runs.append(run_kt(tsv, work, args))
            print(f"  {k_runs[-1]['interactions_per_second']:,.1f} scored positions/s", flush=True)
        load_after = loadavg()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    k = median_run(k_runs)
    o = median_run(o_runs) if o_runs else None
    k_ips = statistics.median(r["interactions_per_second"] for r in k_runs)
    o_ips = statistics.median(r["interactions_per_second"] for r in o_runs) if o_runs else None
    dataset = "assist2009/gervet"
    split = f"train, first {n_chunks} full {WINDOW}-step chunks (learners in file order)"
    per_k = ", ".join(f"{r['interactions_per_second']:,.1f}" for r in k_runs)
    rows = [
        {
            "dataset": dataset,
            "split": split,
            "model": "cakt",
            "impl": "kt",
            "auc": None,
            "accuracy": None,
            "rmse": None,
            "train_seconds": k["timed_seconds"],
            "interactions_per_second": k_ips,
            "interactions_per_second_with_compiles": statistics.median(
                r["interactions_per_second_with_compiles"] for r in k_runs
            ),
            "compiled_timed_steps": [r["compiled_timed_steps"] for r in k_runs],
            "steady_state": all(r["steady_state"] for r in k_runs),
            "peak_rss_mb": k["rss_mb"],
            "notes": (
                f"create('cakt', epochs=1).fit(chunks, key=0, on_step=...) with kt's defaults {k['config']}; "
                f"1 warm-up batch (JAX compile, {k['history'][0]['seconds']:.1f} s) then {args.steps} timed batches of "
                f"{k['batch_shape'][0]} x {k['batch_shape'][1]}; the rate is over the timed batches that compiled nothing "
                f"({k['n_scored_timed']:,} scored positions, {k['timed_seconds']:.1f} s; timed batches that compiled a new "
                f"CNN row count, per run: {[r['compiled_timed_steps'] for r in k_runs]}); median of {len(k_runs)} fresh "
                f"processes: {per_k}/s. Peak RSS of the "
                f"whole process. JAX {k['jax']} on {k['jax_devices']}."
                + busy_note(*((f"kt run {i + 1}", r) for i, r in enumerate(k_runs)))
            ),
        }
    ]
    if o:
        per_o = ", ".join(f"{r['interactions_per_second']:,.1f}" for r in o_runs)
        rows.append(
            {
                "dataset": dataset,
                "split": split,
                "model": "cakt",
                "impl": "official",
                "auc": None,
                "accuracy": None,
                "rmse": None,
                "train_seconds": o["timed_seconds"],
                "interactions_per_second": o_ips,
                "peak_rss_mb": o["rss_mb"],
                "notes": (
                    f"Badstu/CAKT model/CAKT.py @ {commit[:12]} loaded at run time from --official (GPL, not vendored), "
                    f"torch {o['torch']} CPU, {o['torch_threads']} threads, in {args.peer_venv}. "
                    f"CAKT(k_frames={K_FRAMES}, input_dim=2*{o['num_c']}, H={H}, embed_dim=hidden_dim={H * H}, "
                    f"num_layers=1, output_dim={o['num_c']}, batch_size={BATCH}, device=cpu), "
                    f"{o['n_params']:,} parameters; Adam lr {LR}, betas (0.9, {BETA2}), weight_decay {WD}; train_cakt's "
                    f"loop body (BCEWithLogitsLoss on the next KC's logit; mask built vectorised, no per-batch AUC). "
                    f"1 warm-up batch (the first batch's rows cut to {args.peer_warmup_len} steps: torch compiles nothing; "
                    f"{o['history'][0]['seconds']:.1f} s) then {args.steps} timed batches of "
                    f"{o['batch_shape'][0]} x {o['batch_shape'][1]} inputs ({o['n_scored_timed']:,} scored positions, "
                    f"{o['timed_seconds']:.1f} s); median of {len(o_runs)} fresh processes: {per_o}/s."
                    + busy_note(*((f"official run {i + 1}", r) for i, r in enumerate(o_runs)))
                ),
            }
        )
    steps = {"kt": k, **({"official": o} if o else {})}
    result = {
        "machine": machine(),
        "date": _dt.date.today().isoformat(),
        "versions": {
            "kt": kt.__version__,
            "jax": jax.__version__,
            "python": sys.version.split()[0],
            "torch": o["torch"] if o else None,
            "peer": f"Badstu/CAKT model/CAKT.py @ {commit}" if o else None,
        },
        "settings": {
            "batch_size": BATCH,
            "k": K_FRAMES,
            "H": H,
            "embed_dim": H * H,
            "window": WINDOW,
            "lr": LR,
            "beta2": BETA2,
            "weight_decay": WD,
            "chunks": n_chunks,
            "n_kc": n_kc,
            "warmup_batches": 1,
            "peer_warmup_len": args.peer_warmup_len,
            "timed_batches": args.steps,
            "threads": THREADS,
            "repeats": args.repeats,
            "note": "both sides train on the same full 200-step chunks; OMP/MKL/OPENBLAS_NUM_THREADS=2, "
            "torch.set_num_threads(2); JAX uses its default CPU thread pool on the 2-core machine",
        },
        "load_average": {"before": load_before, "after": load_after},
        "other_processes_cores": {
            "kt": [round(r["other_cores"], 3) for r in k_runs],
            **({"official": [round(r["other_cores"], 3) for r in o_runs]} if o_runs else {}),
            "note": "average cores used by processes other than the timed child while it ran; > 0.2 inflates timings",
        },
        "rows": rows,
        "per_step": {n: s["history"] for n, s in steps.items()},
        "repeats": {
            "kt": [r["interactions_per_second"] for r in k_runs],
            **({"official": [r["interactions_per_second"] for r in o_runs]} if o_runs else {}),
            "peak_rss_mb": {
                "kt": [r["rss_mb"] for r in k_runs],
                **({"official": [r["rss_mb"] for r in o_runs]} if o_runs else {}),
            },
            "note": "scored positions/s of the timed batches of each fresh process, in run order (official first)",
        },
    }
    if o:
        ratio = k_ips / o_ips
        result["ratios"] = {
            "kt_over_official": ratio,
            "target": TARGET_RATIO,
            "ok": ratio >= TARGET_RATIO,
            "scored_positions_agree": all(
                a["n_scored_all_timed"] == b["n_scored_all_timed"] == BATCH * (WINDOW - 1) * args.steps
                for a, b in zip(k_runs, o_runs)
            ),
            "chunks_agree": all(r["n_chunks"] == n_chunks and r["chunk_lengths"] == [WINDOW] for r in k_runs)
            and all(r["n_chunks"] == n_chunks for r in o_runs),
            "per_repeat": [a["interactions_per_second"] / b["interactions_per_second"] for a, b in zip(k_runs, o_runs)],
            "note": "median scored positions/s of kt over that of the official module, same run of the script",
        }
    from kt.atomic import write_text

    write_text(args.out, json.dumps(result, indent=1) + "\n")

    print()
    print(
        f"CAKT training throughput on {dataset} ({n_chunks} full {WINDOW}-step chunks, {n_kc} KCs, batch {BATCH}, "
        f"k {K_FRAMES}, H {H}); {result['machine']}; load avg before {load_before}, after {load_after}"
    )
    hdr = f"{'impl':<10}{'scored pos/s':>14}{'timed s':>9}{'warm-up s':>11}{'RSS MB':>8}  per repeat"
    print(hdr)
    print("-" * len(hdr))
    for name, r, ips, runs in (("kt", k, k_ips, k_runs), ("official", o, o_ips, o_runs)):
        if r:
            print(
                f"{name:<10}{ips:>14,.1f}{r['timed_seconds']:>9.1f}{r['history'][0]['seconds']:>11.1f}{r['rss_mb']:>8.0f}  "
                + ", ".join(f"{x['interactions_per_second']:,.1f}" for x in runs)
            )
    if o:
        r = result["ratios"]
        print(
            f"\nkt / official: {r['kt_over_official']:.2f}x (target >= {TARGET_RATIO:.0f}x: {'ok' if r['ok'] else 'FAIL'}); "
            f"scored positions agree: {r['scored_positions_agree']}; chunks agree: {r['chunks_agree']}"
        )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
