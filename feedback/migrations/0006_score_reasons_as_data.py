"""Score reasons become data: {factor, points, params}, worded when shown, in the reader's
language (feedback.models.score_reason_text). Reasons written before, with an English
`detail` in the fixed forms feedback.services.scoring used, are read back into params;
anything else keeps its `detail` and is shown as it is."""

import re

from django.db import migrations

PATTERNS = {
    "incident": [(re.compile(r"^impact weight of (?P<incident_type>\w+)$"), {})],
    "customer_value": [
        (re.compile(r"^(?P<tier>\w+) tier, lifetime value (?P<lifetime_value>[\d.]+) (?P<currency>[A-Z]{3})$"), {})
    ],
    "repeat": [(re.compile(r"^(?P<count>\d+) case\(s\) in the last 90 days$"), {})],
    "feeling": [
        (re.compile(r"^rated (?P<value>\d)/5$"), {"kind": "rating"}),
        (re.compile(r"^NPS (?P<value>\d+)/10$"), {"kind": "nps"}),
        (re.compile(r"^anger (?P<value>[\d.]+)$"), {"kind": "anger"}),
    ],
    "age": [(re.compile(r"^waiting (?P<hours>\d+) h$"), {})],
    "reopened": [(re.compile(r"^the customer said it was not solved$"), {})],
}
NUMBERS = {"count": int, "hours": int, "value": float}


def as_data(reason: dict) -> dict:
    if "params" in reason or not isinstance(reason.get("detail"), str):
        return reason
    for pattern, extra in PATTERNS.get(reason.get("factor"), []):
        match = pattern.match(reason["detail"])
        if match:
            params = {key: NUMBERS.get(key, str)(value) for key, value in match.groupdict().items()}
            if extra.get("kind") in ("rating", "nps"):
                params["value"] = int(params["value"])
            return {"factor": reason["factor"], "points": reason.get("points", 0), "params": {**extra, **params}}
    return reason


def forward(apps, schema_editor):
    Case = apps.get_model("feedback", "Case")
    changed = []
    for case in Case.objects.only("pk", "score_reasons").iterator(chunk_size=2000):
        reasons = [as_data(reason) if isinstance(reason, dict) else reason for reason in case.score_reasons or []]
        if reasons != case.score_reasons:
            case.score_reasons = reasons
            changed.append(case)
        if len(changed) >= 2000:
            Case.objects.bulk_update(changed, ["score_reasons"])
            changed = []
    if changed:
        Case.objects.bulk_update(changed, ["score_reasons"])


class Migration(migrations.Migration):
    dependencies = [("feedback", "0005_followup_intervention")]

    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
