"""The researcher REST API (/api/v1/): staff only, token or session authentication.

Views are thin: querysets and serializers here, numbers from `dashboard.queries`, records from
`dashboard.exports`, imports through the same `annotations.imports.parse` parse_* / `annotations.services`
write_* pair as the command line and the admin, inside one transaction; model endpoints and generation
runs through `generation.forms` and `generation.services`, like the staff pages. Every input goes through a
serializer, so a bad one is a 400 that says what is wrong, never a 500.
"""
from __future__ import annotations

from django.db.models import Q
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, render
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.decorators import api_view, parser_classes, renderer_classes
from rest_framework.exceptions import UnsupportedMediaType
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response

from annotations.models import Comparison, Dataset, Study, System
from generation.models import GenerationRun, ModelEndpoint

from . import serializers as s
from .pagination import LimitOffsetPagination


class CSVRenderer(BaseRenderer):
    """Lets `?format=csv` through content negotiation; the view streams the CSV itself."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, (bytes, str)):
            return data
        import json

        return json.dumps(data).encode()  # errors (e.g. a 404) keep a readable body


class VotePagination(LimitOffsetPagination):
    """Votes come as values() rows that join seven tables; counting through those joins took 1.8 s at
    1,000,000 votes (bench/scale.py), so the total is counted on `count_queryset` (the study's votes)."""

    default_limit = 1000
    count_queryset = None

    def get_count(self, queryset):
        return super().get_count(self.count_queryset if self.count_queryset is not None else queryset)


# The views that paginate by hand, documented like the generic list views.
PAGE_PARAMETERS = [
    OpenApiParameter("limit", OpenApiTypes.INT, description="Number of results to return per page."),
    OpenApiParameter("offset", OpenApiTypes.INT, description="The initial index from which to return the results."),
]


def _validated(serializer_class, data, **context):
    serializer = serializer_class(data=data, context=context)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


# --------------------------------------------------------------------------------------------------
# datasets


class DatasetList(generics.ListAPIView):
    """Datasets, by slug."""

    queryset = Dataset.objects.order_by("slug")
    serializer_class = s.DatasetSerializer


class DatasetDetail(generics.RetrieveAPIView):
    """A dataset with its counts, systems, studies and separability coverage per metric."""

    queryset = Dataset.objects.all()
    serializer_class = s.DatasetDetailSerializer
    lookup_field = "slug"


@extend_schema(
    request={"multipart/form-data": s.ImportSerializer},
    responses={201: s.ImportResultSerializer, 400: OpenApiResponse(s.ImportErrorSerializer,
                                                                   description="Nothing was written.")},
    summary="Import a file into the dataset",
    description="kind=generations (JSONL or CSV; creates the dataset if new), votes (CSV for an existing study of "
                "this dataset) or pairwise (the separability paper's crowd batch; creates the study if new). "
                "The whole file is checked first and written in one transaction: a bad file answers 400 with "
                "`{\"error\": \"FILE:LINE: field: message\"}` and changes nothing.",
)
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def dataset_import(request, slug):
    from annotations.imports.parse import ImportFileError
    from annotations.imports.write import import_file

    data = _validated(s.ImportSerializer, request.data, dataset_slug=slug)
    upload = data["file"]
    raw, name, kind = upload.read(), upload.name, data["kind"]
    study_slug = data["study_obj"].slug if kind == "votes" else data.get("study", "")
    try:
        study, summary = import_file(kind, name, raw, slug, study_slug, data.get("system_names", ()),
                                     fmt=data.get("format"))
    except ImportFileError as exc:
        return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"dataset": slug, "kind": kind, "study": study.slug if study else None,
                     "summary": vars(summary), "message": summary.as_text()}, status=status.HTTP_201_CREATED)


