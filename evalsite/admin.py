"""The site's admin: Django's, with the importers' upload page and our header (instead of patching
`admin.site` from inside an app)."""
from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.urls import path


class EvalAdminSite(admin.AdminSite):
    site_header = "Pairwise evaluation admin"
    site_title = "Pairwise evaluation admin"
    index_template = "admin/index_with_import.html"

    def get_urls(self):
        from annotations.admin import import_upload_view

        return [path("annotations/import/", self.admin_view(import_upload_view), name="annotations_import"),
                *super().get_urls()]


class EvalAdminConfig(AdminConfig):
    """Makes EvalAdminSite the default `admin.site` (listed in INSTALLED_APPS instead of django.contrib.admin)."""

    default_site = "evalsite.admin.EvalAdminSite"
