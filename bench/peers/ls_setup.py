"""Run inside Label Studio's own virtualenv by bench/peers (not importable from the site's): creates
the benchmark's organisation (legacy API tokens enabled, as token-driven clients need) with an owner
and N annotators, and prints their API tokens as JSON on the last line of stdout.

Label Studio has no API to create users or to turn legacy tokens on without a browser session, so
this goes through its models, as its own `label-studio user` command does.

    python ls_setup.py <annotators>
"""
import json
import sys

import django

django.setup()

from organizations.functions import create_organization  # noqa: E402 - after django.setup()
from users.models import User  # noqa: E402


def main(annotators: int) -> dict:
    owner = User.objects.create_user(email="owner@peers.bench", password="peers-bench-owner", username="owner")
    org = create_organization(title="Peers benchmark", created_by=owner, legacy_api_tokens_enabled=True)
    org.jwt.legacy_api_tokens_enabled = True
    org.jwt.save()
    owner.active_organization = org
    owner.save()
    tokens = []
    for index in range(annotators):
        user = User.objects.create_user(email=f"annotator{index}@peers.bench", password=f"peers-bench-{index}",
                                        username=f"annotator{index}")
        org.add_user(user)
        user.active_organization = org
        user.save()
        tokens.append(user.reset_token().key)
    return {"owner": owner.reset_token().key, "annotators": tokens}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))))
