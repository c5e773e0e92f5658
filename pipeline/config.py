"""``config.yaml``: parsed once into validated, typed objects.

Unknown or mistyped keys are errors that name the key. ``${VAR}`` (or
``${VAR:-default}``) anywhere in a string value is replaced from the
environment, so secrets need not live in the file. Command-line options are
applied on top (``load_config(path, **overrides)``) before validation.

Each section is validated by its own model, and only when the file or the
command line names it: a section left out is its defaults, which need no
validator, so a command run on the defaults builds the validators of the
sections it was given only. The messages are those of validating the whole
file at once (``Config.model_validate``), in the same order.

The backend sections are the storage package's own validated options
(``storage_backends.S3Options``, ...): each option is declared, defaulted and
checked once.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from storage_backends.options import BackendOptions, GCSOptions, LocalOptions, S3Options

from .download.policy import DEFAULT_PER_HOST, DownloadPolicy
from .errors import ConfigError

DEFAULT_CONFIG_NAME = "config.yaml"
# A string, not a compiled pattern: ``re`` compiles it on first use (a config file holding a
# string), so the commands run without one skip the cost.
_ENV_PATTERN = r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}"


class _Section(BaseModel):
    # Built the first time a config names the section (see _validate), not at import.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class BackendSection(_Section):
    """Where the archive lives, and the options of each kind of backend.

    ``s3``, ``gcs`` and ``local`` are the storage package's own option
    objects: their defaults and checks live there, once.
    """

    url: str = "./archive"
    s3: S3Options = S3Options()
    gcs: GCSOptions = GCSOptions()
    local: LocalOptions = LocalOptions()

    def options(self) -> BackendOptions:
        """The options ``open_backend`` takes."""
        return BackendOptions(s3=self.s3, gcs=self.gcs, local=self.local)


class StateSection(_Section):
    """Local working files: the journal, and the state directory that belongs to it.

    Staged downloads and quarantined files live in ``<journal>.d/`` unless
    ``staging`` or ``quarantine`` name another place: two journals in one
    working directory never share them.
    """

    journal: Path = Path(".track-archive/journal.sqlite3")
    staging: Path | None = None
    quarantine: Path | None = None
    #: Bytes of refused files the quarantine keeps; the oldest copies go first.
    quarantine_max_bytes: int = Field(1024**3, ge=0)
    #: Tries in all for a segment that fails with an unexpected error in ``serve``.
    retry_attempts: int = Field(5, gt=0)
    #: Seconds before the first retry; each further retry waits twice as long.
    retry_backoff: float = Field(30.0, ge=0)

    @property
    def directory(self) -> Path:
        """The journal's own state directory, ``<journal>.d``."""
        return self.journal.with_name(self.journal.name + ".d")

    @property
    def staging_dir(self) -> Path:
        """Where downloads in progress are written."""
        return self.staging if self.staging is not None else self.directory / "staging"

    @property
    def quarantine_dir(self) -> Path:
        """Where refused files are kept beside their reasons."""
        return self.quarantine if self.quarantine is not None else self.directory / "quarantine"


class ServeSection(_Section):
    """The live webhook receiver."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    public_key: Path | None = None
    verify_signatures: bool = True
    max_body: int = Field(1024 * 1024, gt=0)
    workers: int = Field(4, gt=0)
    stuck_after: float = Field(6 * 3600.0, gt=0)
    #: Seconds a client may take to send a request's line and headers (slowloris guard).
    header_timeout: float = Field(10.0, gt=0)
    #: Seconds a client may take to send a request's body once its headers are in.
    body_timeout: float = Field(30.0, gt=0)


class QueueSection(_Section):
    """Running on many machines: the Celery broker and what every worker shares."""

    broker: str | None = None
    #: Where workers put refused files: a backend URL, so the bytes outlive the worker's
    #: machine. Unset: the local ``state.quarantine`` directory (one-machine setups only).
    quarantine: str | None = None
    concurrency: int = Field(4, gt=0)
    #: Redis redelivers a task not acknowledged within this many seconds: it must outlast
    #: the longest download (``download.deadline``). Default: the deadline plus 10 minutes.
    visibility_timeout: float | None = Field(None, gt=0)
    #: Finished entries merged into a session's manifest in one write: at most this many...
    merge_batch: int = Field(64, gt=0)
    #: ...or whatever arrived within this many seconds.
    merge_wait: float = Field(1.0, gt=0)
    metrics_port: int | None = Field(None, ge=0, le=65535)
    #: ``archive --broker`` says so when no segment has finished for this many seconds,
    #: naming whether any worker answers, instead of waiting in silence.
    idle_warning: float = Field(60.0, gt=0)
    #: Storage roots (backend URLs) a worker copies between for ``sync --broker``; a copy
    #: task naming any other root is refused, so a forged message cannot reach other buckets.
    sync_roots: list[str] = Field(default_factory=list)

    @field_validator("broker")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("redis", "rediss", "amqp", "amqps"):
            raise ValueError("must be a redis://, rediss://, amqp:// or amqps:// URL")
        return value


class VideoSDKSection(_Section):
    """The recording service's API (start/stop, listing, public key)."""

    api_base: str = "https://api.videosdk.live"
    token: str | None = Field(None, repr=False)

    @field_validator("token")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # ``${VIDEOSDK_TOKEN:-}`` yields "" when the variable is unset.
        return value or None


