"""Downloading a shared file from Slack with the bot token — and nowhere else.

The bot token is a credential for the whole workspace, so it is sent only to the Web API
host (the host of ROSTERBOT_SLACK_API_URL) and to Slack's own file hosts.  Redirects are
never followed (urllib would carry the Authorization header to the new host).  The size is
checked from the event before any request and again while reading.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from bot.settings import Settings

#: The longest file name an upload record keeps (roster.models.Upload.file_name).
MAX_FILE_NAME = 255


class DownloadRefused(Exception):
    """The file was not downloaded; `reason` is a sentence for the person who shared it."""

    def __init__(self, reason: str, *, kind: str) -> None:
        super().__init__(reason)
        self.reason = reason
        #: "host" | "size" | "permissions" | "redirect" | "http" | "timeout" | "missing_url"
        #: | "url" (a link Slack gave that cannot be used: bad port, control characters)
        self.kind = kind


@dataclass(frozen=True)
class SharedFile:
    """The parts of a Slack file object the bot uses."""

    id: str
    name: str
    size: int | None
    filetype: str
    mimetype: str
    url: str | None
    #: Slack's `mode`: "hosted", "file_access" (Slack Connect), "hidden_by_limit", ...
    mode: str = ""

    @classmethod
    def from_event(cls, f: dict) -> SharedFile:
        size = f.get("size")
        return cls(
            id=str(f.get("id", "")),
            name=str(f.get("name") or f.get("title") or "file"),
            size=int(size) if isinstance(size, int | float | str) and str(size).isdigit() else None,
            filetype=str(f.get("filetype") or "").lower(),
            mimetype=str(f.get("mimetype") or "").lower(),
            url=f.get("url_private_download") or f.get("url_private"),
            mode=str(f.get("mode") or ""),
        )

    @property
    def is_csv(self) -> bool:
        """A file the reader takes: CSV or delimited text (Excel's "Unicode Text" is a .txt)
        or an .xlsx/.xlsm workbook.  The reader decides from the bytes; other formats shared
        under these names are refused there with the format named (FILE_NOT_CSV)."""
        return (
            self.name.lower().endswith(_READ_EXTENSIONS)
            or self.filetype in _READ_FILETYPES
            or self.mimetype in _READ_MIMETYPES
        )


_READ_EXTENSIONS = (".csv", ".txt", ".tsv", ".xlsx", ".xlsm")
#: (not Slack's "text" type or text/plain: a snippet posted in the channel is no roster)
_READ_FILETYPES = ("csv", "tsv", "xlsx", "xlsm")
_READ_MIMETYPES = (
    "text/csv",
    "application/csv",
    "text/tab-separated-values",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel.sheet.macroenabled.12",
)


def unreadable_reason(file: SharedFile) -> str | None:
    """Why the bot cannot take this shared file at all (before any download), or None."""
    if file.mode == "hidden_by_limit":
        return (
            "Slack is hiding this file because the workspace is over its file storage limit, "
            "so I cannot read it. A workspace admin can free space (delete older files) or "
            "upgrade the plan; then share the file again."
        )
    if file.mode == "file_access" and not file.url:
        return (
            f"Slack did not give me the details of {file.name} (a file shared through Slack "
            "Connect), so I cannot read it. Share the file again in a channel of this "
            "workspace."
        )
    if file.is_csv and len(file.name) > MAX_FILE_NAME:
        return (
            f"The file name is {len(file.name)} characters long; I can keep names of up to "
            f"{MAX_FILE_NAME} characters. Rename the file (for example users.csv) and share "
            "it again."
        )
    return None


def url_problem(url: str) -> str | None:
    """What makes a download link unusable (checked before any request), or None."""
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in url):
        return "it contains a space or a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return "its host or port number is not valid"
    if parts.scheme not in ("http", "https"):
        return "it is not an http(s) link"
    if not parts.hostname:
        return "it names no host"
    return None


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} bytes"


def token_may_go_to(url: str, settings: Settings) -> bool:
    """True when `url` is on the Web API host or one of Slack's file hosts."""
    if url_problem(url) is not None:
        return False
    parts = urlsplit(url)
    if not parts.hostname:
        return False
    api = urlsplit(settings.slack_api_url)
    if (parts.scheme, parts.hostname.lower(), parts.port) == (
        api.scheme,
        (api.hostname or "").lower(),
        api.port,
    ):
        return True
    return (
        parts.scheme == "https"
        and parts.port in (None, 443)
        and parts.hostname.lower() in settings.file_hosts
    )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D401
        return None  # urllib then raises HTTPError for the 3xx


_opener = urllib.request.build_opener(_NoRedirect)

PERMISSIONS_HINT = (
    "Slack sent a sign-in page instead of the file. The bot lacks the `files:read` permission "
    "or is not a member of this channel: invite the bot to the channel (`/invite @rosterbot`) "
    "or ask your Slack admin to reinstall the app with `files:read`, then share the file again."
)


def _to_sign_in(location: str) -> bool:
    """A redirect to Slack's sign-in page (`https://WORKSPACE.slack.com/?redir=/files-pri/…`)."""
    try:
        return "redir" in parse_qs(urlsplit(location).query)
    except ValueError:
        return False


def _looks_like_html(content_type: str, head: bytes) -> bool:
    if "text/html" in content_type.lower():
        return True
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return start.startswith(b"<!doctype html") or start.startswith(b"<html")


def _timed_out(file: SharedFile, settings: Settings) -> str:
    return (
        f"Slack did not send {file.name} within {settings.download_timeout:g} seconds, so I "
        "stopped waiting. Nothing was applied; share the file again in a few minutes."
    )


def download(file: SharedFile, token: str, settings: Settings) -> bytes:
    """Return the file's bytes or raise DownloadRefused with a reason for the user."""
    cap = settings.max_file_bytes
    if file.size is not None and file.size > cap:
        raise DownloadRefused(
            f"{file.name} is {human_size(file.size)}, over the limit of {human_size(cap)}. "
            "Split the file by school and share the parts one at a time.",
            kind="size",
        )
    if not file.url:
        raise DownloadRefused(
            f"Slack did not give me a download link for {file.name}; share the file again.",
            kind="missing_url",
        )
    problem = url_problem(file.url)
    if problem is not None:
        raise DownloadRefused(
            f"Slack gave me a download link for {file.name} that I cannot use ({problem}), "
            "so I did not download it. Share the file again, and tell support if it keeps "
            "happening.",
            kind="url",
        )
    if not token_may_go_to(file.url, settings):
        host = urlsplit(file.url).hostname or file.url
        raise DownloadRefused(
            f"{file.name} is hosted on {host}, which is not a Slack file host, so I did not "
            "download it. Upload the file itself into Slack.",
            kind="host",
        )
    request = urllib.request.Request(
        file.url, headers={"Authorization": f"Bearer {token}", "User-Agent": "rosterbot"}
    )
    try:
        with _opener.open(request, timeout=settings.download_timeout) as response:
            data = response.read(cap + 1)
            content_type = response.headers.get("Content-Type", "")
    except TimeoutError as err:
        raise DownloadRefused(_timed_out(file, settings), kind="timeout") from err
    except urllib.error.HTTPError as err:
        if 300 <= err.code < 400 and _to_sign_in(err.headers.get("Location") or ""):
            # files.slack.com sends a request it will not serve to the workspace's sign-in
            raise DownloadRefused(PERMISSIONS_HINT, kind="permissions") from None
        if 300 <= err.code < 400:
            raise DownloadRefused(
                f"Slack redirected the download of {file.name}; I do not follow redirects with "
                "the bot token. " + PERMISSIONS_HINT,
                kind="redirect",
            ) from None
        if err.code in (401, 403, 404):
            raise DownloadRefused(PERMISSIONS_HINT, kind="permissions") from None
        raise DownloadRefused(
            f"Slack answered {err.code} when I downloaded {file.name}, so I could not read it. "
            "Nothing was applied; share the file again in a few minutes.",
            kind="http",
        ) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError):
            raise DownloadRefused(_timed_out(file, settings), kind="timeout") from None
        raise DownloadRefused(
            f"I could not download {file.name} ({err.reason}); try sharing it again.", kind="http"
        ) from None
    except OSError as err:
        raise DownloadRefused(
            f"I could not download {file.name} ({err}); try sharing it again.", kind="http"
        ) from None
    if len(data) > cap:
        raise DownloadRefused(
            f"{file.name} is over the limit of {human_size(cap)}. "
            "Split the file by school and share the parts one at a time.",
            kind="size",
        )
    if _looks_like_html(content_type, data[:512]):
        raise DownloadRefused(PERMISSIONS_HINT, kind="permissions")
    return data
