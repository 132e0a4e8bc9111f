"""Serializers of the researcher API: the shape of every answer and the validation of every input."""
from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotations.models import Comparison, Dataset, Study
from annotations.services import parse_system_names
from generation.models import GenerationRun, ModelEndpoint
from generation.services import key_values, redact
from lib.vocabulary import CHOICES, METRICS, WINNERS
from ranking.ratings import METHODS


class DatasetSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = Dataset
        fields: tuple[str, ...] = ("slug", "name", "description", "source", "created_at", "url")

    def get_url(self, obj) -> str:
        return f"/api/v1/datasets/{obj.slug}/"


class SeparabilityMetricSummary(serializers.Serializer):
    units = serializers.IntegerField()
    defined = serializers.IntegerField()


class DatasetDetailSerializer(DatasetSerializer):
    instances = serializers.IntegerField(read_only=True)
    generations = serializers.IntegerField(read_only=True)
    systems = serializers.ListField(child=serializers.CharField(), read_only=True)
    studies = serializers.ListField(child=serializers.CharField(), read_only=True)
    separability = serializers.DictField(child=SeparabilityMetricSummary(), read_only=True,
                                         help_text="Per metric: units (instance x system pair) "
                                                   "and how many are defined.")

    class Meta(DatasetSerializer.Meta):
        fields = DatasetSerializer.Meta.fields + ("instances", "generations", "systems", "studies", "separability")

    def to_representation(self, obj):
        from dashboard.queries import dataset_summary

        data = DatasetSerializer(obj, context=self.context).data
        data.update(dataset_summary(obj))
        return data


class ImportSerializer(serializers.Serializer):
    KINDS = (("generations", "generations (JSONL or CSV)"), ("votes", "votes (CSV)"),
             ("pairwise", "crowd batch of the separability paper (CSV)"))

    kind = serializers.ChoiceField(choices=KINDS)
    file = serializers.FileField(allow_empty_file=False)
    study = serializers.SlugField(required=False, max_length=Study._meta.get_field("slug").max_length or 50,
                                  help_text="votes and pairwise: the study slug.")
    systems = serializers.CharField(required=False, help_text="pairwise: NAME1,NAME2 (system 1 first).")
    format = serializers.ChoiceField(choices=(("jsonl", "jsonl"), ("csv", "csv")), required=False,
                                     help_text="generations: jsonl or csv (default: from the file name).")

    def validate_file(self, upload):
        if upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            raise serializers.ValidationError(f"The file is {upload.size} bytes, over the limit of "
                                              f"{settings.IMPORT_MAX_UPLOAD_BYTES}.")
        return upload

    def validate(self, data):
        kind = data["kind"]
        dataset_slug = self.context["dataset_slug"]
        slug_limit = Dataset._meta.get_field("slug").max_length
        if len(dataset_slug) > slug_limit:  # the address names a new dataset with a slug too long to store
            raise serializers.ValidationError({"dataset": f"The slug in the address has {len(dataset_slug)} "
                                                          f"characters, over the limit of {slug_limit}."})
        if kind in ("votes", "pairwise") and not data.get("study"):
            raise serializers.ValidationError({"study": f"Required for kind {kind!r}."})
        if kind == "votes":
            study = Study.objects.filter(slug=data["study"]).select_related("dataset").first()
            if study is None:
                raise serializers.ValidationError({"study": f"No study {data['study']!r}."})
            if study.dataset.slug != dataset_slug:
                raise serializers.ValidationError({"study": f"Study {study.slug!r} belongs to dataset "
                                                            f"{study.dataset.slug!r}, not {dataset_slug!r}."})
            data["study_obj"] = study
        if kind == "pairwise":
            try:
                data["system_names"] = parse_system_names(data.get("systems"))
            except ValueError as exc:
                raise serializers.ValidationError({"systems": str(exc)}) from None
        elif data.get("systems"):
            raise serializers.ValidationError({"systems": f"Only for kind 'pairwise', not {kind!r}."})
        if kind != "generations" and data.get("format"):
            raise serializers.ValidationError({"format": "Only for kind 'generations'."})
        if kind == "generations" and data.get("study"):
            raise serializers.ValidationError({"study": "Not used for kind 'generations'."})
        return data


