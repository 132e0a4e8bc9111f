"""One-shot check of the separability engine on a GPU: cuda end to end, parity with a CPU reference, timings.

Why this exists: the engine (``separability.engine`` / ``separability.similarity``) picks cuda when
torch sees a GPU, but its GPU path had only ever run on CPU. GPU machines are lent rarely and
briefly (minutes, nothing downloadable there, a 64 MiB limit on what travels), so everything the
check needs is prepared here and it runs as one short command. It shows:

1. ``engine``: ``compute_separability`` runs on cuda end to end, all metrics (bertscore,
   bertscore_length, rouge1), on both paper files in ``demo/data/separability-paper`` (CNN/DM and
   SAMSum, 50 instances each) and on a few edge-case instances (empty texts, a system with one
   sample, a text over 512 tokens, odd unicode, 5 systems); the CNN/DM file also with small chunks
   and a large batch (the values must not depend on either);
2. ``parity``: every token sequence, every per-instance F1 matrix and every self / cross /
   separability value equals the CPU reference in ``.gpucheck/reference.npz``, computed by
   ``bench/make_gpu_check_bundle.py`` on CPU from the same weights. Tolerance (``--tol``, 1e-4):
   BERTScore F1 is a float32 mean of max cosines of unit vectors after 6 float32 layers, so any
   change of summation order (GPU kernels, batch composition, threads) moves it by about 1e-7 to
   1e-6 (the bundle measures this on CPU: batch 1 / 1 thread vs batch 64 / all threads, stored as
   ``cpu_noise``; the engine vs bert-score's one-pair calls differ by ~1e-6 too). 1e-4 is ~100x that
   noise and still 10x below what a real numerical change gives (TF32 matmuls, fp16 weights or
   activations, a different tokenisation: 1e-3 and more); separability values that matter differ by
   1e-2. self / cross / separability are means and differences of F1, so the same bound applies.
   ROUGE-1 is integer arithmetic on the CPU and must be exactly equal; which values are undefined
   (None) must match exactly. (The float16 rounding of the travelling weights alone moves F1 by up
   to ~1.4e-4 against the original float32 weights, ``fp16_weights_effect`` in the reference: that
   is why the reference is computed from the same rounded weights, not from the package's.)
3. ``bench``: ``bench/separability.py``'s modes a/b/c/d vs bert-score on the GPU (CNN/DM, then
   SAMSum if time allows), with its ratios and its own parity against bert-score's one-pair calls;
4. ``scaling``: synthetic instances (``bench/separability.py``'s generator; default 300 instances x
   10 systems x k = 5 = 15,000 texts): texts/s for tokenising, encoding at batch 64 and 256,
   ``compute_separability`` with bertscore only and with all metrics, and peak GPU memory; then
   ``scaling_large`` (default 1,000 instances = 50,000 texts) the same, if 90 s of the budget remain.

Each part runs under a time cap (SIGALRM) inside a global budget (``--budget-s``, 300 s; about
2 to 3 minutes are expected on an H100), a failure or a timeout in one part is recorded and the
next part runs, and ``gpu_check.json`` is rewritten after every step, so what finished is never
lost. The second bench file and ``scaling_large`` are optional: skipped for lack of time they do
not fail the check. It fails at once (exit 2) when cuda is not available,
unless ``--allow-cpu`` (only for a dry run off the GPU). Exit 0 only when every part passed.

Run on the GPU machine, from the repository root, with ``.gpucheck`` and ``.whl`` carried
(see ``bench/make_gpu_check_bundle.py``, which makes both, and ``bench/gpu_check.sh``)::

    bash bench/gpu_check.sh "$OUT"

Dry run on this machine (CPU, a scratch venv with the GPU image's transformers 5, the wheels
installed as on the device)::

    python3 -m venv /tmp/tf5 && /tmp/tf5/bin/pip install torch==2.13.0 transformers==5.17.0 tokenizers==0.23.2 \
        huggingface_hub==1.33.0 safetensors numpy pandas matplotlib requests tqdm packaging absl-py six click \
        joblib regex
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site /tmp/tf5/bin/python bench/gpu_check.py --allow-cpu --out /tmp/gpu_check_out \\
        --bench-instances 2 --bench-files cnn_dm --scaling-instances 10
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Nothing may reach a hub: local folders only.
for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_k, _v)
# The paper files travel with the repository (demo/data); ../shared does not travel to the GPU machine.
os.environ.setdefault("SEPEVAL_SHARED", str(ROOT / "demo"))

import numpy as np  # noqa: E402

from bench.separability import sync  # noqa: E402 - after the environment above

PAPER_DIR = ROOT / "demo" / "data" / "separability-paper"
PAPER_FILES = {
    "cnn_dm": "flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv",
    "samsum": "mistral-7b_vicuna-7b_samsum_pref_data.csv",
}
DATASETS = ("cnn_dm", "samsum", "edge")
BUNDLE = ROOT / ".gpucheck"
BERT_METRICS = ("bertscore", "bertscore_length")


# ----------------------------------------------------------------------------- data (shared with the bundle script)
def edge_instances():
    """Small instances for the engine's special paths; deterministic, so the reference can hold them."""
    from separability.engine import InstanceSamples

    long = " ".join(f"The committee met on day {i} to discuss the budget and the new road." for i in range(60))
    return [
        InstanceSamples("empty", {
            "a": ["", "   ", "A short summary."],
            "b": ["A short summary.", "a short summary.", "The weather was sunny and warm all week."],
        }),
        InstanceSamples("k1", {
            "a": ["Only one sample here."],
            "b": ["Two samples.", "Two samples, again."],
            "c": ["Same.", "Same.", "Same."],
        }),
        InstanceSamples("long", {
            "x": [long, long + " A tail past the 512-token limit.", "Short one."],
            "y": ["Café naïve 東京 — “quotes” … ½", "Ｆｕｌｌｗｉｄｔｈ text\u00a0here", "e\u0301 tab\tnew\nline"],
        }),
        InstanceSamples("many", {
            s: [f"System {s} writes sentence {j} about topic {(s * j) % 5}." for j in range(3)] for s in range(5)
        }),
    ]


