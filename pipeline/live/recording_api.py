"""A client for the recording service's participant track recording API.

The token goes in the ``Authorization`` header as the service expects; it is
never logged and never part of an error message. Every error becomes a
``RecordingApiError`` carrying the service's own message.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..events import KINDS
from ..jsontext import JSONProblem, loads_bytes
from .errors import ApiArgumentError, RecordingApiError

DEFAULT_API_BASE = "https://api.videosdk.live"
FILE_FORMATS = ("webm",)
START_PATH = "/v2/recordings/participant/track/start"
STOP_PATH = "/v2/recordings/participant/track/stop"
LIST_PATH = "/v2/recordings/participant/track"
PUBLIC_KEY_PATH = "/v2/public/rsa-public-key"
#: Listing pages asked for at once; the service's own default is smaller.
PAGE_SIZE = 50
#: A listing that never ends is a bug on one side or the other: stop there.
MAX_PAGES = 10_000


def _require(value: str | None, what: str) -> str:
    if value is None or not value.strip():
        raise ApiArgumentError(f"{what} must not be empty")
    if len(value) > 512:
        raise ApiArgumentError(f"{what} is longer than 512 characters")
    return value


def check_kind(kind: str) -> str:
    """``kind`` if the service accepts it, else ``ApiArgumentError``."""
    if kind not in KINDS:
        raise ApiArgumentError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return kind


def check_api_base(url: str) -> str:
    """An absolute http(s) base URL without credentials, trailing slash removed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApiArgumentError(f"API base {url!r} is not an absolute http(s) URL")
    if parts.username or parts.password:
        raise ApiArgumentError("the API base URL must not carry credentials")
    return url.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class StartRequest:
    """The body of a start call, checked when built."""

    room_id: str
    participant_id: str
    kind: str
    file_format: str = "webm"
    webhook_url: str | None = None
    bucket_dir_path: str | None = None

    def __post_init__(self) -> None:
        _require(self.room_id, "room")
        _require(self.participant_id, "participant")
        check_kind(self.kind)
        if self.file_format not in FILE_FORMATS:
            raise ApiArgumentError(
                f"file format {self.file_format!r} is not supported (only {', '.join(FILE_FORMATS)})"
            )
        if self.webhook_url is not None:
            parts = urlsplit(self.webhook_url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ApiArgumentError(
                    f"webhook URL {self.webhook_url!r} is not an absolute http(s) URL"
                )
        if self.bucket_dir_path is not None:
            _require(self.bucket_dir_path, "bucket dir path")

    def body(self) -> dict[str, str]:
        """The JSON body the service expects."""
        body = {
            "roomId": self.room_id,
            "participantId": self.participant_id,
            "kind": self.kind,
            "fileFormat": self.file_format,
        }
        if self.webhook_url is not None:
            body["webhookUrl"] = self.webhook_url
        if self.bucket_dir_path is not None:
            body["bucketDirPath"] = self.bucket_dir_path
        return body


@dataclass(frozen=True)
class ListedFile:
    """One file of a listed recording."""

    file_url: str
    file_path: str | None
    size: int | None
    duration: float | None


@dataclass(frozen=True)
class ListedRecording:
    """One entry of the listing API."""

    id: str
    room_id: str | None
    session_id: str
    participant_id: str
    kind: str
    files: list[ListedFile] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def parse_listed(item: Any) -> ListedRecording:
    """One ``data[]`` entry of the listing, or ``RecordingApiError`` when it is not one."""
    if not isinstance(item, dict):
        raise RecordingApiError("listing entry is not an object", endpoint=LIST_PATH)
    try:
        files = []
        for entry in item.get("files") or []:
            size = entry.get("size")
            meta = entry.get("meta") or {}
            files.append(
                ListedFile(
                    file_url=str(entry["fileUrl"]),
                    file_path=entry.get("filePath"),
                    size=int(size) if _number(size) is not None else None,
                    duration=_number(meta.get("duration")) if isinstance(meta, dict) else None,
                )
            )
        return ListedRecording(
            id=str(item.get("id") or item.get("_id") or ""),
            room_id=item.get("roomId"),
            session_id=str(item["sessionId"]),
            participant_id=str(item["participantId"]),
            kind=str(item["kind"]),
            files=files,
            raw=item,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise RecordingApiError(
            f"listing entry lacks a usable field ({exc})", endpoint=LIST_PATH
        ) from None


class RecordingApi:
    """Start and stop track recordings, list them, and fetch the webhook public key."""

    def __init__(
        self,
        token: str | None,
        *,
        api_base: str = DEFAULT_API_BASE,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.api_base = check_api_base(api_base)
        self._token = token
        self._client = httpx.Client(
            base_url=self.api_base,
            timeout=timeout,
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json", "User-Agent": "track-archive/0.1"},
        )

    def _headers(self, *, auth: bool) -> dict[str, str]:
        if not auth:
            return {}
        if not self._token:
            raise ApiArgumentError(
                "no API token: set VIDEOSDK_TOKEN or videosdk.token in the config"
            )
        return {"Authorization": self._token}

    def _call(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        headers = self._headers(auth=auth)
        try:
            response = self._client.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as exc:
            # The exception text names the URL only; the token lives in a header.
            raise RecordingApiError(
                f"cannot reach {self.api_base} ({type(exc).__name__}: {exc})", endpoint=path
            ) from exc
        try:
            # Bounded like every other outside JSON: a hostile answer is "not JSON", not a crash.
            data = loads_bytes(response.content) if response.content else None
        except JSONProblem:
            data = None
        if response.status_code >= 400:
            raise RecordingApiError(
                _service_message(data, response), status=response.status_code, endpoint=path
            )
        if data is None:
            raise RecordingApiError(
                f"expected a JSON answer, got {response.headers.get('content-type', 'nothing')}",
                status=response.status_code,
                endpoint=path,
            )
        return data

    def start(self, request: StartRequest) -> Any:
        """Start recording one participant's track; the service's answer."""
        return self._call("POST", START_PATH, body=request.body())

    def stop(self, room_id: str, participant_id: str, kind: str) -> Any:
        """Stop recording one participant's track; the service's answer."""
        body = {
            "roomId": _require(room_id, "room"),
            "participantId": _require(participant_id, "participant"),
            "kind": check_kind(kind),
        }
        return self._call("POST", STOP_PATH, body=body)

    def recordings(
        self,
        *,
        room_id: str | None = None,
        session_id: str | None = None,
        participant_id: str | None = None,
        per_page: int = PAGE_SIZE,
    ) -> Iterator[ListedRecording]:
        """Every listed recording of a room (or of one session in it), page after page.

        The service's reference marks ``roomId`` required, so it is always sent.
        """
        _require(room_id, "room")
        params: dict[str, Any] = {"perPage": per_page}
        for name, value in (
            ("roomId", room_id),
            ("sessionId", session_id),
            ("participantId", participant_id),
        ):
            if value:
                params[name] = _require(value, name)
        page = 1
        while page <= MAX_PAGES:
            data = self._call("GET", LIST_PATH, params={**params, "page": page})
            if not isinstance(data, dict) or not isinstance(data.get("data"), list):
                raise RecordingApiError("listing answer has no data list", endpoint=LIST_PATH)
            for item in data["data"]:
                yield parse_listed(item)
            info = data.get("pageInfo") or {}
            last = info.get("lastPage")
            if not data["data"] or not isinstance(last, int) or page >= last:
                return
            page += 1
        raise RecordingApiError(f"listing has more than {MAX_PAGES} pages", endpoint=LIST_PATH)

    def public_key(self) -> str:
        """The PEM text of the key that signs webhooks (no token needed)."""
        data = self._call("GET", PUBLIC_KEY_PATH, auth=False)
        key = data.get("publicKey") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise RecordingApiError("answer has no publicKey", endpoint=PUBLIC_KEY_PATH)
        return key

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> RecordingApi:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _service_message(data: Any, response: httpx.Response) -> str:
    """The service's own explanation of an error, whatever shape it came in."""
    if isinstance(data, dict):
        for key in ("message", "error", "msg", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:500]
            if value is not None:
                return json.dumps(value)[:500]
    text = response.text.strip()
    return text[:500] if text else response.reason_phrase or "no message"
