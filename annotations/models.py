"""The evaluation data: what is compared (datasets, instances, generations, systems), how a study
turns it into A/B comparisons, and who voted what (assignments and votes).

Natural keys are unique in the database, so importers and tasks can upsert and a retried job never
appends twice. `Comparison.generation_a` always belongs to the system with the lower id (canonical
order); what the annotator saw on the left is recorded on the `Assignment`.
"""
import secrets

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from lib import vocabulary
from lib.vocabulary import Winner


class Dataset(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    source = models.TextField(blank=True, help_text="Where the data comes from and its licence.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self):
        return self.slug


class System(models.Model):
    """A model under evaluation (shown to researchers as "model", never to annotators)."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Instance(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="instances")
    external_id = models.CharField(max_length=200)
    input = models.TextField(blank=True)
    reference = models.TextField(blank=True)
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "id"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "external_id"], name="instance_natural_key"),
        ]

    def __str__(self):
        return f"{self.dataset.slug}/{self.external_id}"


class Generation(models.Model):
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="generations")
    system = models.ForeignKey(System, on_delete=models.PROTECT, related_name="generations")
    sample_index = models.PositiveIntegerField(help_text="0-based index of the sample for (instance, system).")
    text = models.TextField()

    class Meta:
        ordering = ["instance", "system", "sample_index"]
        constraints = [
            models.UniqueConstraint(fields=["instance", "system", "sample_index"], name="generation_natural_key"),
        ]
        indexes = [models.Index(fields=["system", "instance"], name="generation_system_instance")]

    def __str__(self):
        return f"{self.instance} · {self.system} #{self.sample_index}"


class Study(models.Model):
    class Policy(models.TextChoices):
        ALL = "all", "All units"
        THRESHOLD = "threshold", "Normalised separability ≥ threshold"
        TOP_FRACTION = "top_fraction", "Top fraction per system pair"
        PROPORTIONAL = "proportional", "Sample in proportion to separability"
        ADAPTIVE = "adaptive", "Adaptive: undecided pairs and separable units first (priorities follow the votes)"

    class Rationale(models.TextChoices):
        OFF = "off", "Not asked"
        OPTIONAL = "optional", "Optional"
        REQUIRED = "required", "Required"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        OPEN = "open", "Open"
        CLOSED = "closed", "Closed"

    class BothBad(models.TextChoices):
        TIE = "tie", "Count as a tie"
        DROP = "drop", "Leave out of ratings"

    class Release(models.TextChoices):
        # Blinding (docs/security.md): a board that moves after each vote tells an annotator which
        # system was behind the side they chose, so nothing public moves per vote while the study is open.
        ON_CLOSE = "on_close", "When the study closes (nothing public while it is open)"
        BATCHES = "batches", "In batches while open (at most every N hours, at least M new votes)"

    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="studies")
    systems = models.ManyToManyField(System, related_name="studies")
    instructions = models.TextField(blank=True, help_text="Markdown, shown to annotators (rendered safely).")
    policy = models.CharField(max_length=20, choices=Policy.choices, default=Policy.ALL)
    policy_metric = models.CharField(max_length=32, default="bertscore")
    threshold = models.FloatField(null=True, blank=True, help_text="For policy 'threshold'.")
    top_fraction = models.FloatField(null=True, blank=True, help_text="For policy 'top_fraction', in (0, 1].")
    sample_size = models.PositiveIntegerField(null=True, blank=True, help_text="Units drawn for 'proportional'.")
    selection_seed = models.IntegerField(default=0)
    sample_pairs_per_unit = models.PositiveSmallIntegerField(
        default=1, help_text="1, or up to k: the i-th samples of both systems for i = 1..n (consistency protocol).")
    votes_per_comparison = models.PositiveSmallIntegerField(default=1, help_text="Overlap.")
    lease_seconds = models.PositiveIntegerField(default=600)
    allow_tie = models.BooleanField(default=True)
    allow_both_bad = models.BooleanField(default=True)
    rationale = models.CharField(max_length=10, choices=Rationale.choices, default=Rationale.OFF)
    gold_every = models.PositiveSmallIntegerField(default=0, help_text="Mix a gold item in every N items (0 = never).")
    quota = models.PositiveIntegerField(default=20, help_text="Items per annotator (0 = no limit).")
    too_fast_seconds = models.FloatField(default=3.0)
    both_bad = models.CharField(max_length=10, choices=BothBad.choices, default=BothBad.TIE)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    prolific_study_id = models.CharField(max_length=64, blank=True)
    prolific_completion_code = models.CharField(max_length=64, blank=True)
    prolific_redirect_url = models.URLField(blank=True)
    leaderboard_public = models.BooleanField(default=True)
    leaderboard_release = models.CharField(
        max_length=10, choices=Release.choices, default=Release.ON_CLOSE,
        help_text="When the public leaderboard is updated. Staff always see the current standings.")
    release_every_hours = models.PositiveIntegerField(
        default=24, help_text="For release 'in batches': at most one public update per this many hours.")
    release_min_votes = models.PositiveIntegerField(
        default=200, help_text="For release 'in batches': at least this many new votes in each public update.")
    output_format = models.CharField(
        max_length=10, choices=[("markdown", "Markdown (rendered safely, code monospaced)"), ("plain", "Plain text")],
        default="markdown", help_text="How the two outputs are shown; annotators can always switch to the raw text.")
    prolific_pid_pattern = models.CharField(
        max_length=200, blank=True,
        help_text="A regular expression a PROLIFIC_PID must match in full; empty = Prolific's own format "
                  "(24 hexadecimal characters).")
    selection_summary = models.TextField(blank=True, help_text="Which policy was applied to what data, when.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["slug"]
        verbose_name_plural = "studies"
        constraints = [
            models.CheckConstraint(condition=Q(votes_per_comparison__gte=1), name="study_overlap_positive"),
            models.CheckConstraint(condition=Q(sample_pairs_per_unit__gte=1), name="study_sample_pairs_positive"),
            models.CheckConstraint(
                condition=Q(top_fraction__isnull=True) | (Q(top_fraction__gt=0) & Q(top_fraction__lte=1)),
                name="study_top_fraction_range"),
            models.CheckConstraint(condition=Q(lease_seconds__gte=10), name="study_lease_min"),
            models.CheckConstraint(condition=Q(too_fast_seconds__gte=0), name="study_too_fast_nonnegative"),
        ]

    def __str__(self):
        return self.slug

    @property
    def allowed_answers(self):
        answers = ["a", "b"]
        if self.allow_tie:
            answers.append("tie")
        if self.allow_both_bad:
            answers.append("both_bad")
        return answers


class Comparison(models.Model):
    """One A/B item: two generations of one instance, from two systems (lower system id = A)."""

    class Answer(models.TextChoices):
        A = Winner.A, "A"
        B = Winner.B, "B"
        TIE = Winner.TIE, "Tie"
        BOTH_BAD = Winner.BOTH_BAD, "Both bad"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="comparisons")
    instance = models.ForeignKey(Instance, on_delete=models.CASCADE, related_name="comparisons")
    generation_a = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="+")
    generation_b = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="+")
    system_a = models.ForeignKey(System, on_delete=models.PROTECT, related_name="+")
    system_b = models.ForeignKey(System, on_delete=models.PROTECT, related_name="+")
    unit_key = models.CharField(max_length=100, help_text="Groups the sample pairs of one (instance, system pair).")
    is_gold = models.BooleanField(default=False)
    gold_answer = models.CharField(max_length=10, choices=Answer.choices, blank=True)
    separability = models.FloatField(null=True, blank=True, help_text="Normalised separability of the unit.")
    priority = models.FloatField(default=0.0, help_text="Higher is served first.")
    votes_count = models.PositiveIntegerField(
        default=0, help_text="Votes collected here: the overlap counts these (imported votes do not use it up).")
    selected = models.BooleanField(default=True, help_text="Chosen by the study's current policy (served).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["study", "id"]
        constraints = [
            models.UniqueConstraint(fields=["study", "generation_a", "generation_b"], name="comparison_natural_key"),
            models.CheckConstraint(condition=Q(system_a__lt=F("system_b")), name="comparison_canonical_order"),
        ]
        indexes = [
            models.Index(fields=["study", "selected", "votes_count", "-priority"], name="comparison_next_item"),
            models.Index(fields=["study", "unit_key"], name="comparison_unit"),
            # The lease query walks this in serving order and stops at the first open comparison.
            models.Index(fields=["study", "-priority", "id"], condition=Q(selected=True, is_gold=False),
                         name="comparison_serve_order"),
        ]

    def __str__(self):
        return f"{self.study.slug} #{self.pk}"


def new_assignment_token() -> str:
    return secrets.token_urlsafe(18)


class Assignment(models.Model):
    """A comparison leased to one annotator. The token is the only handle the annotator ever sees."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments")
    token = models.CharField(max_length=32, unique=True, default=new_assignment_token)
    left_is_a = models.BooleanField(help_text="Whether generation A was shown on the left (drawn on the server).")
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    served_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["issued_at"]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="assignment_once_per_annotator"),
        ]
        indexes = [
            models.Index(fields=["annotator", "completed_at"], name="assignment_annotator_open"),
            models.Index(fields=["comparison", "completed_at", "expires_at"], name="assignment_active_leases"),
            # Leases out and who holds one, for the dashboard's progress without reading every assignment.
            models.Index(fields=["expires_at"], condition=Q(completed_at__isnull=True), name="assignment_open_leases"),
        ]

    def __str__(self):
        return f"assignment {self.pk}"


