"""`load_demo [--json]`: the paper's two crowd batches and PandaLM, with their historical votes, the demo
studies opened, a staff account and an annotator invite link. Safe to run again: nothing is doubled."""
import json
import secrets
import subprocess
import sys
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import Q

from annotations.imports.parse import parse_pairwise_csv
from annotations.imports.write import (
    Judgment,
    Preference,
    store_judgments,
    write_generations,
    write_pairwise,
    write_votes,
)
from annotations.management.commands._importing import run_atomically_or_exit
from annotations.models import Generation, InviteLink, Study, System, Vote
from annotations.selection import open_study
from annotations.services import get_or_create_dataset
from demo import sources as demo
from demo.llmfao import GPT4_FILE, GPT4_JUDGE, read_llmfao
from judges.services import get_or_create_judge

STAFF_USERNAME = "researcher"
# The crowd files carry the two summaries but not the article or dialogue they summarise, so the
# instructions ask only what an annotator can judge from what the page shows.
DEMO_INSTRUCTIONS = {
    "cnn-dm-summaries": "Two summaries of the same news article are shown; the article itself is not. Pick the "
                        "summary that reads as the better one: clear, specific, well organised and concise, "
                        "without contradicting itself. Pick **Tie** only if you truly cannot choose.",
    "samsum-summaries": "Two summaries of the same chat conversation are shown; the conversation itself is not. "
                        "Pick the summary that reads as the better one: clear about who did or said what, "
                        "specific and concise, without contradicting itself.",
    demo.PANDALM_STUDY: "Read the instruction and the two responses. Pick the response that follows the "
                        "instruction better and is more correct and helpful.",
    demo.LLMFAO_STUDY: "Read the prompt and the two outputs. Pick the output that is more relevant to the prompt, "
                       "coherent, grammatical and complete. Pick **Tie** if the outputs are identical or if neither "
                       "performs the task correctly.",
}
# What earlier versions wrote; replaced by the texts above (a researcher's own edit is kept).
OLD_DEMO_INSTRUCTIONS = {
    "Read both summaries of the same news article and pick the better summary: accurate, complete and concise. "
    "Pick **Tie** only if you truly cannot choose.",
    "Read both summaries of the same chat conversation and pick the better summary: faithful to the dialogue, "
    "covers who did what, concise.",
}
DEMO_DATASETS = [p.dataset for p in demo.PAPER_DEMOS] + [demo.PANDALM_DATASET]


