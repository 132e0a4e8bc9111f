"""An adaptive study's serving priorities follow the votes: the debounced recompute (the real task
function) moves the comparisons of a still undecided system pair ahead of those of decided pairs, and
leaves studies under the other policies alone."""
import pytest

from annotations.models import Comparison, Study
from ranking.priorities import adaptive_report, refresh_adaptive_priorities
from ranking.tasks import recompute_leaderboards
from tests.factories import add_vote, make_rating_study

pytestmark = [pytest.mark.services, pytest.mark.django_db]


def constructed_study(policy):
    """alpha and beta split 6-6; both beat gamma 12 of 12; one open comparison per pair and instance."""
    study = make_rating_study(slug=f"adaptive-{policy}", systems=("alpha", "beta", "gamma"), n_instances=4,
                              policy=policy, votes_per_comparison=20)
    for n in range(12):
        add_vote(study, "alpha", "beta", "x" if n % 2 else "y", instance=n % 4, apply=False)
        add_vote(study, "alpha", "gamma", "x", instance=n % 4, apply=False)
        add_vote(study, "beta", "gamma", "x", instance=n % 4, apply=False)
    return study


def priorities_by_pair(study):
    out = {}
    for c in Comparison.objects.filter(study=study).select_related("system_a", "system_b"):
        out.setdefault(frozenset((c.system_a.name, c.system_b.name)), []).append(c.priority)
    return out


def test_the_recompute_serves_the_undecided_pair_first(postgres):
    study = constructed_study(Study.Policy.ADAPTIVE)
    before = priorities_by_pair(study)
    assert {p for ps in before.values() for p in ps} == {0.0}  # as opened: no separability, no order
    recompute_leaderboards(study.pk)
    after = priorities_by_pair(study)
    undecided = after[frozenset(("alpha", "beta"))]
    decided = after[frozenset(("alpha", "gamma"))] + after[frozenset(("beta", "gamma"))]
    assert len(undecided) == 4 and len(decided) == 8
    assert min(undecided) > max(decided), after  # the four alpha-beta comparisons hold the top places
    report = adaptive_report(study)
    assert report["votes"] == 36 and report["undecided_count"] == 1
    assert [(u["system_a"], u["system_b"]) for u in report["undecided"]] == [("alpha", "beta")]
    assert sum(report["histogram"]["counts"]) == report["open_comparisons"] == 12


def test_more_votes_deciding_the_pair_move_it_back(postgres):
    study = constructed_study(Study.Policy.ADAPTIVE)
    recompute_leaderboards(study.pk)
    for n in range(30):
        add_vote(study, "alpha", "beta", "x", instance=n % 4, apply=False)  # alpha now clearly ahead
    for n in range(2):
        add_vote(study, "beta", "gamma", "y", instance=n, apply=False)  # beta-gamma less certain than before
    recompute_leaderboards(study.pk)
    after = priorities_by_pair(study)
    assert max(after[frozenset(("alpha", "beta"))]) < max(after[frozenset(("beta", "gamma"))])


def test_other_policies_keep_their_priorities(postgres):
    study = constructed_study(Study.Policy.ALL)
    recompute_leaderboards(study.pk)
    assert refresh_adaptive_priorities(study) == 0
    assert set(Comparison.objects.filter(study=study).values_list("priority", flat=True)) == {0.0}
