"""The `flowforge` command."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from flowforge.errors import FlowForgeError, Unavailable
from flowforge.logs import configure_logging
from flowforge.runtime import serve as serve_forever
from flowforge.services_registry import LAYER_SERVICES
from flowforge.settings import Settings, get_settings
from flowforge.storage import ObjectStore

app = typer.Typer(
    no_args_is_help=True,
    help="FlowForge: a medallion pipeline for CSV data.",
    pretty_exceptions_show_locals=False,
)
serve_app = typer.Typer(no_args_is_help=True, help="Run one FlowForge server in the foreground.")
app.add_typer(serve_app, name="serve")
dimensions_app = typer.Typer(
    no_args_is_help=True, help="Reference tables that gold models read as views dim_{name}."
)
app.add_typer(dimensions_app, name="dimensions")

log = logging.getLogger("flowforge.cli")

Host = Annotated[str | None, typer.Option(help="Interface to bind (default: FLOWFORGE_GRPC_HOST).")]


def prepare_store(settings: Settings) -> ObjectStore:
    """Creates the bucket when missing and probes conditional writes; tolerates a store
    that is not up yet (requests then fail with UNAVAILABLE until it is)."""
    store = ObjectStore(settings)
    try:
        if settings.s3_create_bucket:
            store.ensure_bucket()
        store.supports_conditional_writes()
    except Unavailable as exc:
        log.warning("object store not reachable at start-up", extra={"error": exc.message})
    return store


def _serve_layer(layer: str, host: str | None, port: int | None) -> None:
    settings = get_settings()
    configure_logging(settings)
    service = LAYER_SERVICES[layer]
    address = f"{host or settings.grpc_host}:{port if port is not None else service.default_port}"
    server = service.factory()(settings, address, prepare_store(settings))
    log.info("serving", extra={"service": layer, "address": address, "port": server.port})
    serve_forever(server, settings)


def _add_layer_command(layer: str) -> None:
    service = LAYER_SERVICES[layer]

    def command(
        host: Host = None,
        port: Annotated[int, typer.Option(help="Port to listen on.")] = service.default_port,
    ) -> None:
        _serve_layer(layer, host, port)

    command.__doc__ = f"The {layer} layer service (gRPC, default port {service.default_port})."
    serve_app.command(layer)(command)


for _layer in LAYER_SERVICES:
    _add_layer_command(_layer)


@dimensions_app.command("upload")
def dimensions_upload(
    name: Annotated[str, typer.Argument(help="Dimension name; models read it as dim_{name}.")],
    file: Annotated[Path, typer.Argument(help="A .csv or .parquet file.", exists=True)],
) -> None:
    """Store FILE as dimension NAME (replacing the previous version atomically)."""
    from flowforge.dimensions import upload_dimension_file
    from flowforge.ids import validate_id

    settings = get_settings()
    configure_logging(settings)
    try:
        validate_id(name, "dimension")  # before the store is touched, so it need not be up
        info = upload_dimension_file(prepare_store(settings), name, file)
    except FlowForgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    print(f"dimension {info.name}: {info.rows} rows, run {info.run_id}")
    for column, type_ in info.columns:
        print(f"  {column}: {type_}")


@dimensions_app.command("list")
def dimensions_list() -> None:
    """List the committed dimensions."""
    from flowforge.dimensions import list_dimensions

    settings = get_settings()
    configure_logging(settings)
    try:
        found = list_dimensions(prepare_store(settings))
    except FlowForgeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        raise typer.Exit(1) from None
    for info in found:
        columns = ", ".join(name for name, _ in info.columns)
        print(f"{info.name}\t{info.rows} rows\t{info.created_at:%Y-%m-%d %H:%M:%S}Z\t{columns}")


@app.command()
def demo(
    keep: Annotated[bool, typer.Option(help="Keep the demo's state folder afterwards.")] = False,
) -> None:
    """Run the sample data through the pipeline on the embedded stack, print what happened."""
    from flowforge.demo import run_demo

    raise typer.Exit(run_demo(get_settings(), keep=keep))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
