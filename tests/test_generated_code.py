"""The committed generated code matches what the .proto files produce now."""

from pathlib import Path

from flowforge import protogen


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    fresh = {p.name: p.read_bytes() for p in protogen.generate(tmp_path)}
    committed_dir = protogen.ROOT / protogen.GENERATED_PACKAGE
    committed = {p.name: p.read_bytes() for p in committed_dir.glob("*.py*")}
    stale = sorted(name for name in fresh if committed.get(name) != fresh[name])
    extra = sorted(set(committed) - set(fresh))
    assert not stale and not extra, (
        f"flowforge/v1 is stale ({stale}) or has extra files ({extra}): run `make protos`"
    )
