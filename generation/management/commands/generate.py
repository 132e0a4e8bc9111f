"""`generate --dataset D --systems S1,S2 --k 3 --wait`: sample k outputs per instance from each system's
endpoint (only what is missing), then, unless --no-separability, compute the dataset's separability."""
import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotations.models import Dataset, System
from generation import services
from generation.models import GenerationRun
from lib.tasks import tasks_run_eagerly
from separability.models import SeparabilityRun


class Command(BaseCommand):
    help = "Sample k generations per instance and system from the systems' model endpoints."

    def add_arguments(self, parser):
        parser.add_argument("--dataset", required=True)
        parser.add_argument("--systems", required=True, help="Comma-separated system names (each with an endpoint).")
        parser.add_argument("--k", type=int, default=5)
        parser.add_argument("--temperature", type=float, default=1.0)
        parser.add_argument("--top-p", type=float, default=1.0)
        parser.add_argument("--max-tokens", type=int, default=256)
        parser.add_argument("--seed-policy", choices=[p.value for p in GenerationRun.SeedPolicy], default="per_sample")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--system-prompt", default="")
        parser.add_argument("--template", default="$input", help="Prompt template ($input, $reference, $instance_id).")
        parser.add_argument("--no-separability", action="store_true", help="Do not compute separability afterwards.")
        parser.add_argument("--wait", action="store_true",
                            help="Wait with a progress bar until the run (and its separability) has finished. "
                                 "Embedded (no broker) the command always waits: the work runs in it.")

    def handle(self, *args, **options):
        dataset = Dataset.objects.filter(slug=options["dataset"]).first()
        if dataset is None:
            raise CommandError(f"--dataset: no dataset {options['dataset']!r} (import its prompts with import_prompts)")
        names = list(dict.fromkeys(n.strip() for n in options["systems"].split(",") if n.strip()))
        if not names:
            raise CommandError("--systems: give at least one system name (comma-separated)")
        systems = list(System.objects.filter(name__in=names))
        unknown = sorted(set(names) - {s.name for s in systems})
        if unknown:
            raise CommandError(f"--systems: no system {unknown[0]!r} (add it with add_endpoint)")
        settings = services.RunSettings(
            k=options["k"], temperature=options["temperature"], top_p=options["top_p"],
            max_tokens=options["max_tokens"], seed_policy=options["seed_policy"], seed=options["seed"],
            system_prompt=options["system_prompt"], prompt_template=options["template"],
            chain_separability=not options["no_separability"])
        try:
            run, chunks = services.start_run(dataset, systems, settings)
        except services.RunError as error:
            raise CommandError(str(error)) from None
        missing = run.total - run.existing
        self.stdout.write(f"run {run.pk}: {run.total} samples ({run.existing} already stored, {missing} to ask for) "
                          f"in {len(chunks)} chunks")
        eager = tasks_run_eagerly()
        services.launch(run, chunks)  # embedded: in a thread of this process, which the bar follows
        if not (options["wait"] or eager):
            self.stdout.write("queued; follow it on /generation/ or with --wait")
            return
        bar = tqdm(total=run.total, initial=run.existing, unit="sample", file=sys.stderr, disable=None)

        def show(current):
            bar.update(current.done - bar.n)
            bar.set_postfix(failed=current.failed, refresh=False)

        run = services.wait_for(run, show)
        bar.close()
        self.report(run)
        if run.separability_run_id or (run.chain_separability and run.status in ("done", "incomplete")):
            self.wait_for_separability(run)
        if run.status in (GenerationRun.Status.FAILED, GenerationRun.Status.CANCELLED):
            raise SystemExit(1)

    def report(self, run):
        new = run.done - run.existing
        if new and run.usage_missing == new:
            tokens = "tokens: not reported by the server"
        else:
            tokens = f"tokens in {run.tokens_in}, out {run.tokens_out}" + (
                f" ({run.usage_missing} answers without usage)" if run.usage_missing else "")
        self.stdout.write(f"run {run.pk}: {run.get_status_display()}: {run.done}/{run.total} samples stored, "
                          f"{run.failed} failed; {tokens}")
        for row in services.failures_by_kind(run):
            self.stderr.write(f"  {row['n']} x {row['kind']}: {row['example']}")
        for system, figures in run.report.items():
            if figures["identical"] or figures["empty"] or figures["missing"]:
                self.stdout.write(f"  {system}: {figures['identical']} instances with identical samples "
                                  f"{figures['identical_examples']}, {figures['empty']} empty answers, "
                                  f"{figures['missing']} samples missing")
        if run.error:
            self.stderr.write(f"  {run.error}")

    def wait_for_separability(self, run):
        import time

        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.separability_run_id:
                sep = SeparabilityRun.objects.get(pk=run.separability_run_id)
                if sep.status in (SeparabilityRun.Status.DONE, SeparabilityRun.Status.FAILED):
                    self.stdout.write(f"separability run {sep.pk}: {sep.get_status_display()} "
                                      f"({sep.done}/{sep.total} instances)")
                    return
            elif run.error:
                self.stderr.write(run.error)
                return
            time.sleep(0.5)
