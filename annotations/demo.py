"""The demo: the separability paper's two crowd batches and the PandaLM human test set.

The files live in demo/data/ with their origin and licence (demo/data/README.md). PandaLM has no
instance ids: an instance is one prompt (instruction + input); each of its items is one comparison
judged by the same three annotators.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from .importers import ImportFileError, ParsedGenerations, ParsedGeneration, ParsedInstance, read_utf8_text

DEMO_DIR = Path(settings.BASE_DIR) / "demo" / "data"


@dataclass(frozen=True)
class PairwiseDemo:
    file: str
    dataset: str
    study: str
    name: str
    systems: tuple[str, str]


PAPER_DEMOS = (
    PairwiseDemo("separability-paper/flan-t5-xxl_gpt-3.5_turbo_instruct_cnn_dm_pref_data.csv", "cnn-dm",
                 "cnn-dm-summaries", "CNN/DailyMail summaries (the separability paper's crowd batch)",
                 ("flan-t5-xxl", "gpt-3.5-turbo-instruct")),
    PairwiseDemo("separability-paper/mistral-7b_vicuna-7b_samsum_pref_data.csv", "samsum",
                 "samsum-summaries", "SAMSum dialogue summaries (the separability paper's crowd batch)",
                 ("mistral-7b", "vicuna-7b")),
)
PAPER_SOURCE = ("dill-lab/separability @ 933ec51e, data/preference_data/ (Ghosh, Srinivasan & Swayamdipta, "
                "EMNLP Findings 2024). MIT licence.")
PANDALM_FILE = "pandalm/testset-v1.json"
PANDALM_DATASET = "pandalm"
PANDALM_STUDY = "pandalm-instructions"
PANDALM_SOURCE = ("WeOpenML/PandaLM @ 3871806e, data/testset-v1.json (Wang et al., ICLR 2024). Apache-2.0.")
PANDALM_LABELS = {0: "tie", 1: "first", 2: "second"}


@dataclass
class PandaLMItem:
    idx: int
    instance_key: str
    system_1: str
    system_2: str
    sample_1: int
    sample_2: int
    labels: list[str]  # per annotator: "tie", "first" (response1) or "second"
    line: int


def pandalm_prompt(item: dict) -> str:
    instruction, extra = item["instruction"].strip(), (item.get("input") or "").strip()
    return f"{instruction}\n\n{extra}" if extra else instruction


def parse_pandalm(path: Path) -> tuple[ParsedGenerations, list[PandaLMItem]]:
    name = str(path)
    try:
        items = json.loads(read_utf8_text(path))
    except json.JSONDecodeError as exc:
        raise ImportFileError(name, exc.lineno, "json", f"malformed JSON ({exc.msg})") from None
    parsed = ParsedGenerations(name)
    prompt_ids: dict[str, str] = {}
    samples: dict[tuple[str, str], list[str]] = defaultdict(list)
    result = []
    for position, item in enumerate(items, start=1):
        prompt = pandalm_prompt(item)
        if prompt not in prompt_ids:
            prompt_ids[prompt] = f"p{item['idx']:04d}"
            parsed.instances[prompt_ids[prompt]] = ParsedInstance(prompt_ids[prompt], position, prompt, None,
                                                                  {"app": item.get("motivation_app", "")})
        key = prompt_ids[prompt]
        system_1, system_2 = item["cmp_key"].split("_")
        indexes = []
        for system, text in ((system_1, item["response1"]), (system_2, item["response2"])):
            texts = samples[(key, system)]
            if text not in texts:
                texts.append(text)
                parsed.generations.append(ParsedGeneration(key, system, len(texts) - 1, text, position, "response"))
            indexes.append(texts.index(text))
        labels = []
        for annotator in ("annotator1", "annotator2", "annotator3"):
            if item[annotator] not in PANDALM_LABELS:
                raise ImportFileError(name, position, annotator, f"{item[annotator]!r} is not 0, 1 or 2")
            labels.append(PANDALM_LABELS[item[annotator]])
        result.append(PandaLMItem(item["idx"], key, system_1, system_2, indexes[0], indexes[1], labels, position))
    return parsed, result
