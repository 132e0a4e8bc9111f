"""The authentication backend of annotator sessions: it loads the signed-in user in one plain statement.

Annotators never sign in with a password: an invite link or a Prolific link signs them in
(`annotations.auth.switch_to`), and from then on their session is the credential. Every request of theirs
then asks the session's backend for the user; Django's `ModelBackend.get_user` builds that primary-key
lookup through the ORM, which was 10% of the server's CPU per vote-and-next-item cycle once the cycle's
own reads were plain SQL (`python -m bench.peers --systems site --profile-cpu`). This backend reads the
same row with `annotations.sql.from_row`, and refuses inactive users as `ModelBackend` does.

It authenticates no credentials and answers no permission checks: staff passwords and permissions stay
with `ModelBackend`, listed first in AUTHENTICATION_BACKENDS, and sessions stored with `ModelBackend`
before this backend existed stay valid (docs/security.md).
"""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import BaseBackend
from django.db import connection

from .sql import columns, from_row


class AnnotatorSessionBackend(BaseBackend):
    def authenticate(self, request, **credentials):
        return None  # annotators have no password; invite and Prolific links sign them in (annotations.auth)

    def get_user(self, user_id):
        model = get_user_model()
        try:
            pk = model._meta.pk.to_python(user_id)
        except Exception:  # noqa: BLE001 - a malformed id in a session is no user, as in ModelBackend
            return None
        with connection.cursor() as cursor:
            cursor.execute(f'SELECT {columns(model, "u")} FROM "{model._meta.db_table}" u '
                           f'WHERE u."{model._meta.pk.column}" = %s', [pk])
            row = cursor.fetchone()
        if row is None:
            return None
        user = from_row(model, row)
        return user if user.is_active else None
