"""Webhooks and rights requests: their console pages.

The routes are part of the console's contract (DESIGN.md §9.7) and answer now; what they
show comes with the APIs behind them (§9.1 webhooks and their delivery log, §9.2 requests).
Until then each page says so. When the services exist, these views list
``webhooks.list_webhooks`` with each endpoint's deliveries and a retry form, and the request
queue by ``due_at`` with its status changes, through the same services as the API.
"""

from __future__ import annotations

from consent_api.web.console import bp, officer, render


@bp.get("/webhooks")
def webhooks():
    who = officer()
    who.rights.require(who.rights.admin)
    return render("console/pending.html", who=who, topic="webhooks")


@bp.get("/requests")
def requests():
    who = officer()
    who.rights.require(who.rights.read)
    return render("console/pending.html", who=who, topic="requests")
