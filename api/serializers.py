"""Serializers of the researcher API: the shape of every answer and the validation of every input."""
from __future__ import annotations

from django.conf import settings
from rest_framework import serializers

from annotations.models import Comparison, Dataset, Study
from annotations.services import parse_system_names
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

        # A list view passes every listed study's progress, gathered in one go (dashboard.queries).
        known = self.context.get("progress", {})
        return known[obj.pk] if obj.pk in known else study_progress(obj)  # type: ignore[return-value]

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

        return agreement_of(obj)  # type: ignore[return-value]


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


class ExclusionSerializer(serializers.Serializer):
    """Exclude (or restore) votes by id, or a whole annotator by pseudonym, with a reason."""

    votes = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, max_length=20000,
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
