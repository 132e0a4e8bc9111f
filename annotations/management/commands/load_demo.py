"""`load_demo [--json]`: the paper's two crowd batches and PandaLM, with their historical votes, the demo
studies opened, a staff account and an annotator invite link. Safe to run again: nothing is doubled."""
import json
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from annotations import demo
from annotations.importers import parse_pairwise_csv, write_generations
from annotations.models import Generation, InviteLink, Study, System, Vote
from annotations.selection import open_study
from annotations.services import (
    canonical_pair,
    get_or_create_comparison,
    get_or_create_dataset,
    get_or_create_imported_annotator,
    store_historical_vote,
    write_pairwise,
)

from ._importing import run_atomically_or_exit

STAFF_USERNAME = "researcher"
DEMO_INSTRUCTIONS = {
    "cnn-dm-summaries": "Read both summaries of the same news article and pick the better summary: "
                               "accurate, complete and concise. Pick **Tie** only if you truly cannot choose.",
    "samsum-summaries": "Read both summaries of the same chat conversation and pick the better summary: "
                                "faithful to the dialogue, covers who did what, concise.",
    demo.PANDALM_STUDY: "Read the instruction and the two responses. Pick the response that follows the "
                        "instruction better and is more correct and helpful.",
}


def refuse_pandalm_from_the_old_reader(dataset):
    """The reader before this one stored empty responses and, for prompts generated more than once, extra
    samples; its instances do not match today's, so loading over them would fail on a stored sample
    (or mix two readings). Say so, and what to do, instead of the first conflicting line."""
    old = Generation.objects.filter(instance__dataset=dataset).filter(Q(sample_index__gt=0) | Q(text=""))
    if old.exists():
        raise CommandError(
            f"dataset {dataset.slug!r} was loaded by an older PandaLM reader (it holds empty responses or more "
            "than one sample per prompt and system; see demo/data/README.md). Delete the study "
            f"{demo.PANDALM_STUDY!r} and the dataset {dataset.slug!r} (admin), or start from a fresh database "
            "(remove db.sqlite3), and run load_demo again.")


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
        parser.add_argument("--skip-separability", action="store_true",
                            help="Do not compute separability (studies open with policy 'all').")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options):
        say = self.stderr.write if options["json"] else self.stdout.write
        studies = run_atomically_or_exit(self, self.load_data, say)
        if not options["skip_separability"]:
            self.compute_separability(say)
        for slug in studies:
            open_study(Study.objects.get(slug=slug))
        self.rebuild_ratings(studies)
        password = secrets.token_urlsafe(9)
        self.ensure_staff(password)
        invite = self.ensure_invite(studies)
        invite_url = f"{options['base_url'].rstrip('/')}/invite/{invite.token}/"
        if options["json"]:
            self.stdout.write(json.dumps({"staff": {"username": STAFF_USERNAME, "password": password},
                                          "invite_url": invite_url, "studies": studies}))
            return
        say("")
        say("Demo loaded:")
        for slug in studies:
            study = Study.objects.get(slug=slug)
            say(f"  study {slug}: {study.comparisons.count()} comparisons, {study.votes.count()} votes")
        say(f"  staff account: {STAFF_USERNAME} / {password}   (sign in at {options['base_url']}/admin/)")
        say(f"  annotator invite link: {invite_url}")

    def load_data(self, say):
        studies = []
        for paper in demo.PAPER_DEMOS:
            parsed = parse_pairwise_csv(demo.DEMO_DIR / paper.file, settings.IMPORT_MAX_TEXT_BYTES)
            study, summary = write_pairwise(parsed, paper.dataset, paper.study, paper.systems)
            self.describe(study, paper.name, demo.PAPER_SOURCE)
            say(f"{paper.study}: {summary.as_text()}")
            studies.append(study.slug)
        study, summary_text, skipped_text = self.load_pandalm()
        say(f"{study.slug}: {summary_text}")
        say(f"{study.slug}: {skipped_text} (see demo/data/README.md)")
        studies.append(study.slug)
        return studies

    def describe(self, study, name, source):
        study.dataset.name, study.dataset.source = name, source
        study.dataset.save(update_fields=["name", "source"])
        study.name = name
        study.instructions = study.instructions or DEMO_INSTRUCTIONS.get(study.slug, "")
        study.save(update_fields=["name", "instructions"])

    def load_pandalm(self):
        data = demo.parse_pandalm(demo.DEMO_DIR / demo.PANDALM_FILE, max_text_bytes=settings.IMPORT_MAX_TEXT_BYTES)
        parsed = data.generations
        dataset = get_or_create_dataset(demo.PANDALM_DATASET)
        refuse_pandalm_from_the_old_reader(dataset)
        summary = write_generations(dataset, parsed)
        systems = {s.name: s for s in System.objects.filter(name__in=parsed.systems)}
        study, created = Study.objects.get_or_create(
            slug=demo.PANDALM_STUDY,
            defaults={"name": "PandaLM instruction following", "dataset": dataset, "votes_per_comparison": 3, "quota": 0},
        )
        study.systems.add(*systems.values())
        self.describe(study, "PandaLM instruction following (human test set)", demo.PANDALM_SOURCE)
        generations = {(g.instance.external_id, g.system.name, g.sample_index): g
                       for g in Generation.objects.filter(instance__dataset=dataset).select_related("instance", "system")}
        already = set(Vote.objects.filter(study=study).values_list("comparison_id", "annotator_id"))
        annotators = [get_or_create_imported_annotator(study, f"annotator{i}", summary) for i in (1, 2, 3)]
        now = timezone.now()
        for item in data.items:
            first = generations[(item.instance_key, item.system_1, 0)]
            second = generations[(item.instance_key, item.system_2, 0)]
            gen_a, gen_b, swapped = canonical_pair(first, second)
            comparison, was_created = get_or_create_comparison(study, gen_a, gen_b)
            summary.comparisons_created += was_created
            for annotator, label in zip(annotators, item.labels):
                if (comparison.pk, annotator.pk) in already:
                    continue
                winner = "tie" if label == "tie" else ("a" if (label == "first") != swapped else "b")
                store_historical_vote(comparison, annotator, winner, now)
                summary.votes_created += 1
        return study, summary.as_text(), data.skipped_text()

    def compute_separability(self, say):
        from separability.services import compute_dataset_separability

        for slug in [p.dataset for p in demo.PAPER_DEMOS] + [demo.PANDALM_DATASET]:
            run = compute_dataset_separability(slug)
            say(f"separability for {slug}: {run.status}, {run.done}/{run.total} instances")

    def rebuild_ratings(self, studies):
        """Rate the historical votes and release them as the public leaderboard. The demo studies are
        released in batches (Study.Release.BATCHES): what newcomers vote appears publicly only with the
        next batch, never vote by vote."""
        from ranking.services import latest_release, rebuild_study_ratings, release_leaderboard

        for slug in studies:
            study = Study.objects.get(slug=slug)
            if study.leaderboard_release != Study.Release.BATCHES:
                study.leaderboard_release = Study.Release.BATCHES
                study.save(update_fields=["leaderboard_release"])
            snapshots = rebuild_study_ratings(study)
            if latest_release(study) is None:
                release_leaderboard(study, "staff", snapshots)

    @transaction.atomic
    def ensure_staff(self, password):
        User = get_user_model()
        user, _ = User.objects.get_or_create(username=STAFF_USERNAME, defaults={"email": "researcher@example.org"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return user

    @transaction.atomic
    def ensure_invite(self, studies):
        invite = InviteLink.objects.filter(note="demo", active=True).first()
        if invite is None:
            invite = InviteLink.objects.create(note="demo", max_uses=1000)
        invite.studies.set(Study.objects.filter(slug__in=studies))
        return invite