class ImportResultSerializer(serializers.Serializer):
    dataset = serializers.CharField()
    kind = serializers.CharField()
    study = serializers.CharField(allow_null=True)
    summary = serializers.DictField(child=serializers.IntegerField())
    message = serializers.CharField()


class ImportErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="FILE:LINE: field: what is wrong. Nothing was written.")


class ProgressSerializer(serializers.Serializer):
    votes = serializers.IntegerField()
    gold_votes = serializers.IntegerField()
    excluded_votes = serializers.IntegerField()
    imported_votes = serializers.IntegerField()
    counted = serializers.IntegerField(help_text="Votes toward the target (each comparison up to its overlap).")
    target = serializers.IntegerField(help_text="Selected non-gold comparisons x votes per comparison.")
    percent = serializers.FloatField()
    comparisons = serializers.IntegerField()
    votes_per_comparison = serializers.IntegerField()
    active_annotators = serializers.IntegerField(help_text="Served an item or voted here in the last hour.")
    annotators = serializers.IntegerField()
    leases_out = serializers.IntegerField(help_text="Assignments not completed and not expired.")


class StudySerializer(serializers.ModelSerializer):
    dataset: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    # many=True makes DRF return a ManyRelatedField; the stubs type the call as the field itself
    systems: serializers.ManyRelatedField = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="name", many=True, read_only=True)
    allowed_answers = serializers.ListField(child=serializers.CharField(), read_only=True)
    progress = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields: tuple[str, ...] = (
            "slug", "name", "dataset", "systems", "status", "policy", "policy_metric", "threshold",
            "top_fraction", "sample_size", "sample_pairs_per_unit", "votes_per_comparison", "allowed_answers",
            "rationale", "gold_every", "quota", "too_fast_seconds", "both_bad", "leaderboard_public",
            "leaderboard_release", "release_every_hours", "release_min_votes",
            "created_at", "opened_at", "progress", "url")

    # The return annotation is for drf-spectacular (the field's schema); the value is the dict it describes.
    def get_progress(self, obj) -> ProgressSerializer:
        from dashboard.queries import study_progress

        # A list view passes every listed study's progress, gathered in one go (dashboard.queries); a
        # detail keeps the one it computes, for its agreement (which needs the vote count).
        known = self.context.setdefault("progress", {})
        if obj.pk not in known:
            known[obj.pk] = study_progress(obj)
        return known[obj.pk]

    def get_url(self, obj) -> str:
        return f"/api/v1/studies/{obj.slug}/"


class AgreementValueSerializer(serializers.Serializer):
    statistic = serializers.CharField()
    value = serializers.FloatField(allow_null=True)
    items = serializers.IntegerField()
    raters = serializers.IntegerField()
    ratings = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)


class AgreementSerializer(serializers.Serializer):
    krippendorff_alpha = AgreementValueSerializer()
    fleiss_kappa = AgreementValueSerializer()
    labels = serializers.ListField(child=serializers.CharField())


class StudyDetailSerializer(StudySerializer):
    agreement = serializers.SerializerMethodField()

    class Meta(StudySerializer.Meta):
        fields = StudySerializer.Meta.fields + ("instructions", "selection_summary", "agreement")

    # The return annotation is for drf-spectacular (the field's schema); the value is the dict it describes.
    def get_agreement(self, obj) -> AgreementSerializer:
        from dashboard.analysis import agreement_of

        # The progress field (serialised first) holds the vote count: its seven statements not run twice.
        progress = self.context.get("progress", {}).get(obj.pk)
        return agreement_of(obj, votes=progress["votes"] if progress else None)  # type: ignore[return-value]


