"""`import_votes FILE --study SLUG [--judge NAME]`: historical votes as CSV
instance_id,system_a,system_b,sample_a,sample_b,winner,annotator[,created_at]. With --judge, every vote is
that LLM judge's verdict (kept apart from the human leaderboards; system_a is the output it saw first)."""
from django.core.management.base import BaseCommand, CommandError

from annotations.imports.parse import parse_votes_csv
from annotations.imports.write import write_votes
from annotations.models import Study

from ._importing import progress_bar, run_atomically_or_exit


class Command(BaseCommand):
    help = ("Import votes: CSV with columns instance_id,system_a,system_b,sample_a,sample_b,winner,annotator"
            "[,created_at]; winner in a, b, tie, both_bad (a = system_a); samples are 0-based.")

    def add_arguments(self, parser):
        parser.add_argument("file")
        parser.add_argument("--study", required=True)
        parser.add_argument("--judge", metavar="NAME", help="the votes are this LLM judge's verdicts (the annotator "
                                                              "column is ignored; system_a was shown first)")

    def handle(self, *args, **options):
        study = Study.objects.filter(slug=options["study"]).first()
        if study is None:
            raise CommandError(f"no study {options['study']!r}")

        def do_import():
            votes = parse_votes_csv(options["file"])
            with progress_bar(len(votes), "votes") as bar:
                return write_votes(votes, study, options["file"], progress=bar.update, judge=options["judge"])

        summary = run_atomically_or_exit(self, do_import)  # the leaderboards follow (signals.votes_changed)
        self.stdout.write(f"{study.slug}: {summary.as_text()}")