def dataset(name: str):
    if name == "edge":
        return edge_instances()
    from bench.separability import load_paper_file

    return load_paper_file(PAPER_DIR / PAPER_FILES[name])


def instance_texts(inst) -> list[str]:
    return list(dict.fromkeys(t for s in sorted(inst.samples) for t in inst.samples[s]))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def compute_record(scorer, instances, max_texts_per_chunk: int = 2048, with_f1: bool = True) -> dict:
    """Everything parity compares, as numpy arrays: token ids of each distinct text, each instance's
    F1 matrix over its distinct texts, and (self_a, self_b, cross, separability) of every PairResult
    (NaN = None) with its key ``instance|a|b|metric``."""
    from separability.engine import METRICS, compute_separability

    texts = list(dict.fromkeys(t for inst in instances for t in instance_texts(inst)))
    toks = [scorer.tokenize(t) for t in texts]
    rec = {
        "tok_flat": np.array([x for s in toks for x in s], dtype=np.int64),
        "tok_offs": np.cumsum([0] + [len(s) for s in toks]).astype(np.int64),
    }
    if with_f1:
        mats = [scorer.f1_matrix(instance_texts(inst)) for inst in instances]
        rec["f1_flat"] = np.concatenate([m.ravel() for m in mats]) if mats else np.zeros(0)
        rec["f1_sizes"] = np.array([m.shape[0] for m in mats], dtype=np.int64)
    keys, vals = [], []
    for chunk in compute_separability(instances, scorer, METRICS, max_texts_per_chunk=max_texts_per_chunk):
        for r in chunk:
            keys.append(f"{r.key}|{r.system_a}|{r.system_b}|{r.metric}")
            vals.append([np.nan if v is None else v for v in (r.self_a, r.self_b, r.cross, r.separability)])
    sync(scorer.device)
    rec["res_keys"] = np.array(keys, dtype=str)
    rec["res_vals"] = np.array(vals, dtype=np.float64).reshape(-1, 4)
    return rec


