"""Who may touch which part of the bucket: one S3 identity per component, least privilege.

The layer services hold identities scoped to the prefixes their layer reads and writes
(gold runs user SQL: even past its sandbox, its keys cannot read landing/ or write
silver/); the analyst identity only reads silver/ and gold/. The control plane (the API,
the flows, maintenance, the CLI) keeps the shared identity, FLOWFORGE_S3_ACCESS_KEY_ID: it
creates the bucket, previews every layer, deletes workflows with their data and vacuums
every table.

The same grants become SeaweedFS identities (the embedded stack, docker-compose.yml) and
AWS IAM policies (docs/deploy.md, checked by a test).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Where every writer probes once whether the store honours conditional writes
# (ObjectStore.supports_conditional_writes): it writes, rewrites and deletes one object.
PROBE_PREFIX = "_flowforge/probe/"


@dataclass(frozen=True)
class Grant:
    """The key prefixes (each ending with '/') a component reads and writes; writing a
    prefix includes reading and listing it (delta-rs reads a table's log to commit)."""

    read: tuple[str, ...]
    write: tuple[str, ...] = ()

    @property
    def readable(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*self.read, *self.writable)))

    @property
    def writable(self) -> tuple[str, ...]:
        return (*self.write, PROBE_PREFIX) if self.write else ()


GRANTS: dict[str, Grant] = {
    "bronze": Grant(read=("landing/",), write=("bronze/",)),
    "silver": Grant(read=("bronze/",), write=("silver/",)),
    "gold": Grant(read=("silver/", "dimensions/"), write=("gold/",)),
    "analyst": Grant(read=("silver/", "gold/")),
}
# The components whose keys are settings (FLOWFORGE_S3_{COMPONENT}_ACCESS_KEY_ID, ...).
COMPONENTS = tuple(GRANTS)
# The shared identity's name in a SeaweedFS configuration.
ADMIN = "flowforge"


def seaweedfs_actions(bucket: str, grant: Grant | None) -> list[str]:
    """SeaweedFS's actions for a grant: `Read:bucket/prefix*` and so on (a trailing `*`
    matches every key under the prefix; listing is checked against the listed prefix).
    None: the shared identity, with every action on every bucket."""
    if grant is None:
        return ["Admin", "Read", "Write", "List", "Tagging"]
    verbs = ("Read", "List")
    actions = [f"{verb}:{bucket}/{prefix}*" for prefix in grant.readable for verb in verbs]
    return actions + [f"Write:{bucket}/{prefix}*" for prefix in grant.writable]


def seaweedfs_config(bucket: str, keys: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """A SeaweedFS S3 configuration (`weed mini -s3.config=`) with one identity per entry of
    `keys` (name -> (access key, secret key)): ADMIN with every action, each component with
    its grant."""
    return {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": access, "secretKey": secret}],
                "actions": seaweedfs_actions(bucket, GRANTS.get(name) if name != ADMIN else None),
            }
            for name, (access, secret) in keys.items()
        ]
    }


def iam_policy(bucket: str, component: str) -> dict[str, Any]:
    """The AWS IAM policy granting `component` what GRANTS gives it (docs/deploy.md)."""
    grant = GRANTS[component]
    arn = f"arn:aws:s3:::{bucket}"
    statements: list[dict[str, Any]] = [
        {
            "Sid": "List",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": arn,
            "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in grant.readable]}},
        },
        {
            "Sid": "Read",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{arn}/{p}*" for p in grant.readable],
        },
    ]
    if grant.writable:
        statements.append(
            {
                "Sid": "Write",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"{arn}/{p}*" for p in grant.writable],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}
