"""The judges page's forms: start a judge run on the study, and set a judge's prompt for the study."""
from django import forms

from generation.models import ModelEndpoint

from .models import Judge
from .prompts import DEFAULT_SYSTEM_PROMPT, DEFAULT_TEMPLATE, template_problem
from .runs import JudgeRunSettings


class JudgeRunForm(forms.Form):
    judge = forms.CharField(max_length=100, help_text="An existing judge, or a new one (give its endpoint).",
                            widget=forms.TextInput(attrs={"list": "judge-names"}))
    endpoint = forms.ModelChoiceField(queryset=ModelEndpoint.objects.order_by("name"), to_field_name="name",
                                      required=False, empty_label="the judge's own",
                                      help_text="Required for a new judge; a judge keeps its endpoint.")
    temperature = forms.FloatField(min_value=0.0, max_value=2.0, initial=0.0)
    max_tokens = forms.IntegerField(min_value=1, max_value=100_000, initial=1024)

    def run_settings(self) -> JudgeRunSettings:
        return JudgeRunSettings(temperature=self.cleaned_data["temperature"],
                                max_tokens=self.cleaned_data["max_tokens"])

    def endpoint_name(self) -> str:
        endpoint = self.cleaned_data.get("endpoint")
        return endpoint.name if endpoint is not None else ""


class JudgePromptForm(forms.Form):
    judge = forms.ModelChoiceField(queryset=Judge.objects.order_by("name"), to_field_name="name")
    system_prompt = forms.CharField(required=False, initial=DEFAULT_SYSTEM_PROMPT,
                                    widget=forms.Textarea(attrs={"rows": 4}))
    prompt_template = forms.CharField(initial=DEFAULT_TEMPLATE, widget=forms.Textarea(attrs={"rows": 8}),
                                      help_text="Placeholders: $question, $answer_a (shown first), $answer_b.")

    def clean_prompt_template(self):
        value = self.cleaned_data["prompt_template"]
        problem = template_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value