class Vote(models.Model):
    class Winner(models.TextChoices):  # the values are lib.vocabulary's
        A = vocabulary.Winner.A, "A"
        B = vocabulary.Winner.B, "B"
        TIE = vocabulary.Winner.TIE, "Tie"
        BOTH_BAD = vocabulary.Winner.BOTH_BAD, "Both bad"

    class Choice(models.TextChoices):
        LEFT = vocabulary.Choice.LEFT, "Left"
        RIGHT = vocabulary.Choice.RIGHT, "Right"
        TIE = vocabulary.Choice.TIE, "Tie"
        BOTH_BAD = vocabulary.Choice.BOTH_BAD, "Both bad"

    class Source(models.TextChoices):
        LIVE = "live", "Collected here"
        IMPORTED = "imported", "Imported"
        # An LLM judge's verdict (the `judges` app): never counted in the human leaderboards, agreement or
        # consistency; the judge's account is a `judge~<name>` user (imports.write.get_or_create_judge_account).
        JUDGE = "judge", "LLM judge"

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="vote")
    # No single-column indexes of their own (db_index=False): each is the first column of one below
    # (vote_study_order, vote_once_per_annotator, vote_annotator_study), which serves the same lookups; every
    # index is one more write per vote.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="votes", db_index=False)
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="votes", db_index=False)
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="votes",
                                  db_index=False)
    choice = models.CharField(max_length=10, choices=Choice.choices, help_text="What the annotator clicked.")
    winner = models.CharField(max_length=10, choices=Winner.choices, help_text="Decoded to the canonical A/B.")
    rationale = models.TextField(blank=True)
    served_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField()
    duration_seconds = models.FloatField(null=True, blank=True)
    gold_passed = models.BooleanField(null=True, blank=True)
    too_fast = models.BooleanField(default=False)
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=200, blank=True)
    excluded_at = models.DateTimeField(null=True, blank=True)
    excluded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    excluded_with_annotator = models.BooleanField(
        default=False, help_text="Excluded because its annotator was (restoring the annotator restores it).")
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.LIVE)

    class Meta:
        ordering = ["submitted_at", "id"]
        indexes = [
            models.Index(fields=["study", "submitted_at", "id"], name="vote_study_order"),
            models.Index(fields=["annotator", "study"], name="vote_annotator_study"),
            # A study's annotators counted by skipping from one to the next instead of reading every vote
            # (dashboard.queries.annotators_per_study).
            models.Index(fields=["study", "annotator"], name="vote_study_annotator"),
            # The few votes not collected here and the excluded ones, counted without reading every vote
            # (the live ones are counted by Comparison.votes_count): dashboard.queries.study_progress.
            models.Index(fields=["study"], condition=~Q(source="live"), name="vote_not_live"),
            models.Index(fields=["study"], condition=Q(excluded=True), name="vote_excluded"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["comparison", "annotator"], name="vote_once_per_annotator"),
            models.CheckConstraint(condition=Q(duration_seconds__isnull=True) | Q(duration_seconds__gte=0),
                                   name="vote_duration_nonnegative"),
        ]

    def __str__(self):
        return f"vote {self.pk}: {self.winner}"

    @property
    def side_chosen(self) -> str:
        return self.choice if self.choice in ("left", "right") else ""