class ComparisonSerializer(serializers.ModelSerializer):
    instance_id = serializers.CharField(source="instance.external_id")
    system_a = serializers.CharField(source="system_a.name")
    system_b = serializers.CharField(source="system_b.name")
    sample_a = serializers.IntegerField(source="generation_a.sample_index")
    sample_b = serializers.IntegerField(source="generation_b.sample_index")

    class Meta:
        model = Comparison
        fields = ("id", "instance_id", "system_a", "system_b", "sample_a", "sample_b", "unit_key", "is_gold",
                  "gold_answer", "separability", "priority", "votes_count", "selected", "created_at")


class ComparisonQuerySerializer(serializers.Serializer):
    selected = serializers.BooleanField(required=False, allow_null=True, default=None)
    is_gold = serializers.BooleanField(required=False, allow_null=True, default=None)
    min_separability = serializers.FloatField(required=False, help_text="Normalised separability at least this.")
    system = serializers.CharField(required=False, help_text="Only comparisons involving this system.")


class VoteRecordSerializer(serializers.Serializer):
    study = serializers.CharField()
    vote_id = serializers.IntegerField()
    comparison_id = serializers.IntegerField()
    instance_id = serializers.CharField()
    system_left = serializers.CharField()
    system_right = serializers.CharField()
    choice = serializers.ChoiceField(choices=CHOICES)
    winner = serializers.ChoiceField(choices=WINNERS, help_text="Canonical: a = system_a.")
    winner_system = serializers.CharField(allow_null=True)
    rationale = serializers.CharField(allow_blank=True)
    annotator = serializers.CharField(help_text="Pseudonym, never the username.")
    served_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField()
    duration_seconds = serializers.FloatField(allow_null=True)
    is_gold = serializers.BooleanField()
    gold_answer = serializers.CharField(allow_null=True)
    gold_passed = serializers.BooleanField(allow_null=True)
    system_a = serializers.CharField()
    system_b = serializers.CharField()
    sample_a = serializers.IntegerField()
    sample_b = serializers.IntegerField()
    too_fast = serializers.BooleanField()
    excluded = serializers.BooleanField()
    exclusion_reason = serializers.CharField(allow_blank=True)
    # DRF's metaclass moves declared fields off the class, so this does not shadow Field.source; the stubs
    # cannot know that.
    source = serializers.ChoiceField(choices=("live", "imported"))  # type: ignore[assignment]


class SeparabilityQuerySerializer(serializers.Serializer):
    metric = serializers.ChoiceField(choices=METRICS, required=False, error_messages={
        "invalid_choice": f"Unknown metric '{{input}}'; choose from {', '.join(METRICS)}."})
    system_a = serializers.CharField(required=False)
    system_b = serializers.CharField(required=False)

    def validate(self, data):
        if bool(data.get("system_a")) != bool(data.get("system_b")):
            raise serializers.ValidationError("Give both system_a and system_b, or neither.")
        return data


class SeparabilityRecordSerializer(serializers.Serializer):
    dataset = serializers.CharField()
    instance_id = serializers.CharField()
    system_a = serializers.CharField()
    system_b = serializers.CharField()
    metric = serializers.CharField()
    self_a = serializers.FloatField(allow_null=True)
    self_b = serializers.FloatField(allow_null=True)
    cross = serializers.FloatField(allow_null=True)
    separability = serializers.FloatField(allow_null=True)
    normalised = serializers.FloatField(allow_null=True)
    k_a = serializers.IntegerField()
    k_b = serializers.IntegerField()
    undefined_reason = serializers.CharField(allow_null=True)


class LeaderboardQuerySerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=METHODS, required=False)


class RatingRowSerializer(serializers.Serializer):
    system = serializers.CharField()
    rating = serializers.FloatField()
    ci_low = serializers.FloatField(allow_null=True)
    ci_high = serializers.FloatField(allow_null=True)
    rank = serializers.IntegerField()
    votes = serializers.IntegerField()
    win_rate = serializers.FloatField(allow_null=True)


