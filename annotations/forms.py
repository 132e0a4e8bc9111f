"""Staff forms: setting up a study (every rule that would otherwise fail later, at opening or while
annotators work, is checked here) and making invite links."""
from __future__ import annotations

import re

import markdown as md
from django import forms
from django.db.models import Count, Min, Q
from django.urls import reverse

from lib.vocabulary import Metric

from .models import Generation, InviteLink, Study, System

RESERVED_SLUGS = {"new"}  # /studies/new/


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _remote_images(markdown_text: str) -> list[str]:
    """The image sources in the instructions that are not paths on this site (render_markdown drops them)."""
    from .markdown import is_same_site_path

    html = md.markdown(markdown_text or "", extensions=["extra"])
    return [src for src in re.findall(r"""<img[^>]*\bsrc=["']?([^"'\s>]+)""", html) if not is_same_site_path(src)]


def metric_choices() -> list[tuple[str, str]]:
    return [(m.value, m.value) for m in Metric]


class StudyForm(forms.ModelForm):
    policy_metric = forms.ChoiceField(choices=metric_choices, initial="bertscore",
                                      help_text="Which separability the policy and the weights use.")

    class Meta:
        model = Study
        fields = [
            "slug", "name", "dataset", "systems", "instructions", "output_format",
            "policy", "policy_metric", "threshold", "top_fraction", "sample_size", "selection_seed",
            "sample_pairs_per_unit", "votes_per_comparison", "lease_seconds", "quota",
            "allow_tie", "allow_both_bad", "both_bad", "rationale", "gold_every", "too_fast_seconds",
            "prolific_study_id", "prolific_completion_code", "prolific_redirect_url", "prolific_pid_pattern",
            "leaderboard_public", "leaderboard_release", "release_every_hours", "release_min_votes",
        ]
        widgets = {
            "systems": forms.CheckboxSelectMultiple,
            "instructions": forms.Textarea(attrs={"rows": 6}),
        }
        help_texts = {
            "slug": "Part of the annotators' address (/s/<slug>/): it must not name a model.",
            "name": "Shown to staff, and to the public with the leaderboard once results are released; never to "
                    "the study's annotators while it is open.",
            "lease_seconds": "How long an annotator holds an item before it returns to the pool.",
            "quota": "Items per annotator (0 = no limit). Prolific participants get the completion code after it.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        systems = self.systems_of(self.chosen_dataset())
        if self.is_bound:  # keep what was sent choosable, so a model without outputs gets the clear message below
            sent = [v for v in self.data.getlist("systems") if str(v).isdigit()] if hasattr(self.data, "getlist") \
                else [v for v in self.data.get("systems", []) if str(v).isdigit()]
            systems = System.objects.filter(Q(pk__in=systems.values("pk")) | Q(pk__in=sent)).order_by("name")
        self.fields["systems"].queryset = systems
        # Choosing a dataset reloads the model list with that dataset's models (htmx, staff pages only).
        self.fields["dataset"].widget.attrs.update({
            "hx-get": reverse("annotations:study_form_systems"), "hx-target": "#field-systems",
            "hx-swap": "outerHTML", "hx-trigger": "change", "hx-include": "this"})
        for name in ("votes_per_comparison", "sample_pairs_per_unit"):
            self.fields[name].min_value = 1
            self.fields[name].widget.attrs["min"] = 1
        self.fields["lease_seconds"].widget.attrs["min"] = 10

    def chosen_dataset(self):
        raw = self.data.get("dataset") if self.is_bound else self.initial.get("dataset")
        if raw in (None, "") and self.instance.pk:
            raw = self.instance.dataset_id
        try:
            return int(getattr(raw, "pk", raw)) if raw not in (None, "") else None
        except (TypeError, ValueError):
            return None

    @staticmethod
    def systems_of(dataset_id):
        """The models with outputs in the dataset (every model until a dataset is chosen)."""
        systems = System.objects.order_by("name")
        if dataset_id is None:
            return systems
        return systems.filter(pk__in=Generation.objects.filter(instance__dataset_id=dataset_id)
                              .values("system_id").distinct())

    # ------------------------------------------------------------------------------------------------

    def has_comparisons(self) -> bool:
        return bool(self.instance.pk) and self.instance.comparisons.exists()

    def clean_slug(self):
        value = self.cleaned_data["slug"]
        if value in RESERVED_SLUGS:
            raise forms.ValidationError(f"{value!r} is reserved; choose another slug.")
        return value

    def clean_votes_per_comparison(self):
        value = self.cleaned_data["votes_per_comparison"]
        if value < 1:
            raise forms.ValidationError("At least one vote per comparison.")
        return value

    def clean_sample_pairs_per_unit(self):
        value = self.cleaned_data["sample_pairs_per_unit"]
        if value < 1:
            raise forms.ValidationError("At least one sample pair per unit.")
        return value

    def clean_lease_seconds(self):
        value = self.cleaned_data["lease_seconds"]
        if value < 10:
            raise forms.ValidationError("A lease must last at least 10 seconds.")
        return value

    def clean_too_fast_seconds(self):
        value = self.cleaned_data["too_fast_seconds"]
        if value < 0:
            raise forms.ValidationError("Cannot be negative.")
        return value

    def clean_top_fraction(self):
        value = self.cleaned_data.get("top_fraction")
        if value is not None and not 0 < value <= 1:
            raise forms.ValidationError("A fraction in (0, 1], for example 0.25 for the top quarter.")
        return value

    def clean_prolific_pid_pattern(self):
        value = self.cleaned_data.get("prolific_pid_pattern", "").strip()
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise forms.ValidationError(f"Not a regular expression: {exc}.") from None
        return value

    def clean_release_min_votes(self):
        value = self.cleaned_data["release_min_votes"]
        if value < 1:
            raise forms.ValidationError("At least one vote per release.")
        return value

    def clean_instructions(self):
        value = self.cleaned_data.get("instructions", "")
        if _remote_images(value):
            raise forms.ValidationError(
                "Images from other sites are not shown to annotators (loading one would tell that site every "
                "annotator's address): remove them, or serve the image from this site (a path such as /static/...).")
        return value

    def clean_prolific_study_id(self):
        value = self.cleaned_data.get("prolific_study_id", "").strip()
        if value and Study.objects.filter(prolific_study_id=value).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another study already uses this Prolific study ID.")
        return value

    def clean(self):
        data = super().clean()
        policy = data.get("policy")
        if policy == Study.Policy.THRESHOLD and data.get("threshold") is None:
            self.add_error("threshold", "The policy 'threshold' needs a threshold (normalised separability).")
        if policy == Study.Policy.TOP_FRACTION and data.get("top_fraction") is None:
            self.add_error("top_fraction", "The policy 'top fraction' needs a fraction in (0, 1].")
        if policy == Study.Policy.PROPORTIONAL and data.get("sample_size") is not None and data["sample_size"] < 1:
            self.add_error("sample_size", "Draw at least one unit.")
        self._check_dataset_and_systems(data)
        self._check_blinding(data)
        if data.get("prolific_study_id") and not data.get("prolific_completion_code"):
            self.add_error("prolific_completion_code", "A Prolific study needs its completion code.")
        if (data.get("prolific_completion_code") or data.get("prolific_redirect_url")) and not data.get(
                "prolific_study_id"):
            self.add_error("prolific_study_id", "Set the Prolific study ID that goes with the completion code.")
        return data

    def _check_dataset_and_systems(self, data):
        dataset, systems = data.get("dataset"), list(data.get("systems") or [])
        if dataset is None or "systems" in self.errors:
            return
        if len(systems) < 2:
            self.add_error("systems", "Choose at least two models to compare.")
            return
        if self.has_comparisons():
            if dataset.pk != self.instance.dataset_id:
                self.add_error("dataset", "This study already has comparisons; its dataset cannot change.")
                return
            used = set(self.instance.comparisons.values_list("system_a", flat=True)) | set(
                self.instance.comparisons.values_list("system_b", flat=True))
            removed = sorted(s.name for s in System.objects.filter(pk__in=used - {s.pk for s in systems}))
            if removed:
                self.add_error("systems", f"Comparisons exist for {', '.join(removed)}; they cannot be removed.")
        samples = (Generation.objects.filter(instance__dataset=dataset, system__in=systems)
                   .values("instance", "system").annotate(n=Count("id")))
        present = set(samples.values_list("system", flat=True).distinct())
        missing = sorted(s.name for s in systems if s.pk not in present)
        if missing:
            self.add_error("systems", f"No generations in dataset {dataset.slug!r} for: {', '.join(missing)}.")
            return
        min_k = samples.aggregate(k=Min("n"))["k"]
        pairs = data.get("sample_pairs_per_unit")
        if pairs and min_k is not None and pairs > min_k:
            self.add_error("sample_pairs_per_unit",
                           f"At most {min_k}: some instance has only {min_k} sample(s) of one of these models.")

    def _check_blinding(self, data):
        """The slug is in the annotators' address bar and the instructions on their page."""
        systems = list(data.get("systems") or [])
        for field in ("slug", "instructions"):
            text = _squash(data.get(field) or "")
            named = [s.name for s in systems if len(_squash(s.name)) >= 3 and _squash(s.name) in text]
            if named:
                self.add_error(field, f"Annotators see this; it must not name a model ({', '.join(named)}).")


class InviteForm(forms.ModelForm):
    class Meta:
        model = InviteLink
        fields = ["max_uses", "note", "expires_at"]
        widgets = {"expires_at": forms.DateTimeInput(attrs={"type": "datetime-local"})}
        help_texts = {"max_uses": "1 = single use (one person); more = a link to share, capped at this many people."}

    def clean_max_uses(self):
        value = self.cleaned_data["max_uses"]
        if value < 1:
            raise forms.ValidationError("At least one use.")
        return value
