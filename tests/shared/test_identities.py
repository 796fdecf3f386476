"""Each component's own S3 identity, as the embedded SeaweedFS enforces it: what gold's keys
can do if its SQL sandbox were bypassed (boto3 with the keys themselves, no FlowForge code
in the way), what bronze's can, and the analyst's read-only keys.

The expectations are the issue's list, written out here, not read from GRANTS."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from flowforge.embedded import EmbeddedS3
from flowforge.errors import FailedPrecondition
from flowforge.settings import Settings
from flowforge.storage import ObjectStore, prepare_store

AREAS = ("landing", "bronze", "silver", "gold", "dimensions")
# component -> (areas it reads, areas it writes)
EXPECTED = {
    "bronze": ({"landing", "bronze"}, {"bronze"}),
    "silver": ({"bronze", "silver"}, {"silver"}),
    "gold": ({"silver", "dimensions", "gold"}, {"gold"}),
    "analyst": ({"silver", "gold"}, set()),
}


def client(s3: EmbeddedS3, access: str, secret: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        aws_access_key_id=access,
        aws_secret_access_key=secret,
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def allowed(call: Callable[[], Any]) -> bool:
    try:
        call()
    except ClientError as exc:
        status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        assert status == 403, exc.response  # refused, not failed for another reason
        return False
    return True


@pytest.fixture(scope="module")
def objects(s3: EmbeddedS3) -> dict[str, str]:
    """One object in each area, written with the shared identity."""
    admin = client(s3, s3.access_key, s3.secret_key)
    tag = uuid.uuid4().hex[:8]
    keys = {area: f"{area}/wf-{tag}/job/existing.parquet" for area in AREAS}
    for key in keys.values():
        admin.put_object(Bucket=s3.bucket, Key=key, Body=b"committed")
    return keys


@pytest.mark.parametrize("component", sorted(EXPECTED))
def test_each_identity_reads_lists_and_writes_only_its_areas(
    s3: EmbeddedS3, objects: dict[str, str], component: str
) -> None:
    reads, writes = EXPECTED[component]
    keys = client(s3, *s3.identities[component])
    bucket = s3.bucket
    for area, key in objects.items():
        prefix = key.rsplit("/", 1)[0] + "/"
        read = allowed(lambda: keys.get_object(Bucket=bucket, Key=key)["Body"].read())  # noqa: B023
        listed = allowed(lambda: keys.list_objects_v2(Bucket=bucket, Prefix=prefix))  # noqa: B023
        assert (read, listed) == (area in reads, area in reads), (component, area)
        new = f"{prefix}{uuid.uuid4().hex}.parquet"
        wrote = allowed(lambda: keys.put_object(Bucket=bucket, Key=new, Body=b"x"))  # noqa: B023
        deleted = allowed(lambda: keys.delete_object(Bucket=bucket, Key=key))  # noqa: B023
        if area in writes:
            assert wrote and deleted, (component, area)
            client(s3, s3.access_key, s3.secret_key).put_object(
                Bucket=bucket, Key=key, Body=b"committed"
            )
        else:
            assert not wrote and not deleted, (component, area)
    # The whole bucket's listing is not theirs either.
    assert not allowed(lambda: keys.list_objects_v2(Bucket=bucket))


def test_gold_past_its_sandbox_cannot_write_silver_or_read_landing(
    s3: EmbeddedS3, objects: dict[str, str]
) -> None:
    gold = client(s3, *s3.identities["gold"])
    bucket = s3.bucket
    silver = objects["silver"].rsplit("/", 1)[0]
    for attempt in (
        lambda: gold.put_object(Bucket=bucket, Key=f"{silver}/evil.parquet", Body=b"x"),
        lambda: gold.delete_object(Bucket=bucket, Key=objects["silver"]),
        lambda: gold.create_multipart_upload(Bucket=bucket, Key=f"{silver}/evil.parquet"),
        lambda: gold.copy_object(
            Bucket=bucket,
            Key=objects["gold"] + ".copy",
            CopySource={"Bucket": bucket, "Key": objects["landing"]},
        ),
        lambda: gold.get_object(Bucket=bucket, Key=objects["landing"]),
        lambda: gold.list_objects_v2(Bucket=bucket, Prefix="landing/"),
    ):
        assert not allowed(attempt)
    admin = client(s3, s3.access_key, s3.secret_key)
    assert admin.get_object(Bucket=bucket, Key=objects["silver"])["Body"].read() == b"committed"


def test_a_batch_delete_outside_the_identity_fails_instead_of_passing_silently(
    settings: Settings, s3: EmbeddedS3, objects: dict[str, str]
) -> None:
    """S3 answers a multi-object delete 200 and lists the keys it refused."""
    bronze = ObjectStore(settings.model_copy(update=s3.identity_settings()).for_component("bronze"))
    with pytest.raises(FailedPrecondition, match="refused the configured credentials"):
        bronze.delete_keys([objects["silver"]])
    admin = client(s3, s3.access_key, s3.secret_key)
    assert admin.get_object(Bucket=s3.bucket, Key=objects["silver"])["Body"].read() == b"committed"


@pytest.mark.parametrize("component", ["bronze", "silver", "gold"])
def test_each_layer_starts_with_its_own_identity(
    settings: Settings, s3: EmbeddedS3, component: str
) -> None:
    """It may not look at the bucket itself, and does not try to create it; it probes
    conditional writes in its own corner."""
    own = settings.model_copy(update=s3.identity_settings()).for_component(component)
    assert own.s3_access_key_id == s3.identities[component][0]
    assert not own.s3_create_bucket
    store = prepare_store(own)
    assert store.bucket_exists()
    assert store.supports_conditional_writes()


def test_without_its_own_keys_a_component_uses_the_shared_identity(settings: Settings) -> None:
    assert settings.for_component("gold") is settings


def test_the_iam_policies_in_the_docs_are_the_grants() -> None:
    import json
    import re

    from flowforge.identities import GRANTS, iam_policy
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "deploy.md").read_text()
    found = dict(re.findall(r"`(\w+)`:\n\n```json\n(.*?)\n```", text, re.S))
    assert set(found) == set(GRANTS)
    for component, policy in found.items():
        assert json.loads(policy) == iam_policy("flowforge-data", component), component