@extend_schema(
    parameters=[s.SeparabilityQuerySerializer, *PAGE_PARAMETERS],
    responses=inline_serializer("PaginatedSeparability", {
        "count": serializers.IntegerField(), "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True), "summary": serializers.DictField(),
        "results": s.SeparabilityRecordSerializer(many=True)}),
    summary="Separability of a dataset",
    description="One record per (instance, system pair, metric), as `export_separability` writes them. "
                "Paginated with limit/offset; filter with metric, system_a and system_b.",
)
@api_view(["GET"])
def dataset_separability(request, slug):
    from dashboard.queries import dataset_summary, separability_pair_counts
    from separability.exports import separability_record, separability_rows

    dataset = get_object_or_404(Dataset, slug=slug)
    query = _validated(s.SeparabilityQuerySerializer, request.query_params)
    rows = separability_rows(dataset, query.get("metric"))
    counts = separability_pair_counts(dataset)  # the total, and the summary, from one aggregate
    counted = [c for c in counts if not query.get("metric") or c["metric"] == query["metric"]]
    if query.get("system_a"):
        pair = {query["system_a"], query["system_b"]}
        ids = set(System.objects.filter(name__in=pair).values_list("id", flat=True)) if len(pair) == 2 else set()
        rows = rows.filter(system_a_id__in=ids, system_b_id__in=ids)
        counted = [c for c in counted if {c["system_a_id"], c["system_b_id"]} == ids]
    paginator = LimitOffsetPagination()
    limit, offset = paginator.get_limit(request), paginator.get_offset(request)
    count = sum(c["units"] for c in counted)
    paginator.count, paginator.limit, paginator.offset, paginator.request = count, limit, offset, request
    # Past the end there is nothing to read (and a slice beyond the count would only ask for nothing).
    page = [separability_record(a, dataset.slug) for a in rows[offset:offset + limit]] if offset < count else []
    response = paginator.get_paginated_response(page)
    response.data["summary"] = dataset_summary(dataset, counts)["separability"]
    return response


# --------------------------------------------------------------------------------------------------
# studies


class StudyList(generics.ListAPIView):
    """Studies with their progress toward the target."""

    queryset = Study.objects.select_related("dataset").prefetch_related("systems").order_by("slug")
    serializer_class = s.StudySerializer

    def list(self, request, *args, **kwargs):
        from dashboard.queries import studies_progress

        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        studies = page if page is not None else list(self.filter_queryset(self.get_queryset()))
        serializer = self.get_serializer(studies, many=True,
                                         context={**self.get_serializer_context(),
                                                  "progress": studies_progress(studies)})
        return self.get_paginated_response(serializer.data) if page is not None else Response(serializer.data)


class StudyDetail(generics.RetrieveAPIView):
    """A study: settings, progress and inter-annotator agreement."""

    queryset = Study.objects.select_related("dataset").prefetch_related("systems")
    serializer_class = s.StudyDetailSerializer
    lookup_field = "slug"


