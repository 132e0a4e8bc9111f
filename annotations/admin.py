"""Admin pages a researcher can work in: searchable lists, generations under their instance, read-only
votes, and an upload form for every importer."""
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.shortcuts import redirect, render
from django.urls import reverse

from . import quality
from .forms import StudyForm
from .imports.parse import ImportFileError
from .imports.write import import_file
from .models import (
    AnnotatorProfile,
    Assignment,
    Comparison,
    Dataset,
    Generation,
    Instance,
    InviteLink,
    Study,
    System,
    Vote,
)
from .services import parse_system_names


class GenerationInline(admin.TabularInline):
    model = Generation
    extra = 0
    fields = ("system", "sample_index", "text")
    autocomplete_fields = ("system",)


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "instance_count", "created_at")
    search_fields = ("slug", "name")

    @admin.display(description="instances")
    def instance_count(self, obj):
        return obj.instances.count()


@admin.register(System)
class SystemAdmin(admin.ModelAdmin):
    list_display = ("name", "description")
    search_fields = ("name",)


@admin.register(Instance)
class InstanceAdmin(admin.ModelAdmin):
    list_display = ("external_id", "dataset", "short_input")
    list_filter = ("dataset",)
    search_fields = ("external_id", "input")
    inlines = [GenerationInline]
    list_select_related = ("dataset",)

    @admin.display(description="input")
    def short_input(self, obj):
        return (obj.input[:100] + "…") if len(obj.input) > 100 else obj.input


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ("instance", "system", "sample_index", "short_text")
    list_filter = ("system", "instance__dataset")
    search_fields = ("text", "instance__external_id")
    list_select_related = ("instance__dataset", "system")
    raw_id_fields = ("instance",)

    @admin.display(description="text")
    def short_text(self, obj):
        return (obj.text[:100] + "…") if len(obj.text) > 100 else obj.text


@admin.action(description="Open the selected studies (create their comparisons)")
def open_selected_studies(modeladmin, request, queryset):
    from .selection import SelectionError, open_study

    for study in queryset:
        try:
            created = open_study(study)
        except SelectionError as exc:
            modeladmin.message_user(request, f"{study.slug}: {exc}", messages.ERROR)
        else:
            modeladmin.message_user(request, f"{study.slug}: open, {created} new comparisons")


@admin.action(description="Close the selected studies")
def close_selected_studies(modeladmin, request, queryset):
    from .selection import close_study

    closed = sum(close_study(study) for study in queryset)
    modeladmin.message_user(request, f"{closed} stud{'y' if closed == 1 else 'ies'} closed.")


@admin.register(Study)
class StudyAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "dataset", "status", "policy", "votes_per_comparison", "comparison_count",
                    "vote_count", "leaderboard_public")
    list_filter = ("status", "policy", "dataset")
    search_fields = ("slug", "name")
    # One set of rules for the admin and the staff form (StudyForm); the status changes only through the
    # open and close actions, which create the comparisons and release the final leaderboard.
    form = StudyForm
    readonly_fields = ("status", "selection_summary", "created_at", "opened_at")
    actions = [open_selected_studies, close_selected_studies]
    fieldsets = (
        (None, {"fields": ("slug", "name", "dataset", "systems", "instructions", "output_format", "status")}),
        ("Selection", {"fields": ("policy", "policy_metric", "threshold", "top_fraction", "sample_size",
                                  "selection_seed", "selection_summary")}),
        ("Collection", {"fields": ("sample_pairs_per_unit", "votes_per_comparison", "lease_seconds", "quota",
                                   "allow_tie", "allow_both_bad", "rationale", "gold_every", "too_fast_seconds",
                                   "both_bad")}),
        ("Prolific", {"fields": ("prolific_study_id", "prolific_completion_code", "prolific_redirect_url",
                                 "prolific_pid_pattern")}),
        ("Publication", {"fields": ("leaderboard_public", "leaderboard_release", "release_every_hours",
                                    "release_min_votes", "created_at", "opened_at")}),
    )

    @admin.display(description="comparisons")
    def comparison_count(self, obj):
        return obj.comparisons.count()

    @admin.display(description="votes")
    def vote_count(self, obj):
        return obj.votes.count()


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ("id", "study", "instance", "system_a", "system_b", "separability", "votes_count", "selected",
                    "is_gold", "gold_answer")
    list_filter = ("study", "is_gold", "selected")
    search_fields = ("instance__external_id", "unit_key")
    raw_id_fields = ("instance", "generation_a", "generation_b")
    list_select_related = ("study", "instance", "system_a", "system_b")
    readonly_fields = ("votes_count",)


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "comparison", "annotator", "left_is_a", "issued_at", "expires_at", "completed_at")
    list_filter = ("comparison__study",)
    search_fields = ("annotator__username", "token")
    raw_id_fields = ("comparison", "annotator")
    list_select_related = ("comparison__study", "annotator")


