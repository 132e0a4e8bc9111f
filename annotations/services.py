"""The shared writes of the domain: datasets, comparisons in their canonical order, pseudonyms; and the
check of a "NAME1,NAME2" system pair. File imports are stored by `annotations.imports.write`; votes cast on
the site by `annotations.queue`.
"""
from __future__ import annotations

import secrets

from .models import Comparison, Dataset, Generation, Study, System


def parse_system_names(text: str) -> tuple[str, str]:
    """A crowd batch's "NAME1,NAME2" (system 1 first), as the admin upload, the API and the import command
    take it. Raises ValueError with the message to show unless it is two different names, each short
    enough for its column."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if len(names) != 2 or names[0] == names[1]:
        raise ValueError("Two different system names separated by a comma.")
    limit = System._meta.get_field("name").max_length
    for name in names:
        if len(name) > limit:  # type: ignore[operator]  # a CharField's max_length is an int; stubs say int | None
            raise ValueError(f"A system name has {len(name)} characters, over the limit of {limit}.")
    return names[0], names[1]


def get_or_create_dataset(slug: str, name: str = "", source: str = "") -> Dataset:
    dataset, created = Dataset.objects.get_or_create(slug=slug, defaults={"name": name or slug, "source": source})
    return dataset


def new_pseudonym() -> str:
    return "ann-" + secrets.token_hex(5)


def canonical_pair(generation_x: Generation, generation_y: Generation) -> tuple[Generation, Generation, bool]:
    """(A, B, swapped): A is the generation of the system with the lower id."""
    if generation_x.system_id < generation_y.system_id:
        return generation_x, generation_y, False
    return generation_y, generation_x, True


def unit_key_for(instance_id: int, system_a_id: int, system_b_id: int) -> str:
    return f"{instance_id}:{system_a_id}:{system_b_id}"


def get_or_create_comparison(study: Study, generation_a: Generation, generation_b: Generation,
                             separability: float | None = None, priority: float = 0.0) -> tuple[Comparison, bool]:
    assert generation_a.system_id < generation_b.system_id, "pass the canonical order (see canonical_pair)"
    return Comparison.objects.get_or_create(
        study=study, generation_a=generation_a, generation_b=generation_b,
        defaults={
            "instance_id": generation_a.instance_id,
            "system_a_id": generation_a.system_id,
            "system_b_id": generation_b.system_id,
            "unit_key": unit_key_for(generation_a.instance_id, generation_a.system_id, generation_b.system_id),
            "separability": separability,
            "priority": priority,
        },
    )