def compare(ref: dict, got: dict, tol: float) -> dict:
    """Max |diff| per quantity and metric, mismatch counts, and pass/fail at ``tol`` (ROUGE-1: exact)."""
    out: dict = {}
    same_tok = np.array_equal(ref["tok_offs"], got["tok_offs"]) and np.array_equal(ref["tok_flat"], got["tok_flat"])
    out["tokens_equal"] = bool(same_tok)
    if not same_tok:
        ro, go = ref["tok_offs"], got["tok_offs"]
        n = min(len(ro), len(go)) - 1
        out["texts_with_other_tokens"] = int(
            sum(not np.array_equal(ref["tok_flat"][ro[i]:ro[i + 1]], got["tok_flat"][go[i]:go[i + 1]])
                for i in range(n))
        )
    ok = same_tok
    if "f1_flat" in got:
        if ref["f1_flat"].shape == got["f1_flat"].shape:
            out["f1_matrix_max_abs_diff"] = float(np.max(np.abs(ref["f1_flat"] - got["f1_flat"]), initial=0.0))
            ok &= out["f1_matrix_max_abs_diff"] <= tol
        else:
            out["f1_matrix_shape_mismatch"] = [list(ref["f1_flat"].shape), list(got["f1_flat"].shape)]
            ok = False
    if list(ref["res_keys"]) != list(got["res_keys"]):
        out["result_keys_equal"] = False
        return {**out, "pass": False}
    out["result_keys_equal"] = True
    out["results"] = int(len(ref["res_keys"]))
    metric = np.array([str(k).rsplit("|", 1)[1] for k in ref["res_keys"]])
    per_metric = {}
    for m in sorted({str(x) for x in metric}):
        sel = metric == m
        a, b = ref["res_vals"][sel], got["res_vals"][sel]
        none_mismatch = int(np.sum(np.isnan(a) != np.isnan(b)))
        d = np.abs(np.nan_to_num(a, nan=0.0) - np.nan_to_num(b, nan=0.0))
        entry = {
            "none_pattern_mismatches": none_mismatch,
            "defined_separability": int(np.sum(~np.isnan(a[:, 3]))),
        }
        for j, name in enumerate(("self_a", "self_b", "cross", "separability")):
            entry[f"max_abs_diff_{name}"] = float(d[:, j].max(initial=0.0))
        worst = max(entry[f"max_abs_diff_{n}"] for n in ("self_a", "self_b", "cross", "separability"))
        entry["max_abs_diff"] = worst
        limit = tol if m in BERT_METRICS else 0.0
        entry["tolerance"] = limit
        entry["pass"] = none_mismatch == 0 and worst <= limit
        ok &= entry["pass"]
        per_metric[m] = entry
    out["metrics"] = per_metric
    out["pass"] = bool(ok)
    return out


def load_reference(bundle: Path) -> tuple[dict, dict]:
    meta = json.loads((bundle / "reference.json").read_text())
    with np.load(bundle / "reference.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    ref = {}
    for name in meta["datasets"]:
        ref[name] = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith(name + "/")}
    return meta, ref


# ----------------------------------------------------------------------------- running parts under caps
class PartTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise PartTimeout("time cap reached")


class Check:
    def __init__(self, args):
        self.args = args
        self.t0 = time.perf_counter()
        self.deadline = self.t0 + args.budget_s
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.state: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "argv": sys.argv[1:], "parts": {}}
        self.failed: list[str] = []

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.t0:6.1f}s] {msg}", flush=True)

    def save(self) -> None:
        self.state["elapsed_s"] = round(time.perf_counter() - self.t0, 2)
        self.state["failed_parts"] = self.failed
        tmp = self.out / "gpu_check.json.tmp"
        tmp.write_text(json.dumps(self.state, indent=1, default=str))
        os.replace(tmp, self.out / "gpu_check.json")

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def run(self, name: str, fn, cap_s: float, min_s: float = 5.0, optional: bool = False):
        """Run ``fn(part_dict)`` under min(cap_s, what is left of the budget); record status, never raise.

        An ``optional`` part that is skipped or hits its time cap does not fail the check (an error does).
        """
        part = self.state["parts"].setdefault(name, {})
        left = self.remaining()
        if left < min_s:
            part["status"] = f"skipped: {left:.0f} s of the budget left"
            if not optional:
                self.failed.append(name)
            self.log(f"== {name}: {part['status']}")
            self.save()
            return None
        cap = max(1, int(min(cap_s, left)))
        self.log(f"== {name} (cap {cap} s)")
        t = time.perf_counter()
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(cap)
        try:
            value = fn(part)
            part.setdefault("status", "ok")
            if part["status"] != "ok":
                self.failed.append(name)
            return value
        except PartTimeout:
            part["status"] = f"timeout after {cap} s" + (
                " (optional part; what it finished is kept)" if optional else "")
            if not optional:
                self.failed.append(name)
        except Exception as exc:  # record, keep going
            part["status"] = f"error: {type(exc).__name__}: {exc}"
            part["traceback"] = traceback.format_exc()
            self.failed.append(name)
            print(part["traceback"], file=sys.stderr, flush=True)
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
            part["seconds"] = round(time.perf_counter() - t, 2)
            self.log(f"== {name}: {part.get('status')} ({part['seconds']:.1f} s)")
            self.save()
        return None