class AnnotatorExclusion(models.Model):
    """Staff left an annotator out of a study's results (spam, too fast, failed gold), with the reason.

    Their votes are excluded (and restored with them); votes they cast later are excluded on arrival."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="annotator_exclusions")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "annotator"], name="annotator_excluded_once")]

    def __str__(self):
        return f"{self.annotator} excluded from {self.study}"


class ItemFlag(models.Model):
    """An annotator said an item cannot be judged (broken, empty, unreadable). The item is not counted as a
    vote; it leaves their queue and its slot goes back to the pool; staff see the flags."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="flag")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="flags")
    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="flags")
    annotator = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"flag on {self.comparison}"


class AnnotatorProfile(models.Model):
    """What we know of an annotator beyond the login: a pseudonym for exports, how they arrived.

    An imported worker is found again by (`imported_for`, `external_id`), never by a username derived
    from the id (a truncated one merged distinct workers)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator")
    pseudonym = models.CharField(max_length=32, unique=True)
    prolific_pid = models.CharField(max_length=64, null=True, blank=True, unique=True)
    external_id = models.CharField(max_length=200, blank=True, help_text="Worker id in an imported file.")
    imported_for = models.ForeignKey(Study, null=True, blank=True, on_delete=models.CASCADE,
                                     related_name="imported_annotators",
                                     help_text="The study whose imported file named this worker.")
    invite = models.ForeignKey("InviteLink", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="annotators")
    reentry_key_hash = models.CharField(
        max_length=64, blank=True, help_text="SHA-256 of the personal re-entry key (the key itself is never stored).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["imported_for", "external_id"], condition=Q(imported_for__isnull=False),
                                    name="imported_annotator_natural_key"),
        ]

    def __str__(self):
        return self.pseudonym


class ProlificSession(models.Model):
    """A Prolific participant in one study, bound to the first SESSION_ID they arrived with.

    Prolific gives each participant one SESSION_ID per study and keeps it across returns; a second
    client naming the same PROLIFIC_PID with another SESSION_ID is refused, so the PID alone (which
    anybody who sees a participant's screen or a shared link learns) is not a credential."""

    profile = models.ForeignKey(AnnotatorProfile, on_delete=models.CASCADE, related_name="prolific_sessions")
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="prolific_sessions")
    session_id = models.CharField(max_length=128)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    refused_takeovers = models.PositiveIntegerField(
        default=0, help_text="Arrivals with this PROLIFIC_PID and another SESSION_ID (refused).")
    completion_shown_at = models.DateTimeField(
        null=True, blank=True, help_text="When the participant was first shown the completion code.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["profile", "study"], name="prolific_session_once_per_study")]

    def __str__(self):
        return f"{self.profile} in {self.study}"


def new_invite_token() -> str:
    return secrets.token_urlsafe(24)


class InviteLink(models.Model):
    token = models.CharField(max_length=64, unique=True, default=new_invite_token)
    studies = models.ManyToManyField(Study, related_name="invites")
    max_uses = models.PositiveIntegerField(default=1, help_text="1 = single use.")
    uses = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(uses__lte=F("max_uses")), name="invite_uses_within_cap")]

    def __str__(self):
        return f"invite {self.token[:6]}… ({self.uses}/{self.max_uses})"
