"""Endpoints in the admin (same rules as the staff form), runs and their failures read-only."""
from django.contrib import admin

from .forms import EndpointForm
from .models import GenerationFailure, GenerationRun, ModelEndpoint, SampleProvenance


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ("name", "system", "kind", "base_url", "model", "mode", "max_concurrency", "requests_per_minute")
    search_fields = ("name", "model", "system__name")
    fields = ("name", "system_name", "kind", "base_url", "model", "mode", "api_key_env", "max_concurrency",
              "requests_per_minute", "tokens_per_minute", "timeout_seconds", "max_retries")


class FailureInline(admin.TabularInline):
    model = GenerationFailure
    extra = 0
    can_delete = False
    readonly_fields = ("chunk_index", "system", "instance", "sample_index", "kind", "message", "created_at")


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ("id", "dataset", "status", "k", "done", "total", "failed", "created_at")
    list_filter = ("status",)
    inlines = [FailureInline]

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False


@admin.register(SampleProvenance)
class SampleProvenanceAdmin(admin.ModelAdmin):
    list_display = ("generation", "endpoint", "run", "tokens_in", "tokens_out", "latency_ms", "finish_reason")
    raw_id_fields = ("generation",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_add_permission(self, request):
        return False
