"""The OpenAPI schema's error answers, documented once for every operation.

drf-spectacular documents only what a view returns on success (and what `@extend_schema` adds), but
every operation here can also answer with DRF's errors, and clients (and the schema fuzzer,
tests/api/test_openapi_fuzz.py) should find them in the schema:

- 400 where the operation reads query parameters or a request body: the serializer's field errors
  `{"field": ["message", ...]}` (or `non_field_errors`), or `{"detail": "..."}` for a body that cannot
  be parsed. A view that documents its own 400 (the import's `{"error": ...}`) may answer either.
- 401 and 403 where the operation needs credentials: `{"detail": "..."}` (none or a bad token; not staff).
- 404 where the path names an object by slug: `{"detail": "..."}`.
- 415 where the operation reads a request body, sent in a media type it does not read: `{"detail": "..."}`.
"""
from __future__ import annotations

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorDetailSerializer(serializers.Serializer):
    detail = serializers.CharField()


VALIDATION_ERROR = {
    "type": "object",
    "description": "Each invalid field (or `non_field_errors`) with what is wrong with it.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}


class AutoSchema(SpectacularAutoSchema):
    """drf-spectacular's, plus the error answers above (REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"])."""

    def get_operation(self, path, path_regex, path_prefix, method, registry):
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        parameters = operation.get("parameters", [])
        detail = self.resolve_serializer(ErrorDetailSerializer, "response").ref
        errors = {}
        if operation.get("requestBody") or any(p["in"] == "query" for p in parameters):
            validation = ResolvedComponent(name="ValidationError", type=ResolvedComponent.SCHEMA,
                                           schema=VALIDATION_ERROR, object="ValidationError")
            self.registry.register_on_missing(validation)
            errors["400"] = ({"anyOf": [validation.ref, detail]}, "Invalid parameters or body.")
        if {} not in operation.get("security", [{}]):
            errors["401"] = (detail, "No credentials, or a token that is not valid.")
            errors["403"] = (detail, "Signed in, but not staff (or a session request without its CSRF token).")
        if any(p["in"] == "path" for p in parameters):
            errors["404"] = (detail, "No object with this slug.")
        if operation.get("requestBody"):
            errors["415"] = (detail, "A request body in a media type the operation does not read.")
        responses = operation["responses"]
        for code, (schema, description) in errors.items():
            response = self._get_response_for_code(OpenApiResponse(schema, description=description), code)
            if code not in responses:
                responses[code] = response
                continue
            # The view documents its own body for this code: the answer is that or the generic one.
            for media_type, content in responses[code].get("content", {}).items():
                generic = response.get("content", {}).get(media_type, {}).get("schema")
                if generic is not None and "schema" in content:
                    content["schema"] = {"anyOf": [content["schema"], *generic.get("anyOf", [generic])]}
        operation["responses"] = dict(sorted(responses.items()))
        return operation
