"""The separability app: it sits above annotations and hands it what it needs without being imported by
it (dependencies run one way: docs/design.md §1)."""
from django.apps import AppConfig


def alignment_lookup(study, system_ids):
    """Normalised separability of the study's metric per (instance, system pair) of its dataset."""
    from .models import Alignment

    return {
        (a.instance_id, a.system_a_id, a.system_b_id): a.normalised
        for a in Alignment.objects.filter(instance__dataset=study.dataset, metric=study.policy_metric,
                                          system_a_id__in=system_ids, system_b_id__in=system_ids)
        .only("instance_id", "system_a_id", "system_b_id", "normalised")
    }


class SeparabilityConfig(AppConfig):
    name = "separability"
    verbose_name = "Separability"

    def ready(self):
        from annotations.selection import use_separability_lookup

        use_separability_lookup(alignment_lookup)
