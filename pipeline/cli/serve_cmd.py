"""``track-archive serve`` (the webhook receiver) and ``track-archive public-key fetch``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import (
    ConfigProblem,
    allow_origin_option,
    api_base_option,
    backend_option,
    broker_option,
    config_option,
    load,
    setup_logging,
    state_option,
    translate_errors,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..live import SignatureVerifier
    from ..live.app import BackgroundFactory

log = logging.getLogger("track_archive")


def verifier_for(config: Config, no_verify: bool) -> SignatureVerifier | None:
    """The signature verifier the config asks for; refuses to run without a key."""
    if no_verify or not config.serve.verify_signatures:
        return None
    path = config.serve.public_key
    if path is None:
        raise ConfigProblem(
            "refusing to start without the service's public key: webhooks could not be "
            "verified. Give --public-key PEM_FILE (get it with `track-archive public-key "
            "fetch --out FILE`) or, only for local testing, --no-verify."
        )
    from ..live import PublicKeyError, SignatureVerifier

    try:
        return SignatureVerifier.from_file(path)
    except PublicKeyError as exc:
        raise ConfigProblem(str(exc)) from None


def _forwarder(config: Config) -> BackgroundFactory:
    """Forward committed deliveries to the broker instead of archiving here."""
    from ..queue.app import BrokerSettings
    from ..queue.outbox import BrokerOutbox

    settings = BrokerSettings.from_config(config)
    log.info("forwarding segments to the broker at %s", settings.url.rsplit("@", 1)[-1])
    return lambda journal, metrics: BrokerOutbox.for_receiver(settings, journal, metrics)


@click.command("serve")
@config_option
@backend_option
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default 8080).")
@state_option
@allow_origin_option
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="PEM file of the service's webhook signing key.",
)
@click.option(
    "--no-verify", is_flag=True, help="Accept unsigned webhooks (local testing only; unsafe)."
)
@broker_option
@translate_errors
def serve(
    config_path: Path | None,
    backend_url: str | None,
    host: str | None,
    port: int | None,
    state_path: Path | None,
    allow_origins: tuple[str, ...],
    public_key: Path | None,
    no_verify: bool,
    broker_url: str | None,
) -> None:
    """Receive the recording service's webhooks and archive every stopped track.

    POST /webhooks/videosdk answers 200 only once the delivery is committed to
    the journal; background workers download, verify and store the segments
    and update the manifests. Also serves GET /healthz, GET /sessions/ID and
    GET /metrics. Pending work is resumed at startup. With --broker the
    segments are forwarded to `track-archive worker` processes instead.
    """
    if public_key is not None and no_verify:
        raise ConfigProblem("--public-key and --no-verify cannot be used together")
    config = load(
        config_path,
        **{
            "backend.url": backend_url,
            "serve.host": host,
            "serve.port": port,
            "serve.public_key": str(public_key) if public_key else None,
            "state.journal": str(state_path) if state_path else None,
            "download.allowed_origins": list(allow_origins) or None,
            "queue.broker": broker_url,
        },
    )
    setup_logging(config.log_level)
    verifier = verifier_for(config, no_verify)
    if verifier is None:
        log.warning("signature verification is OFF: anyone can make this server fetch URLs")
    # The web stack and the archiver load here, once the configuration is known to be usable.
    from ..live import create_app
    from ..live.runner import serve_forever
    from ..run import open_configured_backend

    backend = open_configured_backend(config)
    try:
        app = create_app(
            config,
            backend=backend,
            policy=config.download,
            verifier=verifier,
            background=_forwarder(config) if config.queue.broker else None,
        )
        log.info(
            "receiving webhooks on http://%s:%d/webhooks/videosdk, archiving to %s",
            config.serve.host,
            config.serve.port,
            backend.url,
        )
        serve_forever(
            app,
            host=config.serve.host,
            port=config.serve.port,
            header_timeout=config.serve.header_timeout,
        )
    finally:
        backend.close()


@click.group("public-key")
def public_key_group() -> None:
    """The recording service's webhook signing key."""


@public_key_group.command("fetch")
@config_option
@api_base_option
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to store the PEM file (then pass it to serve --public-key).",
)
@translate_errors
def fetch_public_key(config_path: Path | None, api_base: str | None, out: Path) -> None:
    """Fetch the key that signs webhooks (GET /v2/public/rsa-public-key) and store it as PEM."""
    from ..live import PublicKeyError, load_public_key
    from ..live.recording_api import RecordingApi
    from ..live.signature import public_key_pem

    config = load(config_path, **{"videosdk.api_base": api_base})
    with RecordingApi(None, api_base=config.videosdk.api_base) as api:
        text = api.public_key()
    try:
        key = load_public_key(text)
    except PublicKeyError as exc:
        raise ConfigProblem(f"the service's answer is not a usable key: {exc}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(public_key_pem(key), encoding="ascii")
    tmp.replace(out)
    click.echo(
        f"stored the webhook signing key in {out}; use: track-archive serve --public-key {out}"
    )


commands = [serve, public_key_group]