def _per_host_follows_concurrency(value: Any) -> Any:
    # A lower overall limit implies a lower per-host one; only an explicit clash is an error.
    if isinstance(value, dict) and "per_host" not in value:
        concurrency = value.get("concurrency")
        if isinstance(concurrency, int) and not isinstance(concurrency, bool):
            return {**value, "per_host": min(concurrency, DEFAULT_PER_HOST)}
    return value


class Config(_Section):
    """The whole validated configuration."""

    # The defaults are valid as declared: constructing them builds no validator.
    backend: BackendSection = BackendSection.model_construct()
    download: DownloadPolicy = DownloadPolicy()
    state: StateSection = StateSection.model_construct()
    serve: ServeSection = ServeSection.model_construct()
    queue: QueueSection = QueueSection.model_construct()
    videosdk: VideoSDKSection = VideoSDKSection.model_construct()
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("download", mode="before")
    @classmethod
    def _download_per_host(cls, value: Any) -> Any:
        return _per_host_follows_concurrency(value)

    def override(self, **changes: Any) -> Config:
        """Apply dotted overrides (``{"backend.url": "s3://b"}``), skipping ``None``."""
        data = _apply(self.model_dump(exclude_defaults=True), changes)
        return _validate(data, "command-line options")


def _apply(data: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``data`` with each dotted key in ``changes`` set, except those given as ``None``."""
    for dotted, value in changes.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            child = node.get(part)
            node[part] = child = dict(child) if isinstance(child, dict) else {}
            node = child
        node[leaf] = value
    return data


def _interpolate(value: Any, where: str) -> Any:
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{where}: environment variable {name} is not set")

        return re.sub(_ENV_PATTERN, substitute, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _empty_sections(data: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """A section whose keys are all commented out parses as ``None``: read it as empty."""
    for name, info in model.model_fields.items():
        sub = info.annotation
        if name not in data or not isinstance(sub, type):
            continue
        if issubclass(sub, _Section) or dataclasses.is_dataclass(sub):
            if data[name] is None:
                data[name] = {}
            if issubclass(sub, _Section) and isinstance(data[name], dict):
                data[name] = _empty_sections(data[name], sub)
    return data


def _validate(data: dict[str, Any], source: str) -> Config:
    """``data`` as a :class:`Config`, each section it names validated by that section's model.

    Equivalent to ``Config.model_validate(data)``, problems reported in the same order (the
    fields' order, then unknown keys), without building the validators of absent sections.
    """
    data = _empty_sections(dict(data), Config)
    fields = Config.model_fields
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name, info in fields.items():
        if name not in data:
            continue
        value = data[name]
        if name == "download":
            value = _per_host_follows_concurrency(value)
        try:
            values[name] = _validate_field(name, info.annotation, value)
        except ValidationError as exc:
            problems.extend(_problems(exc, (name,)))
    problems.extend(f"{key}: unknown key" for key in data if key not in fields)
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))
    return Config.model_construct(**values)


#: Validators of the top-level fields that are no section model, built on first use.
_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _validate_field(name: str, annotation: Any, value: Any) -> Any:
    """One top-level field validated alone: a section by its own model, else by an adapter."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation.model_validate(value)  # builds the section's validator on first use
    if name not in _ADAPTERS:
        _ADAPTERS[name] = TypeAdapter(annotation)
    return _ADAPTERS[name].validate_python(value)


def _problems(exc: ValidationError, where: tuple[str, ...] = ()) -> list[str]:
    """Each error of ``exc`` as ``dotted.path: what is wrong``, its location under ``where``."""
    problems = []
    for err in exc.errors():
        path = ".".join(str(p) for p in (*where, *err["loc"])) or "(top level)"
        if err["type"] in ("extra_forbidden", "unexpected_keyword_argument"):
            problems.append(f"{path}: unknown key")
        elif err["type"] == "value_error" and "error" in err.get("ctx", {}):
            # The option objects' own checks name the option already.
            problems.append(f"{path}: {err['ctx']['error']}")
        else:
            problems.append(f"{path}: {err['msg']}")
    return problems


def load_config(path: Path | None, **overrides: Any) -> Config:
    """Read ``path`` (or ``./config.yaml`` when present, else defaults) once.

    ``overrides`` are command-line options as dotted keys (``None``: not given),
    applied to what the file says before the whole is validated.
    """
    data = _read(path)
    config = _validate(data, str(path or DEFAULT_CONFIG_NAME))
    if any(value is not None for value in overrides.values()):
        config = _validate(_apply(data, overrides), "command-line options")
    return config


def _read(path: Path | None) -> dict[str, Any]:
    if path is None:
        default = Path(DEFAULT_CONFIG_NAME)
        if not default.is_file():
            return {}
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    import yaml  # only when there is a file: running on the defaults needs no parser

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    data: dict[str, Any] = _interpolate(raw, "config")
    return data