class LeaderboardSerializer(serializers.Serializer):
    method = serializers.CharField()
    name = serializers.CharField()
    ratings = RatingRowSerializer(many=True)
    error = serializers.CharField(allow_blank=True)
    votes_used = serializers.IntegerField()
    computed_at = serializers.DateTimeField(allow_null=True)
    notes = serializers.ListField(child=serializers.CharField())


class TokenRotateSerializer(serializers.Serializer):
    rotate = serializers.BooleanField(required=False, default=False,
                                      help_text="Replace an existing token with a new one.")


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    created = serializers.BooleanField()


class FlatListField(serializers.ListField):
    """A list whose items' errors come back as one list of messages ("item 2: ..."), the shape the schema
    documents for a field's errors (DRF's own is a dict by index)."""

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if not isinstance(exc.detail, dict):
                raise
            raise serializers.ValidationError([f"item {index}: {' '.join(str(m) for m in messages)}"
                                               for index, messages in sorted(exc.detail.items())]) from None


class ExclusionSerializer(serializers.Serializer):
    """Exclude (or restore) votes by id, or a whole annotator by pseudonym, with a reason."""

    votes = FlatListField(child=serializers.IntegerField(min_value=1), required=False, max_length=20000,
                                  help_text="vote_id values from the votes endpoint.")
    annotator = serializers.CharField(required=False, max_length=32, help_text="An annotator's pseudonym.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                   help_text="Required to exclude; kept with the votes and shown in exports.")
    restore = serializers.BooleanField(default=False, help_text="Bring them back into the results.")

    def validate(self, data):
        if bool(data.get("votes")) == bool(data.get("annotator")):
            raise serializers.ValidationError("Give either votes (a list of vote ids) or annotator (a pseudonym).")
        if not data["restore"] and not (data.get("reason") or "").strip():
            raise serializers.ValidationError({"reason": "A reason is required to exclude."})
        return data


class ExclusionResultSerializer(serializers.Serializer):
    study = serializers.CharField()
    changed = serializers.IntegerField(help_text="Votes whose exclusion changed.")


# --------------------------------------------------------------------------------------------------
# generation: model endpoints and generation runs (issue 15). The rules live in generation.forms (one
# set for the admin, the staff pages and the API); the serializers below only check the JSON types, then
# hand the values to those forms and report their errors by field.

API_KEY_REFUSED = ("The API key itself is never accepted (nor stored, nor shown): give api_key_env, the name of "
                   "the environment variable of the workers that holds it.")
# Request field -> form field, where they differ.
ENDPOINT_FORM_FIELDS = {"system": "system_name"}


def form_errors(form, renamed: dict[str, str] | None = None) -> dict[str, list[str]]:
    """A Django form's errors by request field name (`non_field_errors` for the form's own)."""
    back = {v: k for k, v in (renamed or {}).items()}
    return {("non_field_errors" if field == "__all__" else back.get(field, field)): [e["message"] for e in errors]
            for field, errors in form.errors.get_json_data().items()}


def form_defaults(form_class) -> dict:
    """The initial value of every field of an unbound form (the model's defaults, for a ModelForm)."""
    return {name: field.initial for name, field in form_class().fields.items() if field.initial is not None}


class EndpointSerializer(serializers.ModelSerializer):
    system: serializers.SlugRelatedField = serializers.SlugRelatedField(
        slug_field="name", read_only=True, allow_null=True, help_text="The system it generates for.")
    url = serializers.SerializerMethodField()

    class Meta:
        model = ModelEndpoint
        fields = ("name", "system", "kind", "base_url", "model", "mode", "api_key_env", "max_concurrency",
                  "requests_per_minute", "tokens_per_minute", "timeout_seconds", "max_retries", "created_at", "url")

    def get_url(self, obj) -> str:
        return f"/api/v1/endpoints/{obj.name}/"


class EndpointInputSerializer(serializers.Serializer):
    """An endpoint to create (the fields left out take the model's defaults) or the fields to change.

    Validated by generation.forms.EndpointForm; `save()` is the form's save (it creates the system)."""

    name = serializers.CharField(required=False, allow_blank=True, help_text="A slug, unique.")
    system = serializers.CharField(required=False, allow_blank=True, allow_null=True,
                                   help_text="The system it generates for (created if new; empty: none).")
    kind = serializers.ChoiceField(choices=ModelEndpoint.Kind.choices, required=False, error_messages={
        "invalid_choice": f"Unknown kind '{{input}}'; choose from {', '.join(ModelEndpoint.Kind.values)}."})
    base_url = serializers.CharField(required=False, allow_blank=True,
                                     help_text="kind openai: the server's base URL, e.g. http://127.0.0.1:8000/v1.")
    model = serializers.CharField(required=False, allow_blank=True,
                                  help_text="The model name the server serves, or (kind local) the model folder.")
    mode = serializers.ChoiceField(choices=ModelEndpoint.Mode.choices, required=False, error_messages={
        "invalid_choice": f"Unknown mode '{{input}}'; choose from {', '.join(ModelEndpoint.Mode.values)}."})
    api_key_env = serializers.CharField(required=False, allow_blank=True,
                                        help_text="The NAME of the environment variable holding the API key, "
                                                  "never the key. Empty: no key.")
    max_concurrency = serializers.IntegerField(required=False)
    requests_per_minute = serializers.IntegerField(required=False, help_text="0 = no limit.")
    tokens_per_minute = serializers.IntegerField(required=False, help_text="0 = no limit.")
    timeout_seconds = serializers.FloatField(required=False)
    max_retries = serializers.IntegerField(required=False)

    def to_internal_value(self, data):
        if isinstance(data, Mapping) and "api_key" in data:
            raise serializers.ValidationError({"api_key": [API_KEY_REFUSED]})
        return super().to_internal_value(data)

    def validate(self, data):
        from generation.forms import EndpointForm

        endpoint = self.instance
        if endpoint is None:
            values = form_defaults(EndpointForm)
        else:  # a PATCH: the stored values, then the ones given
            values = {f: getattr(endpoint, f) for f in EndpointForm._meta.fields}
            values["system_name"] = endpoint.system.name if endpoint.system_id else ""
        values.update({ENDPOINT_FORM_FIELDS.get(k, k): ("" if v is None else v) for k, v in data.items()})
        form = EndpointForm(values, instance=endpoint)
        if not form.is_valid():
            raise serializers.ValidationError(form_errors(form, ENDPOINT_FORM_FIELDS))
        return {"form": form}

    def save(self, **kwargs):
        from django.db import transaction

        with transaction.atomic():
            self.instance = self.validated_data["form"].save()
        return self.instance


class FailureKindSerializer(serializers.Serializer):
    kind = serializers.CharField()
    n = serializers.IntegerField()
    example = serializers.CharField(help_text="One of the messages.")


class SampleReportSerializer(serializers.Serializer):
    identical = serializers.IntegerField(help_text="Instances whose k samples are all identical.")
    identical_examples = serializers.ListField(child=serializers.CharField())
    empty = serializers.IntegerField(help_text="Empty answers (not stored).")
    missing = serializers.IntegerField(help_text="Samples still missing.")


class LinkedSeparabilityRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.CharField()


class GenerationRunSerializer(serializers.ModelSerializer):
    """A run: its settings, progress and outcome. Every message passes through `redact`."""

    dataset: serializers.SlugRelatedField = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    systems: serializers.ManyRelatedField = serializers.SlugRelatedField(  # type: ignore[assignment]
        slug_field="name", many=True, read_only=True)
    percent = serializers.IntegerField(read_only=True)
    chunks_done = serializers.SerializerMethodField()
    blocked = serializers.SerializerMethodField()
    error = serializers.SerializerMethodField()
    report = serializers.DictField(child=SampleReportSerializer(), read_only=True,
                                   help_text="Per system: identical, empty and missing samples (when finished).")
    separability_run = serializers.SerializerMethodField()
    url = serializers.SerializerMethodField()

    class Meta:
        model = GenerationRun
        fields: tuple[str, ...] = (
            "id", "dataset", "systems", "k", "temperature", "top_p", "max_tokens", "seed_policy", "seed",
            "system_prompt", "prompt_template", "chain_separability", "status", "done", "total", "existing",
            "failed", "percent", "chunks_done", "chunks_total", "tokens_in", "tokens_out", "usage_missing",
            "blocked", "error", "report", "separability_run", "created_at", "started_at", "finished_at", "url")

    def redact(self, text: str) -> str:
        if "key_values" not in self.context:  # once per answer (the context is shared by a list's items)
            self.context["key_values"] = key_values()
        return redact(text, self.context["key_values"]) if text else text

    def get_chunks_done(self, obj) -> int:
        return len(obj.chunks_done)

    def get_blocked(self, obj) -> dict[str, str]:
        """By system name: why none of its samples can be generated."""
        names = {str(system.pk): system.name for system in obj.systems.all()}
        return {names.get(k, f"system {k}"): self.redact(v) for k, v in sorted(obj.blocked.items())}

    def get_error(self, obj) -> str:
        return self.redact(obj.error)

    @extend_schema_field(LinkedSeparabilityRunSerializer(allow_null=True))
    def get_separability_run(self, obj):
        run = obj.separability_run
        return None if run is None else {"id": run.pk, "status": run.status}

    def get_url(self, obj) -> str:
        return f"/api/v1/generation-runs/{obj.pk}/"


class GenerationRunDetailSerializer(GenerationRunSerializer):
    failures = serializers.SerializerMethodField(help_text="Each kind of failure with its count and one message.")

    class Meta(GenerationRunSerializer.Meta):
        fields = GenerationRunSerializer.Meta.fields + ("failures",)

    @extend_schema_field(FailureKindSerializer(many=True))
    def get_failures(self, obj):
        from generation.services import failures_by_kind

        return [{**row, "example": self.redact(row["example"])} for row in failures_by_kind(obj)]


class GenerationRunQuerySerializer(serializers.Serializer):
    dataset = serializers.CharField(required=False, help_text="Only runs of this dataset (slug).")
    status = serializers.ChoiceField(choices=GenerationRun.Status.choices, required=False, error_messages={
        "invalid_choice": f"Unknown status '{{input}}'; choose from {', '.join(GenerationRun.Status.values)}."})


class GenerationRunInputSerializer(serializers.Serializer):
    """A run to start: validated by generation.forms.RunForm (the fields left out take its initial values)."""

    dataset = serializers.CharField(help_text="The dataset's slug.")
    # At most 500: a form-encoded body may hold 1000 fields (DATA_UPLOAD_MAX_NUMBER_FIELDS), one per name.
    systems = FlatListField(child=serializers.CharField(), max_length=500,
                                    help_text="Names of systems that have an endpoint.")
    k = serializers.IntegerField(required=False, help_text="Samples per instance and system (default 5).")
    temperature = serializers.FloatField(required=False)
    top_p = serializers.FloatField(required=False)
    max_tokens = serializers.IntegerField(required=False)
    seed_policy = serializers.ChoiceField(
        choices=GenerationRun.SeedPolicy.choices, required=False, error_messages={
            "invalid_choice": f"Unknown seed policy '{{input}}'; choose from "
                              f"{', '.join(GenerationRun.SeedPolicy.values)}."})
    seed = serializers.IntegerField(required=False)
    system_prompt = serializers.CharField(required=False, allow_blank=True)
    prompt_template = serializers.CharField(required=False, help_text="$input, $reference, $instance_id.")
    chain_separability = serializers.BooleanField(required=False,
                                                  help_text="Compute separability when the run completes "
                                                            "(default true).")

    def validate(self, data):
        from generation.forms import RunForm

        form = RunForm({**form_defaults(RunForm), **data})
        if not form.is_valid():
            raise serializers.ValidationError(form_errors(form))
        return {"dataset": form.cleaned_data["dataset"], "systems": list(form.cleaned_data["systems"]),
                "settings": form.run_settings()}


class GenerationErrorSerializer(serializers.Serializer):
    error = serializers.CharField(help_text="What is wrong. Nothing was written.")
