"""Staff forms for endpoints and generation runs: one set of rules for the admin, the staff pages and the
API (which validates through them too), so a bad endpoint or run is refused with a message before
anything is written."""
from __future__ import annotations

from django import forms

from annotations.models import Dataset, System

from .models import GenerationRun, ModelEndpoint
from .services import RunSettings


class EndpointForm(forms.ModelForm):
    base_url = forms.URLField(required=False, assume_scheme="http", max_length=200,
                              help_text="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 (kind openai).")
    system_name = forms.CharField(max_length=200, required=False,
                                  help_text="The system this endpoint generates for (created if new). Annotators "
                                            "never see it.")

    field_order = ["name", "system_name"]

    class Meta:
        model = ModelEndpoint
        fields = ["name", "kind", "base_url", "model", "mode", "api_key_env", "max_concurrency",
                  "requests_per_minute", "tokens_per_minute", "timeout_seconds", "max_retries"]
        labels = {"base_url": "Base URL", "api_key_env": "API key variable (its name, never the key)"}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.system_id and not self.is_bound:
            self.initial["system_name"] = self.instance.system.name
        self.fields["api_key_env"].widget.attrs["placeholder"] = "e.g. OPENAI_API_KEY"
        self.fields["base_url"].widget.attrs["placeholder"] = "http://127.0.0.1:8000/v1"

    def clean_system_name(self):
        name = self.cleaned_data.get("system_name", "").strip()
        if not name:
            return ""
        taken = ModelEndpoint.objects.filter(system__name=name).exclude(pk=self.instance.pk).first()
        if taken:
            raise forms.ValidationError(f"System {name!r} already has the endpoint {taken.name!r}.")
        return name

    def save(self, commit=True):
        endpoint = super().save(commit=False)
        name = self.cleaned_data.get("system_name")
        if name:
            endpoint.system, _ = System.objects.get_or_create(name=name)
        elif "system_name" in self.cleaned_data:
            endpoint.system = None
        if commit:
            endpoint.save()
        return endpoint


class RunForm(forms.Form):
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.order_by("slug"), to_field_name="slug")
    systems = forms.ModelMultipleChoiceField(
        queryset=System.objects.filter(endpoint__isnull=False).order_by("name"), to_field_name="name",
        widget=forms.CheckboxSelectMultiple, help_text="Systems with an endpoint.")
    k = forms.IntegerField(min_value=1, max_value=100, initial=5, label="k",
                           help_text="Samples per instance and system.")
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=1.0)
    top_p = forms.FloatField(min_value=0.0, max_value=1.0, initial=1.0, label="top_p")
    max_tokens = forms.IntegerField(min_value=1, max_value=1_000_000, initial=256)
    seed_policy = forms.ChoiceField(choices=GenerationRun.SeedPolicy.choices,
                                    initial=GenerationRun.SeedPolicy.PER_SAMPLE)
    seed = forms.IntegerField(initial=0, min_value=-(2**31), max_value=2**31 - 1 - 100)
    system_prompt = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    prompt_template = forms.CharField(initial="$input", widget=forms.Textarea(attrs={"rows": 3}),
                                      help_text="$input, $reference, $instance_id.")
    chain_separability = forms.BooleanField(required=False, initial=True,
                                            label="Compute separability when the run completes")

    def clean_top_p(self):
        value = self.cleaned_data["top_p"]
        if value <= 0:
            raise forms.ValidationError("top_p must be above 0.")
        return value

    def clean_prompt_template(self):
        from .prompts import template_problem

        value = self.cleaned_data["prompt_template"]
        problem = template_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def run_settings(self) -> RunSettings:
        data = self.cleaned_data
        return RunSettings(k=data["k"], temperature=data["temperature"], top_p=data["top_p"],
                           max_tokens=data["max_tokens"], seed_policy=data["seed_policy"], seed=data["seed"],
                           system_prompt=data.get("system_prompt", ""), prompt_template=data["prompt_template"],
                           chain_separability=data.get("chain_separability", False))
