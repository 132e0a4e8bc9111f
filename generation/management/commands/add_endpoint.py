"""`add_endpoint NAME --system S --base-url URL --model M`: where a system's samples come from (created or
updated; the same rules as the admin and the staff form)."""
from django.core.management.base import BaseCommand, CommandError

from generation.forms import EndpointForm
from generation.models import ModelEndpoint


class Command(BaseCommand):
    help = "Create or update a model endpoint (an OpenAI-compatible server or a local model folder) for a system."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The endpoint's name (a slug).")
        parser.add_argument("--system", required=True, help="The system it generates for (created if new).")
        parser.add_argument("--kind", choices=[k.value for k in ModelEndpoint.Kind], default="openai")
        parser.add_argument("--base-url", default="", help="e.g. http://127.0.0.1:8000/v1 (kind openai).")
        parser.add_argument("--model", required=True, help="The served model's name, or the local folder.")
        parser.add_argument("--mode", choices=[m.value for m in ModelEndpoint.Mode], default="chat")
        parser.add_argument("--api-key-env", default="", help="Name of the environment variable with the key.")
        parser.add_argument("--max-concurrency", type=int, default=4)
        parser.add_argument("--requests-per-minute", type=int, default=0)
        parser.add_argument("--tokens-per-minute", type=int, default=0)
        parser.add_argument("--timeout", type=float, default=120.0)
        parser.add_argument("--max-retries", type=int, default=4)

    def handle(self, *args, **options):
        existing = ModelEndpoint.objects.filter(name=options["name"]).first()
        form = EndpointForm({
            "name": options["name"], "system_name": options["system"], "kind": options["kind"],
            "base_url": options["base_url"], "model": options["model"], "mode": options["mode"],
            "api_key_env": options["api_key_env"], "max_concurrency": options["max_concurrency"],
            "requests_per_minute": options["requests_per_minute"], "tokens_per_minute": options["tokens_per_minute"],
            "timeout_seconds": options["timeout"], "max_retries": options["max_retries"],
        }, instance=existing)
        if not form.is_valid():
            field, errors = next(iter(form.errors.items()))
            option = "--" + {"system_name": "system", "timeout_seconds": "timeout"}.get(field, field).replace("_", "-")
            raise CommandError(f"{option if field != '__all__' else 'endpoint'}: {' '.join(errors)}")
        endpoint = form.save()
        verb = "updated" if existing else "created"
        self.stdout.write(f"endpoint {endpoint.name} {verb}: system {endpoint.system}, {endpoint.kind} "
                          f"{endpoint.base_url or ''} model {endpoint.model}")
