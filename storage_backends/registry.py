"""Open a backend from a URL: a small registry keyed by URL scheme.

``file:///abs/dir`` or a plain path is local disk, ``s3://bucket[/prefix]`` is
S3 and ``gs://bucket[/prefix]`` is Google Cloud Storage. The prefix is the
archive root inside the bucket. Each SDK is imported only when its backend is
opened, so a missing SDK is reported then, with the ``pip install`` to run.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from storage_backends.base import Backend
from storage_backends.errors import BackendConfigError
from storage_backends.keys import validate_key
from storage_backends.options import BackendOptions

#: scheme -> function(bucket_or_path, prefix, options) returning a Backend.
Opener = Callable[[str, str, BackendOptions], Backend]

_OPENERS: dict[str, Opener] = {}


def register_backend(scheme: str, opener: Opener) -> None:
    """Register (or replace) the opener for a URL scheme."""
    _OPENERS[scheme] = opener


def _import_backend(module: str, extra: str, sdk: str) -> object:
    try:
        return importlib.import_module(f"storage_backends.{module}")
    except ImportError as exc:
        raise BackendConfigError(
            f"the {sdk} SDK is not installed; run: pip install 'track-archive[{extra}]'"
        ) from exc


def _open_local(path: str, _prefix: str, options: BackendOptions) -> Backend:
    from storage_backends.local import LocalBackend

    return LocalBackend(Path(path), options.local)


def _open_s3(bucket: str, prefix: str, options: BackendOptions) -> Backend:
    module = _import_backend("s3", "s3", "boto3")
    backend: Backend = module.S3Backend(bucket, prefix, options.s3)  # type: ignore[attr-defined]
    return backend


def _open_gcs(bucket: str, prefix: str, options: BackendOptions) -> Backend:
    module = _import_backend("gcs", "gcs", "google-cloud-storage")
    backend: Backend = module.GCSBackend(bucket, prefix, options.gcs)  # type: ignore[attr-defined]
    return backend


register_backend("file", _open_local)
register_backend("s3", _open_s3)
register_backend("gs", _open_gcs)


def split_url(url: str) -> tuple[str, str, str]:
    """Split a backend URL into ``(scheme, bucket_or_path, prefix)``.

    A plain path (no scheme) is treated as ``file``; the prefix is validated as
    a key and returned without surrounding slashes.
    """
    if not url:
        raise BackendConfigError("empty backend URL")
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or len(parts.scheme) == 1:  # "C:" style or a plain path
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise BackendConfigError(f"file URL must not name a host: {url!r}")
            path = unquote(parts.path)
            if not path.startswith("/"):
                raise BackendConfigError(f"file URL needs an absolute path: {url!r}")
        else:
            path = url
        return "file", str(Path(path).expanduser().resolve()), ""
    if parts.query or parts.fragment or parts.username or parts.password or parts.port:
        raise BackendConfigError(
            f"{parts.scheme} URL takes only a bucket and an optional prefix"
            f" (no credentials, query or fragment): {parts.scheme}://{parts.hostname}/..."
        )
    bucket = parts.netloc
    if not bucket:
        raise BackendConfigError(f"{parts.scheme} URL needs a bucket: {url!r}")
    prefix = parts.path.strip("/")
    if prefix:
        try:
            validate_key(prefix)
        except ValueError as exc:
            raise BackendConfigError(f"bad prefix in backend URL {url!r}: {exc}") from exc
    return parts.scheme, bucket, prefix


def open_backend(url: str, options: BackendOptions | None = None) -> Backend:
    """Open the backend a URL names, configured by ``options`` (defaults if ``None``)."""
    scheme, location, prefix = split_url(url)
    opener = _OPENERS.get(scheme)
    if opener is None:
        known = ", ".join(sorted(_OPENERS))
        raise BackendConfigError(f"unknown storage URL scheme {scheme!r} (known: {known})")
    return opener(location, prefix, options or BackendOptions())