class VoteActionForm(ActionForm):
    reason = forms.CharField(required=False, max_length=200, label="Reason",
                             help_text="Kept with each excluded vote and shown in exports.")


def _by_study(queryset):
    studies = {}
    for vote in queryset.select_related("study"):
        studies.setdefault(vote.study, []).append(vote.pk)
    return studies


@admin.action(description="Exclude the selected votes from the results (give a reason)")
def exclude_selected_votes(modeladmin, request, queryset):
    try:
        changed = sum(quality.exclude_votes(study, ids, request.POST.get("reason", ""), by=request.user)
                      for study, ids in _by_study(queryset).items())
    except quality.QualityError as exc:
        modeladmin.message_user(request, str(exc), messages.ERROR)
        return
    modeladmin.message_user(request, f"{changed} vote{'s' if changed != 1 else ''} excluded; leaderboards follow.")


@admin.action(description="Restore the selected votes to the results")
def restore_selected_votes(modeladmin, request, queryset):
    changed = sum(quality.restore_votes(study, ids) for study, ids in _by_study(queryset).items())
    modeladmin.message_user(request, f"{changed} vote{'s' if changed != 1 else ''} restored; leaderboards follow.")


@admin.register(Vote)
class VoteAdmin(admin.ModelAdmin):
    """Votes are records: readable, filterable, exportable, never edited or deleted by hand; staff can
    exclude them from the results, with a reason, and restore them (annotations.quality)."""

    list_display = ("id", "study", "comparison", "annotator", "choice", "winner", "submitted_at", "duration_seconds",
                    "gold_passed", "too_fast", "excluded", "exclusion_reason", "source")
    list_filter = ("study", "winner", "source", "too_fast", "gold_passed", "excluded")
    search_fields = ("annotator__username", "rationale")
    list_select_related = ("study", "comparison", "annotator")
    action_form = VoteActionForm
    actions = [exclude_selected_votes, restore_selected_votes]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ("pseudonym", "user", "prolific_pid", "external_id", "invite", "created_at")
    search_fields = ("pseudonym", "user__username", "prolific_pid", "external_id")
    raw_id_fields = ("user", "invite")


@admin.register(InviteLink)
class InviteLinkAdmin(admin.ModelAdmin):
    list_display = ("token", "note", "uses", "max_uses", "active", "expires_at", "created_at")
    list_filter = ("active",)
    filter_horizontal = ("studies",)
    readonly_fields = ("uses",)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


# --------------------------------------------------------------------------------------------------
# upload form for the importers


class ImportUploadForm(forms.Form):
    KINDS = (
        ("generations", "Generations (JSONL or CSV)"),
        ("pairwise", "Crowd batch of the separability paper (CSV)"),
        ("votes", "Votes (CSV)"),
    )
    kind = forms.ChoiceField(choices=KINDS)
    file = forms.FileField()
    dataset = forms.SlugField(required=False, max_length=Dataset._meta.get_field("slug").max_length,
                              help_text="Generations and crowd batch: dataset slug.")
    study = forms.SlugField(required=False, max_length=Study._meta.get_field("slug").max_length,
                            help_text="Crowd batch and votes: study slug.")
    systems = forms.CharField(required=False, help_text="Crowd batch: NAME1,NAME2 (system 1 first).")

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind in ("generations", "pairwise") and not data.get("dataset"):
            self.add_error("dataset", "Required for this kind of file.")
        if kind in ("pairwise", "votes") and not data.get("study"):
            self.add_error("study", "Required for this kind of file.")
        if kind == "votes" and data.get("study") and not Study.objects.filter(slug=data["study"]).exists():
            self.add_error("study", "No such study.")
        if kind == "pairwise":
            try:
                data["system_names"] = parse_system_names(data.get("systems"))
            except ValueError as exc:
                self.add_error("systems", str(exc))
        upload = data.get("file")
        if upload is not None and upload.size > settings.IMPORT_MAX_UPLOAD_BYTES:
            self.add_error("file", f"The file is over {settings.IMPORT_MAX_UPLOAD_BYTES} bytes.")
        return data


def run_uploaded_import(form: ImportUploadForm) -> str:
    data = form.cleaned_data
    upload = data["file"]
    study, summary = import_file(data["kind"], upload.name, upload.read(), data.get("dataset") or "",
                                 data.get("study") or "", data.get("system_names", ()))
    return summary.as_text()  # stored votes refresh the leaderboards off the request (signals.votes_changed)


def import_upload_view(request):
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            summary = run_uploaded_import(form)
        except ImportFileError as exc:
            messages.error(request, f"Nothing was imported. {exc}")
        else:
            messages.success(request, f"Imported: {summary}")
            return redirect(reverse("admin:annotations_import"))
    context = {**admin.site.each_context(request), "form": form, "title": "Import data"}
    return render(request, "admin/annotations/import.html", context)

# The upload page is mounted by the site's own AdminSite (evalsite.admin), not by patching admin.site.
