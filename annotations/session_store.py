"""The site's session engine (`SESSION_ENGINE`): Django's database sessions, same table and encoding, with
the read of every request written as one plain statement.

Why: every annotator request reads its session first. Through the ORM (`Session.objects.get(...)`) that
read was 11% of the server's CPU per vote-and-next-item cycle after the cycle's own reads went plain
(`python -m bench.peers --systems site --profile-cpu`), for a primary-key lookup. Writes, expiry, key
rotation, `exists` and `clear_expired` stay Django's, so sessions stored by the stock engine remain valid
and the other way round.
"""
from __future__ import annotations

from django.contrib.sessions.backends import db
from django.db import connections, router
from django.utils import timezone


class SessionStore(db.SessionStore):
    def load(self):
        key = self.session_key
        row = None
        if key is not None:
            model = self.model
            with connections[router.db_for_read(model)].cursor() as cursor:
                cursor.execute(f'SELECT session_data FROM "{model._meta.db_table}" '
                               "WHERE session_key = %s AND expire_date > %s", [key, timezone.now()])
                row = cursor.fetchone()
        if row is None:  # missing or expired: as Django's engine, forget the key (a new one is made on save)
            self._session_key = None
            return {}
        return self.decode(row[0])