# ----------------------------------------------------------------------------- parts
def part_env(chk: Check, part: dict) -> None:
    import torch

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_fp32_precision": str(getattr(torch.backends.cuda.matmul, "fp32_precision", None)),
    }
    for mod in ("transformers", "tokenizers", "huggingface_hub", "safetensors", "bert_score", "nltk", "rouge_score"):
        try:
            m = __import__(mod)
            info[mod] = getattr(m, "__version__", "?") + f" ({Path(m.__file__).parent})"
        except Exception as exc:
            info[mod] = f"MISSING: {exc}"
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), gpu_capability=list(torch.cuda.get_device_capability(0)),
                    gpu_memory_gib=round(p.total_memory / 2**30, 1), gpu_count=torch.cuda.device_count())
        try:
            info["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as exc:
            info["nvidia_smi"] = f"unavailable: {exc}"
    part.update(info)
    chk.state["env"] = info
    meta = chk.meta
    checks = {"model_sha256_ok": sha256(chk.model_dir / "model.safetensors") == meta["model_sha256"]}
    for name, fname in PAPER_FILES.items():
        checks[f"{name}_file_sha256_ok"] = sha256(PAPER_DIR / fname) == meta["data_sha256"][fname]
    part["bundle_checks"] = checks
    part["reference_made_with"] = meta.get("made_with")
    for k in ("python", "torch", "transformers", "tokenizers", "bert_score", "gpu", "gpu_memory_gib",
              "allow_tf32_matmul"):
        chk.log(f"  {k}: {info.get(k)}")
    if not all(checks.values()):
        part["status"] = f"bundle mismatch: {checks} (regenerate with bench/make_gpu_check_bundle.py)"


def part_engine(chk: Check, part: dict) -> None:
    import torch

    from separability.engine import SeparabilityScorer, compute_separability

    dev = chk.device
    t = time.perf_counter()
    scorer = SeparabilityScorer(chk.model_dir, num_layers=6, device=dev, batch_size=chk.args.batch_size)
    part["load_s"] = round(time.perf_counter() - t, 2)
    dtypes = sorted({str(p.dtype) for p in scorer.model.parameters()})
    part["param_dtypes_loaded"] = dtypes
    if dtypes != ["torch.float32"]:  # transformers 5 loads a checkpoint's dtype unless config says float32
        scorer.model.float()
        part["upcast_to_float32"] = True
    devices = sorted({str(p.device) for p in scorer.model.parameters()})
    probe = scorer.encode([scorer.tokenize("A probe sentence.")])[0]
    part.update(scorer_device=scorer.device, param_devices=devices, embedding_device=str(probe.device),
                embedding_dtype=str(probe.dtype),
                attn_implementation=getattr(scorer.model.config, "_attn_implementation", None))
    if dev.startswith("cuda") and not (devices == ["cuda:0"] and probe.device.type == "cuda"):
        raise RuntimeError(f"model or embeddings not on cuda: params {devices}, embeddings {probe.device}")
    chk.scorer = scorer
    list(compute_separability(edge_instances()[:1], scorer))  # warm-up (first kernels, lazy imports)
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    parity = chk.state["parts"].setdefault(
        "parity", {"tolerance": chk.args.tol, "cpu_noise_in_reference": chk.meta.get("cpu_noise")})
    parity["status"] = "incomplete: the engine part did not finish"
    runs = [(name, name, 2048, None) for name in DATASETS]
    runs += [("cnn_dm/chunk64", "cnn_dm", 64, None), ("cnn_dm/batch256", "cnn_dm", 2048, 256)]
    all_ok = True
    for label, name, chunk, bs in runs:
        insts = dataset(name)
        scorer.batch_size = bs or chk.args.batch_size
        t = time.perf_counter()
        got = compute_record(scorer, insts, max_texts_per_chunk=chunk, with_f1=(bs is None and chunk == 2048))
        secs = time.perf_counter() - t
        scorer.batch_size = chk.args.batch_size
        vals = got["res_vals"]
        keys = got["res_keys"]
        metric = np.array([k.rsplit("|", 1)[1] for k in keys])
        summary = {
            "instances": len(insts),
            "distinct_texts": int(len(got["tok_offs"]) - 1),
            "pair_results": int(len(keys)),
            "seconds_incl_f1_matrices": round(secs, 3),
            "mean_separability": {m: float(np.nanmean(vals[metric == m, 3])) for m in sorted(set(metric))
                                  if np.any(~np.isnan(vals[metric == m, 3]))},
            "undefined": int(np.sum(np.isnan(vals[:, 3]))),
        }
        part[label] = summary
        cmp = compare(chk.ref[name], got, chk.args.tol)
        parity[label] = cmp
        all_ok &= cmp["pass"]
        worst = {m: f"{e['max_abs_diff']:.1e}" for m, e in cmp.get("metrics", {}).items()}
        chk.log(f"  {label}: {summary['instances']} inst, {summary['distinct_texts']} texts, "
                f"{summary['pair_results']} results, "
                f"{secs:.2f} s; tokens equal {cmp['tokens_equal']}, "
                f"F1 matrix diff {cmp.get('f1_matrix_max_abs_diff', float('nan')):.1e}, "
                f"max diff per metric {worst} -> {'PASS' if cmp['pass'] else 'FAIL'}")
        chk.save()
    if dev.startswith("cuda"):
        part["max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    parity["pass"] = bool(all_ok)
    parity["status"] = "ok" if all_ok else "FAIL: GPU values differ from the CPU reference beyond the tolerance"
    if not all_ok:
        chk.failed.append("parity")


def part_bench(chk: Check, part: dict, name: str) -> None:
    from bench import separability as bench

    args = argparse.Namespace(file=str(PAPER_DIR / PAPER_FILES[name]), instances=chk.args.bench_instances,
                              repeat=chk.args.bench_repeat, device=chk.device, batch_size=chk.args.batch_size,
                              model=str(chk.model_dir))
    r = bench.run_comparison(args)
    part.update(r)
    bench.print_comparison(r)
    if r["max_abs_f1_diff_ours_vs_a"] > chk.args.tol or r["max_abs_alignment_diff_ours_vs_a"] > chk.args.tol:
        part["status"] = "FAIL: ours vs bert-score one-pair calls beyond the tolerance"


def part_scaling(chk: Check, part: dict, n: int) -> None:
    import torch

    from bench.separability import synthetic_instances
    from separability import rouge as rouge_mod
    from separability.engine import compute_separability

    scorer = chk.scorer
    if scorer is None:
        raise RuntimeError("no scorer (the engine part failed)")
    s, k = chk.args.scaling_systems, chk.args.scaling_k
    insts = synthetic_instances(n, s, k)
    texts = [t for inst in insts for v in inst.samples.values() for t in v]
    distinct = list(dict.fromkeys(texts))
    part.update(instances=n, systems=s, k=k, texts=len(texts), distinct_texts=len(distinct))
    dev = scorer.device
    if dev.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    seqs = list(dict.fromkeys(scorer.tokenize(x) for x in distinct))
    part["tokenize_s"] = round(time.perf_counter() - t, 3)
    part["distinct_token_seqs"] = len(seqs)
    part["tokens"] = int(sum(len(q) for q in seqs))
    chk.log(f"  {n} x {s} x {k}: {len(texts)} texts, {len(distinct)} distinct, {part['tokens']} tokens; "
            f"tokenise {part['tokenize_s']:.2f} s ({len(distinct) / part['tokenize_s']:.0f} texts/s)")
    chk.save()
    for bs in (64, 256):
        scorer.batch_size = bs
        scorer.encode(seqs[:bs])  # warm this shape range
        sync(dev)
        t = time.perf_counter()
        embs = scorer.encode(seqs)
        sync(dev)
        secs = time.perf_counter() - t
        del embs
        part[f"encode_bs{bs}_s"] = round(secs, 3)
        part[f"encode_bs{bs}_texts_per_s"] = round(len(seqs) / secs, 1)
        part[f"encode_bs{bs}_tokens_per_s"] = round(part["tokens"] / secs, 1)
        chk.log(f"  encode only, batch {bs}: {secs:.2f} s = {len(seqs) / secs:.0f} texts/s, "
                f"{part['tokens'] / secs:.0f} tokens/s")
        chk.save()
    scorer.batch_size = chk.args.batch_size
    for label, metrics in (("bertscore_only", ("bertscore",)), ("all_metrics", None)):
        if chk.remaining() < 20:
            part[f"{label}"] = "skipped: budget"
            continue
        rouge_mod.clear_cache()
        kw = {} if metrics is None else {"metrics": metrics}
        t = time.perf_counter()
        nres = sum(len(c) for c in compute_separability(insts, scorer, **kw))
        sync(dev)
        secs = time.perf_counter() - t
        part[label] = {"seconds": round(secs, 3), "pair_results": nres, "texts_per_s": round(len(texts) / secs, 1),
                       "distinct_texts_per_s": round(len(distinct) / secs, 1),
                       "ms_per_instance": round(1000 * secs / n, 2),
                       "batch_size": scorer.batch_size}
        chk.log(f"  compute_separability {label}: {secs:.2f} s, {len(texts) / secs:.0f} texts/s "
                f"({len(distinct) / secs:.0f} distinct/s), {1000 * secs / n:.1f} ms/instance")
        chk.save()
    if dev.startswith("cuda"):
        part["max_memory_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("OUT") or str(ROOT / "gpu_check_out"),
                   help="folder for gpu_check.json (default $OUT)")
    p.add_argument("--bundle", default=str(BUNDLE), help="folder made by make_gpu_check_bundle.py")
    p.add_argument("--device", default="cuda")
    p.add_argument("--allow-cpu", action="store_true", help="dry run without a GPU (never on the GPU machine)")
    p.add_argument("--budget-s", type=float, default=300, help="wall-time budget for all parts")
    p.add_argument("--tol", type=float, default=1e-4, help="max |GPU - CPU reference| for BERTScore values")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--bench-instances", type=int, default=50)
    p.add_argument("--bench-repeat", type=int, default=3)
    p.add_argument("--bench-files", default="cnn_dm,samsum", help="comma list of cnn_dm, samsum; empty: no bench")
    p.add_argument("--scaling-instances", type=int, default=300, help="0: no scaling part")
    p.add_argument("--scaling-large-instances", type=int, default=1000,
                   help="a larger point if >= 90 s are left; 0: none")
    p.add_argument("--scaling-systems", type=int, default=10)
    p.add_argument("--scaling-k", type=int, default=5)
    args = p.parse_args(argv)

    chk = Check(args)
    chk.scorer = None
    chk.model_dir = Path(args.bundle) / "model"
    chk.meta, chk.ref = load_reference(Path(args.bundle))
    chk.log(f"gpu_check: out {chk.out}, bundle {args.bundle}, budget {args.budget_s:.0f} s")

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        if not args.allow_cpu:
            chk.state["fatal"] = "cuda is not available to torch: this is not a GPU run"
            chk.run("env", lambda part: part_env(chk, part), 60)
            chk.failed.append("cuda")
            chk.save()
            print("\n" + "!" * 78
                  + "\nFAIL: torch.cuda.is_available() is False - refusing to run the GPU check on CPU.\n"
                  + "!" * 78, flush=True)
            return 2
        args.device = "cpu"
        chk.state["dry_run_on_cpu"] = True
        chk.log("!!! --allow-cpu: DRY RUN ON CPU, not a GPU result !!!")
    chk.device = args.device
    chk.state["device"] = args.device

    chk.run("env", lambda part: part_env(chk, part), 60)
    chk.run("engine", lambda part: part_engine(chk, part), 150, min_s=30)
    for i, name in enumerate(f for f in args.bench_files.split(",") if f):
        # the first file is required; a further one only runs if a fair share of the budget remains
        chk.run(f"bench_{name}", lambda part, n=name: part_bench(chk, part, n), 150, min_s=45, optional=i > 0)
    if args.scaling_instances > 0:
        chk.run("scaling", lambda part: part_scaling(chk, part, args.scaling_instances), 150, min_s=20)
    if args.scaling_large_instances > 0:  # only with time to spare
        chk.run("scaling_large", lambda part: part_scaling(chk, part, args.scaling_large_instances), 150, min_s=90,
                optional=True)

    # ------------------------------------------------------------------ compact summary
    st = chk.state
    env = st.get("env", {})
    print("\n======== gpu_check summary ========")
    print(f"device {st.get('device')}{' (DRY RUN ON CPU)' if st.get('dry_run_on_cpu') else ''}: "
          f"{env.get('gpu', 'no GPU')}; "
          f"torch {env.get('torch')} (CUDA {env.get('torch_cuda')}), "
          f"transformers {env.get('transformers', '?').split(' ')[0]}, "
          f"Python {env.get('python')}; TF32 matmul {env.get('allow_tf32_matmul')}")
    par = st["parts"].get("parity", {})
    for label, c in par.items():
        if isinstance(c, dict) and "pass" in c:
            ms = ", ".join(f"{m} {e['max_abs_diff']:.1e}" for m, e in c.get("metrics", {}).items())
            print(f"parity {label}: F1 matrices {c.get('f1_matrix_max_abs_diff', float('nan')):.1e}; {ms} "
                  f"-> {'PASS' if c['pass'] else 'FAIL'}")
    for name in [f for f in args.bench_files.split(",") if f]:
        b = st["parts"].get(f"bench_{name}", {})
        if "times_s" in b:
            t, r = b["times_s"], b["ratios"]
            print(f"bench {name} ({b['instances']} inst): a {t['a']:.2f} s, b {t['b']:.2f} s, c {t['c']:.2f} s, "
                  f"d {t['d']:.2f} s; "
                  f"d/a {r['d/a']:.3f} ({1 / r['d/a']:.1f}x), d/b {r['d/b']:.3f}, d/c {r['d/c']:.3f}; "
                  f"F1 vs one-pair calls {b['max_abs_f1_diff_ours_vs_a']:.1e}")
        else:
            print(f"bench {name}: {b.get('status', 'not run')}")
    for label in ("scaling", "scaling_large"):
        sc = st["parts"].get(label, {})
        if "encode_bs64_s" not in sc:
            continue
        am, bo = sc.get("all_metrics", {}), sc.get("bertscore_only", {})
        am, bo = (x if isinstance(x, dict) else {} for x in (am, bo))
        print(f"{label} {sc.get('instances')}x{sc.get('systems')}x{sc.get('k')} ({sc.get('texts')} texts, "
              f"{sc.get('distinct_texts')} distinct): "
              f"tokenise {sc.get('tokenize_s')} s; encode {sc.get('encode_bs64_texts_per_s')} texts/s (bs64), "
              f"{sc.get('encode_bs256_texts_per_s')} (bs256); "
              f"compute_separability bertscore only {bo.get('texts_per_s', '-')} texts/s "
              f"({bo.get('seconds', '-')} s), all metrics {am.get('texts_per_s', '-')} texts/s "
              f"({am.get('seconds', '-')} s); "
              f"peak GPU memory {sc.get('max_memory_allocated_mb')} MB")
    for name, part in st["parts"].items():
        if part.get("status", "ok") != "ok":
            print(f"part {name}: {part['status']}")
    ok = not chk.failed
    st["pass"] = ok
    chk.save()
    print(f"RESULT: {'PASS' if ok else 'FAIL ' + ', '.join(chk.failed)}; elapsed {time.perf_counter() - chk.t0:.1f} s; "
          f"json {chk.out / 'gpu_check.json'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
