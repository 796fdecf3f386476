"""Bronze's peak memory on a CSV holding one huge quoted field (FLOWFORGE_BRONZE_MAX_FIELD_MB).

    python -m bench.huge_field [--field-mb 200] [--code PATH]

Ingests a CSV whose row 2 holds a quoted field of --field-mb (line breaks every KB) between
ordinary rows, through `flowforge serve bronze` (default settings) on the embedded
SeaweedFS, and prints the outcome, the service's RSS before the request and its peak.
--code runs the service from another checkout (one with the same CLI), for a before/after
figure.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import grpc

from bench.common import ROOT, ServiceProcess, start_s3, timed
from flowforge.storage import ObjectStore
from flowforge.v1 import bronze_pb2, bronze_pb2_grpc, common_pb2


def write_csv(path: Path, field_mb: int) -> None:
    line = b"x" * 1023 + b"\n"
    with path.open("wb") as out:
        out.write(b'id,name,note\n1,ann,short\n2,bob,"')
        for _ in range(field_mb << 10):
            out.write(line)
        out.write(b'"\n')
        out.writelines(b"%d,name %d,%s\n" % (i, i, b"y" * 100) for i in range(3, 100_000))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--field-mb", type=int, default=200)
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout the service runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ff-bench-") as tmp:
        csv_path = Path(tmp) / "huge.csv"
        write_csv(csv_path, args.field_mb)
        s3, settings = start_s3(Path(tmp))
        service = None
        try:
            key = "landing/bench/huge/huge.csv"
            with csv_path.open("rb") as handle:
                ObjectStore(settings).upload(key, handle)
            print(f"input: {csv_path.stat().st_size / 2**20:.0f} MiB, one {args.field_mb} MB field")
            service = ServiceProcess("bronze", settings, Path(tmp), code=args.code)

            def ingest() -> common_pb2.LayerResult:
                with grpc.insecure_channel(service.address) as channel:
                    return bronze_pb2_grpc.BronzeServiceStub(channel).Ingest(
                        bronze_pb2.IngestRequest(
                            job=common_pb2.JobRef(workflow_id="bench", job_id="huge")
                        ),
                        timeout=900,
                    )

            service.reset_peak()
            print(f"service RSS before the request: {service.peak_rss / 2**20:.0f} MiB")
            _, result = timed(f"bronze service ({args.code})", ingest)
            print(f"rows: {result.rows_out} bronze + {result.rows_rejected} rejected")
            print(f"rejected: {dict(result.rejected_by_reason)}")
            print(f"service peak RSS: {service.peak_rss / 2**20:.0f} MiB")
        finally:
            if service is not None:
                service.stop()
            s3.stop()


if __name__ == "__main__":
    main()