def replace_pandalm_from_the_old_reader(dataset, say):
    """The reader before this one stored empty responses and, for prompts generated more than once, extra
    samples; its instances do not match today's. Without votes collected here the old rows are replaced
    (they hold only the file's own data); with live votes, say what to do instead of guessing."""
    old = Generation.objects.filter(instance__dataset=dataset).filter(Q(sample_index__gt=0) | Q(text=""))
    if not old.exists():
        return
    if Vote.objects.filter(comparison__instance__dataset=dataset, source=Vote.Source.LIVE).exists():
        raise CommandError(
            f"dataset {dataset.slug!r} was loaded by an older PandaLM reader (it holds empty responses or more "
            "than one sample per prompt and system; see demo/data/README.md) and has votes collected here. "
            f"Export them, delete the study {demo.PANDALM_STUDY!r} and the dataset {dataset.slug!r} (admin), "
            "and run load_demo again.")
    say(f"{dataset.slug}: replacing the rows an older reader stored (empty responses, repeated prompts as samples)")
    dataset.instances.all().delete()


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object on stdout.")
        parser.add_argument("--separability", choices=("now", "background", "skip"), default="now",
                            help="Compute the demo's separability before returning (now), in a background "
                                 "process writing separability.log (background: the site can serve meanwhile), "
                                 "or not at all (skip). Datasets already computed are not computed again.")
        parser.add_argument("--skip-separability", action="store_true", help="The same as --separability skip.")
        parser.add_argument("--separability-only", action="store_true",
                            help="Only compute the demo datasets' separability (what --separability background runs).")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, **options):
        say = self.stderr.write if options["json"] else self.stdout.write
        if options["separability_only"]:
            self.compute_separability(say)
            return
        mode = "skip" if options["skip_separability"] else options["separability"]
        studies = run_atomically_or_exit(self, self.load_data, say)
        served = [slug for slug in studies if slug not in demo.HISTORY_ONLY_STUDIES]
        for slug in served:
            open_study(Study.objects.get(slug=slug))
        self.rebuild_ratings(studies)
        password = secrets.token_urlsafe(9)
        self.ensure_staff(password)
        invite = self.ensure_invite(served)
        invite_url = f"{options['base_url'].rstrip('/')}/invite/{invite.token}/"
        if mode == "now":
            self.compute_separability(say)
        elif mode == "background":
            self.compute_separability_in_background(say)
        if options["json"]:
            self.stdout.write(json.dumps({"staff": {"username": STAFF_USERNAME, "password": password},
                                          "invite_url": invite_url, "studies": studies}))
            return
        say("")
        say("Demo loaded:")
        for slug in studies:
            study = Study.objects.get(slug=slug)
            if slug in demo.HISTORY_ONLY_STUDIES:
                judged = study.votes.filter(source=Vote.Source.JUDGE).count()
                say(f"  study {slug}: closed (history only), {study.votes.count() - judged} historical votes, "
                    f"{judged} LLM judge verdicts (staff: /judges/{slug}/)")
                continue
            served = study.comparisons.filter(selected=True, is_gold=False).count()
            imported = study.votes.filter(source=Vote.Source.IMPORTED).count()
            live = study.votes.filter(source=Vote.Source.LIVE).count()
            collected = f", {live} collected here" if live else ""
            say(f"  study {slug}: {served} comparisons to judge, {imported} historical votes{collected}")
        say(f"  staff account: {STAFF_USERNAME} / {password}   (sign in at {options['base_url']}/accounts/login/)")
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
        study, summary_text, skipped_text = self.load_llmfao()
        say(f"{study.slug}: {summary_text}")
        say(f"{study.slug}: {skipped_text} (see demo/data/README.md)")
        studies.append(study.slug)
        return studies

    def load_llmfao(self) -> tuple[Study, str, str]:
        """LLMFAO's 59 models as a closed study (k = 1; history only: opened, every pair of models on every
        prompt would be served, some 20,000 comparisons, where the crowd judged 2,139): the crowd's votes as
        history, GPT-4's verdicts on the same pairs imported as the judge `gpt-4`, in the order GPT-4 saw them."""
        data = read_llmfao(demo.DEMO_DIR / demo.LLMFAO_DIR)
        dataset = get_or_create_dataset(demo.LLMFAO_DATASET)
        summary = write_generations(dataset, data.generations)
        systems = {s.name: s for s in System.objects.filter(name__in=data.systems)}
        study, _ = Study.objects.get_or_create(
            slug=demo.LLMFAO_STUDY,
            defaults={"name": "LLMFAO chat models", "dataset": dataset, "votes_per_comparison": 5, "quota": 0,
                      "status": Study.Status.CLOSED, "leaderboard_public": True},
        )
        study.systems.add(*systems.values())
        self.describe(study, "LLMFAO: 59 chat models, crowd and GPT-4 (history only)", demo.LLMFAO_SOURCE)
        generations = {(g.instance.external_id, g.system.name): g for g in
                       Generation.objects.filter(instance__dataset=dataset).select_related("instance", "system")}
        preferred: dict[str, Preference] = {"a": "first", "b": "second", "tie": "tie"}
        crowd = data.judgeable(data.crowd)
        store_judgments(study, (
            Judgment(generations[(v.instance_id, v.system_a)], generations[(v.instance_id, v.system_b)], v.annotator,
                     preferred[v.winner]) for v in crowd), summary)
        judge = get_or_create_judge(GPT4_JUDGE, model="gpt-4", system_prompt="",
                                    prompt_template=demo.llmfao_judge_template())
        if judge.system_id is None and demo.LLMFAO_JUDGE_SYSTEM in systems:
            judge.system = systems[demo.LLMFAO_JUDGE_SYSTEM]  # the judge's model is evaluated too: self-preference
            judge.save(update_fields=["system"])
        if not Vote.objects.filter(study=study, annotator=judge.account).exists():
            summary.votes_created += write_votes(data.judgeable(data.gpt4), study, f"{demo.LLMFAO_DIR}/{GPT4_FILE}",
                                                 judge=judge.name).votes_created
        skipped, skipped_gpt4 = len(data.crowd) - len(crowd), len(data.gpt4) - len(data.judgeable(data.gpt4))
        pairs = len({(v.instance_id, v.system_a, v.system_b) for v in data.gpt4})
        return study, summary.as_text(), (f"skipped {len(data.empty_pairs)} of {pairs} pairs where a model's output "
                                          f"is empty ({skipped} crowd votes, {skipped_gpt4} GPT-4 verdicts)")

    def describe(self, study, name, source):
        study.dataset.name, study.dataset.source = name, source
        study.dataset.save(update_fields=["name", "source"])
        study.name = name
        if not study.instructions or study.instructions in OLD_DEMO_INSTRUCTIONS:
            study.instructions = DEMO_INSTRUCTIONS.get(study.slug, "")
        study.save(update_fields=["name", "instructions"])

    def load_pandalm(self) -> tuple[Study, str, str]:
        data = demo.parse_pandalm(demo.DEMO_DIR / demo.PANDALM_FILE, max_text_bytes=settings.IMPORT_MAX_TEXT_BYTES)
        parsed = data.generations
        dataset = get_or_create_dataset(demo.PANDALM_DATASET)
        replace_pandalm_from_the_old_reader(dataset, self.stdout.write)
        summary = write_generations(dataset, parsed)
        systems = {s.name: s for s in System.objects.filter(name__in=parsed.systems)}
        study, created = Study.objects.get_or_create(
            slug=demo.PANDALM_STUDY,
            defaults={"name": "PandaLM instruction following", "dataset": dataset, "votes_per_comparison": 3,
                      "quota": 0},
        )
        study.systems.add(*systems.values())
        self.describe(study, "PandaLM instruction following (human test set)", demo.PANDALM_SOURCE)
        generations = {(g.instance.external_id, g.system.name, g.sample_index): g
                       for g in Generation.objects.filter(instance__dataset=dataset)
                       .select_related("instance", "system")}
        preferred: dict[str, Preference] = {"first": "first", "second": "second", "tie": "tie"}
        store_judgments(study, (
            Judgment(generations[(item.instance_key, item.system_1, 0)],
                     generations[(item.instance_key, item.system_2, 0)], f"annotator{number}", preferred[label])
            for item in data.items for number, label in enumerate(item.labels, start=1)), summary)
        return study, summary.as_text(), data.skipped_text()

    @staticmethod
    def datasets_to_compute() -> list[str]:
        """Demo datasets without a finished run of the configured model."""
        from separability.models import SeparabilityRun
        from separability.services import start_run_model_name

        done = set(SeparabilityRun.objects.filter(status=SeparabilityRun.Status.DONE, model_name=start_run_model_name())
                   .values_list("dataset__slug", flat=True))
        return [slug for slug in DEMO_DATASETS if slug not in done]

    def compute_separability(self, say):
        """Each demo dataset not yet computed with the configured model. Embedded, this computes here (its
        end copies separability onto the comparisons and refreshes the leaderboards, the public release
        included, since no vote changed); with a broker, it queues the runs."""
        from separability.services import compute_dataset_separability

        todo = self.datasets_to_compute()
        for slug in DEMO_DATASETS:
            if slug not in todo:
                say(f"separability for {slug}: already computed")
                continue
            say(f"separability for {slug}: computing ...")
            run = compute_dataset_separability(slug)
            say(f"separability for {slug}: {run.status}, {run.done}/{run.total} instances")

    def compute_separability_in_background(self, say):
        """A child process (same terminal, so Ctrl-C stops it with the server) computes while the site serves."""
        if not self.datasets_to_compute():
            say("separability: already computed for every demo dataset")
            return
        log_path = Path(settings.BASE_DIR) / "separability.log"
        with open(log_path, "ab") as log:
            subprocess.Popen([sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "load_demo",
                              "--separability-only"], stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, cwd=settings.BASE_DIR)
        say(f"separability: computing in the background (progress on the dashboard, log in {log_path.name}); the "
            "weighted leaderboards use it once it is done")

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
