"""`/api/v1/activities`: the activity catalogue, grouped by category (filter choices)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api.models import ActivityCatalogue
from api.resources.common import auth_responses, protect
from schemas.catalogue import categories

blp = Blueprint(
    "activities", __name__, url_prefix="/api/v1/activities", description="Activity catalogue."
)
protect(blp)


@blp.route("", methods=["GET"])
@blp.response(200, ActivityCatalogue)
@auth_responses(blp)
def list_activities() -> dict[str, Any]:
    """Every known activity, grouped by category."""
    return {
        "categories": [
            {
                "code": category.code,
                "label": category.label,
                "activities": [
                    {"code": a.code, "label": a.label, "object_type": a.object_type}
                    for a in category.activities
                ],
            }
            for category in categories()
        ]
    }
