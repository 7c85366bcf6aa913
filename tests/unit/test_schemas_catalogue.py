"""The catalogue: all 41 activities of SPEC's activities.csv, with labels and categories,
then the activities the product records itself."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from schemas.catalogue import (
    OTHER_CATEGORY_CODE,
    SYSTEM_ACTIVITIES,
    UnknownActivityError,
    all_activities,
    categories,
    derive_label,
    get_activity,
)

SPEC_CSV = Path(__file__).resolve().parents[3] / "shared" / "spec" / "activities.csv"
PACKAGE_CSV = Path(__file__).resolve().parents[2] / "schemas" / "data" / "activities.csv"

# The SPEC's table, restated so a wrong package file cannot pass by comparing with itself.
EXPECTED = {
    "login.impersonate": ("Impersonate login", "login_accessibility"),
    "password.reset": ("Reset password", "login_accessibility"),
    "ad_group.add": ("Add AD group", "organization_management"),
    "ad_group.update": ("Update AD group", "organization_management"),
    "ad_group.disable": ("Disable AD group", "organization_management"),
    "ad_group.delete": ("Delete AD group", "organization_management"),
    "delegated_user.add": ("Add delegated user", "organization_management"),
    "delegated_user.update": ("Update delegated user", "organization_management"),
    "organization.create": ("Create a new organization", "organization_management"),
    "auto_license.enable": ("Enable auto license", "organization_management"),
    "auto_license.disable": ("Disable auto license", "organization_management"),
    "compliance.enable": ("Enable compliance", "organization_management"),
    "compliance.disable": ("Disable compliance", "organization_management"),
    "dpo.enable": ("Enable DPO", "organization_management"),
    "dpo.disable": ("Disable DPO", "organization_management"),
    "in_place_archive.enable": ("Enable in-place archive", "organization_management"),
    "in_place_archive.disable": ("Disable in-place archive", "organization_management"),
    "insights.enable": ("Enable insights", "organization_management"),
    "insights.disable": ("Disable insights", "organization_management"),
    "spa.enable": ("Enable SPA", "organization_management"),
    "spa.disable": ("Disable SPA", "organization_management"),
    "private_chat.enable": ("Enable private chat", "organization_management"),
    "private_chat.disable": ("Disable private chat", "organization_management"),
    "organization_transfer.initiate": ("Initiate organization transfer", "organization_management"),
    "organization_transfer.execute": ("Execute organization transfer", "organization_management"),
    "nfr.update": ("NFR", "organization_management"),
    "seat_breakdown_report.generate": ("Generate seat breakdown report", "organization_management"),
    "subscription.suspend": ("Suspend subscription", "organization_management"),
    "subscription.unsuspend": ("Unsuspend subscription", "organization_management"),
    "subscription.unsubscribe": ("Unsubscribe subscription", "organization_management"),
    "subscription.reactivate": ("Reactivate subscription", "organization_management"),
    "subscription.delete": ("Delete subscription", "organization_management"),
    "csv_report.request": ("Request CSV report", "organization_management"),
    "password_reset.request": ("Request reset password", "organization_management"),
    "audit_log.download": ("Download organization's audit log", "organization_management"),
    "deactivated_mailbox_settings.update": (
        "Update deactivated mailbox settings",
        "organization_management",
    ),
    "duplicate_journal_message_setting.update": (
        "Update duplicate journal message setting",
        "organization_management",
    ),
    "owner_general_detail.update": ("Update owner general detail", "organization_management"),
    "pst_download_limit.update": ("Update PST download limit", "organization_management"),
    "subscription_plan.update": ("Update subscription plan", "organization_management"),
    "subscription_seat.update": ("Update subscription seat", "organization_management"),
}
# Recorded by the product itself (retention), after the SPEC's rows.
PRODUCT_ACTIVITIES = {
    "audit_log.expire": ("Delete expired audit logs", "organization_management"),
}
CATEGORY_LABELS = {
    "login_accessibility": "Login & Accessibility",
    "organization_management": "Organization Management",
}


def test_41_activities_in_file_order_then_the_products_own() -> None:
    assert len(EXPECTED) == 41
    assert [a.code for a in all_activities()] == [*EXPECTED, *PRODUCT_ACTIVITIES]
    assert frozenset(PRODUCT_ACTIVITIES) == SYSTEM_ACTIVITIES


@pytest.mark.parametrize("code", [*EXPECTED, *PRODUCT_ACTIVITIES])
def test_activity_label_and_category(code: str) -> None:
    activity = get_activity(code)
    label, category = {**EXPECTED, **PRODUCT_ACTIVITIES}[code]
    assert (activity.code, activity.label, activity.category_code) == (code, label, category)
    assert activity.category_label == CATEGORY_LABELS[category]
    assert activity.known and activity.object_type


@pytest.mark.skipif(not SPEC_CSV.exists(), reason="the shared spec folder is not present")
def test_package_data_matches_spec_csv() -> None:
    with SPEC_CSV.open(encoding="utf-8") as spec, PACKAGE_CSV.open(encoding="utf-8") as pkg:
        spec_rows, package_rows = list(csv.DictReader(spec)), list(csv.DictReader(pkg))
    assert package_rows[: len(spec_rows)] == spec_rows
    assert [row["code"] for row in package_rows[len(spec_rows) :]] == list(PRODUCT_ACTIVITIES)


def test_categories_group_in_order() -> None:
    groups = categories()
    assert [(c.code, c.label) for c in groups] == list(CATEGORY_LABELS.items())
    assert [len(c.activities) for c in groups] == [2, 39 + len(PRODUCT_ACTIVITIES)]


def test_unknown_well_formed_code_is_other() -> None:
    activity = get_activity("widget.frobnicate")
    assert activity.category_code == OTHER_CATEGORY_CODE
    assert activity.category_label == "Other"
    assert activity.label == "Frobnicate widget"
    assert not activity.known


@pytest.mark.parametrize(
    ("code", "label"),
    [("billing.invoice.void", "Void billing invoice"), ("a_b.c_d", "C d a b")],
)
def test_derived_label(code: str, label: str) -> None:
    assert derive_label(code) == label


@pytest.mark.parametrize("code", ["compliance", "Compliance.enable", "", "a..b"])
def test_malformed_code_raises(code: str) -> None:
    with pytest.raises(UnknownActivityError):
        get_activity(code)