class StudyComparisons(generics.ListAPIView):
    """The study's A/B comparisons (paginated), optionally filtered."""

    serializer_class = s.ComparisonSerializer

    @extend_schema(parameters=[s.ComparisonQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        study = get_object_or_404(Study, slug=self.kwargs["slug"])
        query = _validated(s.ComparisonQuerySerializer, self.request.query_params)
        qs = (Comparison.objects.filter(study=study)
              .select_related("instance", "system_a", "system_b", "generation_a", "generation_b").order_by("id"))
        for key in ("selected", "is_gold"):
            if query.get(key) is not None:
                qs = qs.filter(**{key: query[key]})
        if query.get("min_separability") is not None:
            qs = qs.filter(separability__gte=query["min_separability"])
        if query.get("system"):
            qs = qs.filter(Q(system_a__name=query["system"]) | Q(system_b__name=query["system"]))
        return qs


@extend_schema(
    parameters=[OpenApiParameter("format", OpenApiTypes.STR, enum=["json", "csv"],
                                 description="csv: the whole study as one CSV file (not paginated)."),
                *PAGE_PARAMETERS],
    responses={200: inline_serializer("PaginatedVotes", {
        "count": serializers.IntegerField(), "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True), "results": s.VoteRecordSerializer(many=True)}),
        (200, "text/csv"): OpenApiTypes.STR},
    summary="Votes of a study",
    description="Every vote with its comparison, the systems on the left and right, the decoded winner, the "
                "annotator's pseudonym, timings and flags. JSON is paginated (limit up to 20000); `?format=csv` "
                "streams the whole study.",
)
@api_view(["GET"])
@renderer_classes([JSONRenderer, BrowsableAPIRenderer, CSVRenderer])
def study_votes(request, slug):
    from dashboard import exports

    study = get_object_or_404(Study, slug=slug)
    if request.accepted_renderer.format == "csv":
        response = StreamingHttpResponse(exports.iter_export_text(study, "csv"),
                                         content_type=exports.CONTENT_TYPES["csv"])
        response["Content-Disposition"] = f'attachment; filename="{exports.export_filename(study.slug, "csv")}"'
        return response
    paginator = VotePagination()
    paginator.count_queryset = study.votes.all()
    page = paginator.paginate_queryset(exports.vote_queryset(study), request)
    return paginator.get_paginated_response([exports.vote_record(v, study.slug) for v in page])


@extend_schema(
    request=s.ExclusionSerializer,
    responses={200: s.ExclusionResultSerializer, 400: OpenApiResponse(description="Invalid request; nothing changed."),
               404: OpenApiResponse(description="No such study, or no such annotator in it.")},
    summary="Exclude or restore votes or an annotator",
    description="Leave votes (by vote_id), or every vote of an annotator (by pseudonym, including their later "
                "votes), out of the study's leaderboards, agreement and DPO export, with a reason; `restore` "
                "brings them back. Votes of other studies in the list are ignored.",
)
@api_view(["POST"])
def study_exclusions(request, slug):
    from annotations import quality
    from annotations.models import AnnotatorProfile

    study = get_object_or_404(Study, slug=slug)
    data = _validated(s.ExclusionSerializer, request.data)
    try:
        if data.get("annotator"):
            profile = (AnnotatorProfile.objects.filter(pseudonym=data["annotator"], user__votes__study=study)
                       .select_related("user").first())
            if profile is None:
                return Response({"detail": "No annotator with this pseudonym voted in this study."},
                                status=status.HTTP_404_NOT_FOUND)
            changed = (quality.restore_annotator(study, profile.user) if data["restore"] else
                       quality.exclude_annotator(study, profile.user, data["reason"], by=request.user))
        elif data["restore"]:
            changed = quality.restore_votes(study, data["votes"])
        else:
            changed = quality.exclude_votes(study, data["votes"], data["reason"], by=request.user)
    except quality.QualityError as exc:
        return Response({"detail": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
    return Response({"study": study.slug, "changed": changed})


@extend_schema(
    parameters=[s.LeaderboardQuerySerializer],
    responses=inline_serializer("Leaderboards", {
        "study": serializers.CharField(), "leaderboards": s.LeaderboardSerializer(many=True),
        "comparisons": serializers.ListField(child=serializers.DictField())}),
    summary="Leaderboards of a study",
    description="The stored snapshots (elo, weighted_elo, bt, weighted_bt), each with ratings, bootstrap "
                "intervals and ranks, or the error that prevented ranking; plus plain vs weighted side by side "
                "with rank changes.",
)
@api_view(["GET"])
def study_leaderboards(request, slug):
    from dashboard.queries import leaderboards

    study = get_object_or_404(Study, slug=slug)
    query = _validated(s.LeaderboardQuerySerializer, request.query_params)
    data = leaderboards(study)
    boards = [b for m, b in sorted(data["boards"].items()) if not query.get("method") or m == query["method"]]
    comparisons = [] if query.get("method") else [
        {"plain": (c["plain"] or {}).get("method"), "weighted": (c["weighted"] or {}).get("method"),
         "rows": [{"system": r["system"], "plain_rank": (r["plain"] or {}).get("rank"),
                   "weighted_rank": (r["weighted"] or {}).get("rank"), "rank_change": r["rank_change"],
                   "plain_rating": (r["plain"] or {}).get("rating"),
                   "weighted_rating": (r["weighted"] or {}).get("rating")} for r in c["rows"]]}
        for c in data["comparisons"]]
    return Response({"study": study.slug, "leaderboards": boards, "comparisons": comparisons})


# --------------------------------------------------------------------------------------------------
# generation: model endpoints and generation runs (issue 15, docs/design.md §6)
#
# The rules are generation.forms' (the same as the admin's and the staff pages'), the work is
# generation.services': a run that cannot start (`RunError`) is a 400 {"error": ...} and writes nothing.
# An API key is never accepted nor shown, only the name of the variable that holds it.

GENERATION_ERROR = OpenApiResponse(s.GenerationErrorSerializer, description="Nothing was written.")
# JSON bodies only: a form-encoded list of system names longer than DATA_UPLOAD_MAX_NUMBER_FIELDS made
# Django refuse the body with an HTML 400 before the serializer could say what was wrong.
JSON_ONLY = [JSONParser]


def _json_data(request):
    """The JSON body; any other media type is a 415. (A multipart POST has already been read by
    lib.middleware, and DRF would then hand a JSON-only view an empty body instead of refusing it.)"""
    if request.content_type and request.content_type.split(";")[0].strip() != "application/json":
        raise UnsupportedMediaType(request.content_type)
    return request.data


class EndpointList(generics.ListAPIView):
    """Model endpoints by name: where each system's samples come from."""

    parser_classes = JSON_ONLY
    queryset = ModelEndpoint.objects.select_related("system").order_by("name")
    serializer_class = s.EndpointSerializer

    @extend_schema(
        request=s.EndpointInputSerializer, responses={201: s.EndpointSerializer},
        summary="Add a model endpoint",
        description="kind openai (any OpenAI-compatible server: base_url and model) or local (a model folder, "
                    "run by the gpu worker). The fields left out take their defaults. The key is given as "
                    "api_key_env, the NAME of the workers' environment variable that holds it; a request with "
                    "`api_key` is refused. A bad field is a 400 naming it, and nothing is written.")
    def post(self, request):
        serializer = s.EndpointInputSerializer(data=_json_data(request))
        serializer.is_valid(raise_exception=True)
        return Response(s.EndpointSerializer(serializer.save()).data, status=status.HTTP_201_CREATED)


class EndpointDetail(generics.RetrieveAPIView):
    """A model endpoint."""

    parser_classes = JSON_ONLY
    queryset = ModelEndpoint.objects.select_related("system")
    serializer_class = s.EndpointSerializer
    lookup_field = "name"

    @extend_schema(
        request=s.EndpointInputSerializer, responses=s.EndpointSerializer, summary="Change a model endpoint",
        description="Only the fields given change; the same rules as on creation (`system: \"\"` detaches "
                    "it from its system). New limits apply to the chunks that start after the change.")
    def patch(self, request, name):
        serializer = s.EndpointInputSerializer(self.get_object(), data=_json_data(request), partial=True)
        serializer.is_valid(raise_exception=True)
        return Response(s.EndpointSerializer(serializer.save()).data)

    @extend_schema(
        responses={204: None, 409: OpenApiResponse(s.GenerationErrorSerializer,
                                                   description="A run still samples from it; nothing changed.")},
        summary="Delete a model endpoint",
        description="Its system and the samples it generated stay. Refused while an unfinished run samples "
                    "from it: cancel the run first.")
    def delete(self, request, name):
        endpoint = self.get_object()
        busy = (GenerationRun.objects.filter(systems=endpoint.system_id).exclude(status__in=GenerationRun.FINISHED)
                .order_by("id").first() if endpoint.system_id else None)
        if busy is not None:
            return Response({"error": f"Generation run {busy.pk} ({busy.status}) samples from endpoint "
                                      f"{endpoint.name} and has not finished: cancel it first "
                                      f"(POST /api/v1/generation-runs/{busy.pk}/cancel/)."},
                            status=status.HTTP_409_CONFLICT)
        endpoint.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


def _generation_runs():
    return (GenerationRun.objects.select_related("dataset", "separability_run").prefetch_related("systems")
            .order_by("-created_at", "-id"))


def _generation_run(pk: int) -> GenerationRun:
    return get_object_or_404(_generation_runs(), pk=pk)


class GenerationRunList(generics.ListAPIView):
    """Generation runs, newest first: settings, progress and outcome."""

    parser_classes = JSON_ONLY
    serializer_class = s.GenerationRunSerializer

    @extend_schema(parameters=[s.GenerationRunQuerySerializer])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        query = _validated(s.GenerationRunQuerySerializer, self.request.query_params)
        runs = _generation_runs()
        if query.get("dataset"):
            runs = runs.filter(dataset__slug=query["dataset"])
        if query.get("status"):
            runs = runs.filter(status=query["status"])
        return runs

    @extend_schema(
        request=s.GenerationRunInputSerializer, responses={201: s.GenerationRunDetailSerializer, 400: GENERATION_ERROR},
        summary="Start a generation run",
        description="k samples for every instance of the dataset from each system's endpoint, in chunk tasks "
                    "(rate-limited per endpoint, retried on 429/5xx/timeouts); only the samples still missing "
                    "are asked for. The fields left out take their defaults (k 5, temperature 1, top_p 1, "
                    "max_tokens 256, per-sample seeds from 0, template `$input`, separability chained). A bad "
                    "field is a 400 naming it; a run that cannot start (a system without an endpoint, an "
                    "unset key variable, a dataset without inputs) is a 400 `{\"error\": \"...\"}`. Either "
                    "way nothing is written. Follow the run at its `url`.")
    def post(self, request):
        from generation import services

        data = _validated(s.GenerationRunInputSerializer, _json_data(request))
        try:
            run = services.generate(data["dataset"], data["systems"], data["settings"], created_by=request.user)
        except services.RunError as exc:
            return Response({"error": str(exc)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(s.GenerationRunDetailSerializer(_generation_run(run.pk)).data, status=status.HTTP_201_CREATED)


class GenerationRunDetail(generics.RetrieveAPIView):
    """A generation run: status, done/total, tokens, blocked systems, failures by kind, the identical and
    empty samples report, and the separability run it chained."""

    queryset = _generation_runs()
    serializer_class = s.GenerationRunDetailSerializer


@extend_schema(
    request=None,
    responses={200: s.GenerationRunDetailSerializer,
               409: OpenApiResponse(s.GenerationErrorSerializer, description="The run had already finished.")},
    summary="Cancel a generation run",
    description="Its remaining chunks do nothing; the samples stored so far stay (a later run fills the rest).",
)
@api_view(["POST"])
def generation_run_cancel(request, pk):
    from generation import services

    run = _generation_run(pk)
    if not services.cancel_run(run):
        return Response({"error": f"Generation run {run.pk} had already finished ({run.status}): there is nothing "
                                  f"to cancel."}, status=status.HTTP_409_CONFLICT)
    return Response(s.GenerationRunDetailSerializer(_generation_run(pk)).data)


# --------------------------------------------------------------------------------------------------
# tokens and docs


@extend_schema(request=s.TokenRotateSerializer, responses={200: s.TokenSerializer, 201: s.TokenSerializer},
               summary="Create (or show) your API token",
               description="Signed in as staff (session or token), get your token for `Authorization: Token KEY`. "
                           "`rotate: true` replaces it.")
@api_view(["POST"])
def token(request):
    from rest_framework.authtoken.models import Token

    query = _validated(s.TokenRotateSerializer, request.data)
    if query["rotate"]:
        Token.objects.filter(user=request.user).delete()
    key, created = Token.objects.get_or_create(user=request.user)
    return Response({"token": key.key, "created": created},
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@extend_schema(exclude=True)
@api_view(["GET"])
def root(request):
    """Where everything is."""
    return Response({
        "datasets": "/api/v1/datasets/",
        "studies": "/api/v1/studies/",
        "endpoints": "/api/v1/endpoints/",
        "generation_runs": "/api/v1/generation-runs/",
        "token": "/api/v1/token/",
        "schema": "/api/schema/",
        "docs": "/api/docs/",
    })


def docs(request):
    """The API documentation: Swagger UI from static/vendor (no CDN), plus a plain list of the paths
    rendered on the server for readers without JavaScript."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            operations.append({"path": path, "method": method.upper(),
                               "summary": operation.get("summary") or operation.get("operationId", "")})
    return render(request, "api/docs.html", {"operations": operations, "schema_url": "/api/schema/"})
