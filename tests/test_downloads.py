"""Downloads against a host that misbehaves: every failure ends in a clear message or a correct retry, never in a
corrupt cache, and the next good fetch installs the file with the right hash. No network: loopback and a local
Hugging Face cache only."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import time

import numpy as np
import pytest
import torch

from facegen import hub, registry
from facegen.cli import main as cli_main
from facegen.cli import progress
from facegen.errors import FetchError
from facegen.models.dcgan import DCGANConfig, DCGANGenerator
from tests.fake_host import Answer, FakeHost, use_catalog

PAYLOAD = np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes()
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()
CUT = 20_000  # where a dropped connection stops


@pytest.fixture
def host():
    host = FakeHost()
    yield host
    host.close()


@pytest.fixture(autouse=True)
def quick_downloads(monkeypatch):
    monkeypatch.setattr(hub, "CHUNK_BYTES", 4096)
    monkeypatch.setattr(hub, "RETRY_PAUSE_S", 0.0)
    monkeypatch.setattr(hub, "DOWNLOAD_TIMEOUT_S", 5.0)


@pytest.fixture
def blob(host, tmp_path, monkeypatch):
    """A catalog model `blob` whose one source is the fake host; returns the cache folder of the model."""
    host.serve("blob.bin", PAYLOAD)
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "blob": {
                "title": "Blob",
                "filename": "blob.bin",
                "size_bytes": len(PAYLOAD),
                "sha256": PAYLOAD_SHA256,
                "sources": [{"kind": "url", "url": host.url("blob.bin")}],
            }
        },
    )
    return registry.cached_path(registry.catalog_entry("blob")).parent


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(folder) -> set[str]:
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def assert_fetch_now_works(model_folder) -> None:
    path = registry.fetch_model("blob")
    assert sha256_of(path) == PAYLOAD_SHA256
    assert files_in(model_folder) == {"blob.bin", "blob.bin.sha256"}
    assert registry.model_status(registry.catalog_entry("blob")).state == "cached"


def test_dropped_connection_resumes_with_a_range_request(host, blob):
    host.plan("blob.bin", Answer(send_bytes=CUT))
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
    first, resumed = host.ranges_asked("blob.bin")
    assert first is None
    resumed_at = int(resumed.removeprefix("bytes=").removesuffix("-"))
    assert 0 < resumed_at <= CUT


def test_host_that_ignores_range_sends_the_whole_file_and_the_download_restarts(host, blob):
    host.plan("blob.bin", Answer(send_bytes=CUT), Answer(ignore_range=True))
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
    assert host.ranges_asked("blob.bin")[1].startswith("bytes=")


def test_body_cut_short_without_a_length_is_resumed(host, blob):
    host.plan("blob.bin", Answer(body=PAYLOAD[:CUT], declare_length=False))
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
    assert host.ranges_asked("blob.bin") == [None, f"bytes={CUT}-"]


@pytest.mark.parametrize(
    "served, message",
    [
        (PAYLOAD + b"more", "offers 50,004 bytes, but the catalog expects 50,000"),
        (PAYLOAD[:-1000], "offers 49,000 bytes, but the catalog expects 50,000"),
    ],
    ids=["longer", "shorter"],
)
def test_host_serving_another_size_is_refused_at_once(host, blob, served, message):
    host.plan("blob.bin", Answer(body=served))
    with pytest.raises(FetchError, match=message) as caught:
        registry.fetch_model("blob")
    assert host.url("blob.bin") in str(caught.value)
    assert "python -m facegen fetch blob --from PATH" in str(caught.value)
    assert len(host.requests) == 1, "a wrong file is not worth a retry"
    assert files_in(blob) == {"last-fetch-error.txt"}
    assert registry.model_status(registry.catalog_entry("blob")).state == "failed"
    assert_fetch_now_works(blob)


def test_host_sending_more_bytes_than_it_should_is_stopped(host, blob):
    host.plan("blob.bin", Answer(body=PAYLOAD + b"x" * 10_000, declare_length=False))
    with pytest.raises(FetchError, match="sent more than the 50,000 bytes"):
        registry.fetch_model("blob")
    assert files_in(blob) == {"last-fetch-error.txt"}
    assert_fetch_now_works(blob)


def test_wrong_bytes_of_the_right_size_fail_the_hash_and_are_not_kept(host, blob):
    damaged = bytearray(PAYLOAD)
    damaged[123] ^= 0xFF
    host.plan("blob.bin", Answer(body=bytes(damaged)))
    with pytest.raises(FetchError, match="sha256 .* does not match"):
        registry.fetch_model("blob")
    assert files_in(blob) == {"last-fetch-error.txt"}
    assert_fetch_now_works(blob)


def test_missing_file_is_a_clear_message_without_retries(host, blob):
    del host.files["blob.bin"]
    with pytest.raises(FetchError) as caught:
        registry.fetch_model("blob")
    message = str(caught.value)
    assert "blob (Blob)" in message and "answered 404 (not found)" in message
    assert host.url("blob.bin") in message and "python -m facegen fetch blob --from PATH" in message
    assert len(host.requests) == 1


def test_server_errors_are_retried_until_the_host_recovers(host, blob):
    host.plan("blob.bin", Answer(status=500), Answer(status=503))
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
    assert len(host.requests) == 3


def test_host_failing_every_attempt_says_how_often_it_tried(host, blob):
    host.plan("blob.bin", *[Answer(status=500)] * (hub.DOWNLOAD_RETRIES + 1))
    with pytest.raises(FetchError, match=r"answered HTTP 500 \(after 4 attempts\)"):
        registry.fetch_model("blob")
    assert_fetch_now_works(blob)


def test_slow_host_times_out_with_a_clear_message(host, blob, monkeypatch):
    monkeypatch.setattr(hub, "DOWNLOAD_TIMEOUT_S", 0.2)
    monkeypatch.setattr(hub, "DOWNLOAD_RETRIES", 1)
    host.plan("blob.bin", Answer(delay_s=1.0), Answer(delay_s=1.0))
    with pytest.raises(FetchError, match=r"no answer from the host for 0.2 s \(after 2 attempts\)"):
        registry.fetch_model("blob")
    assert "blob.bin" not in files_in(blob)
    assert_fetch_now_works(blob)


def test_web_page_instead_of_the_file_is_refused(host, blob):
    host.plan("blob.bin", Answer(body=b"<html>Confirm download</html>", content_type="text/html; charset=utf-8"))
    with pytest.raises(FetchError, match="answered with a web page instead of the file"):
        registry.fetch_model("blob")
    assert_fetch_now_works(blob)


def test_interrupted_download_leaves_only_a_partial_and_the_next_fetch_resumes(host, blob, monkeypatch, capsys):
    monkeypatch.setattr(hub, "DOWNLOAD_RETRIES", 0)
    host.plan("blob.bin", Answer(send_bytes=CUT))
    with pytest.raises(FetchError, match="the connection closed after"):
        registry.fetch_model("blob")
    assert files_in(blob) == {"blob.bin.partial", "blob.bin.partial.url", "last-fetch-error.txt"}
    assert cli_main(["models"]) == 0
    listing = capsys.readouterr().out
    assert any(line.split()[:2] == ["blob", "failed"] for line in listing.splitlines()), listing
    assert "licence: test only" in listing
    assert_fetch_now_works(blob)
    assert host.ranges_asked("blob.bin")[-1] is not None, "the second fetch resumes, it does not restart"


def test_partial_from_one_host_is_never_continued_with_another(host, tmp_path, monkeypatch):
    monkeypatch.setattr(hub, "DOWNLOAD_RETRIES", 0)
    host.serve("first.bin", PAYLOAD)
    host.serve("second.bin", PAYLOAD)
    host.plan("first.bin", Answer(send_bytes=CUT))
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "blob": {
                "title": "Blob",
                "filename": "blob.bin",
                "sha256": PAYLOAD_SHA256,
                "sources": [{"kind": "url", "url": host.url(name)} for name in ("first.bin", "second.bin")],
            }
        },
    )
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
    assert host.ranges_asked("second.bin") == [None]


def test_progress_reaches_the_full_size(host, blob):
    reports = []
    registry.fetch_model("blob", lambda done, total: reports.append((done, total)))
    assert reports[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert [done for done, _ in reports] == sorted(done for done, _ in reports)


def test_cli_fetch_shows_a_terminal_progress_bar(host, blob, capsys, monkeypatch):
    # redraw on every update (tqdm otherwise redraws at most every 0.1 s, longer than this whole download)
    monkeypatch.setattr(progress, "tqdm", functools.partial(progress.tqdm, mininterval=0))
    assert cli_main(["fetch", "blob"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"blob: {blob / 'blob.bin'}"
    assert "blob:  49%|" in captured.err and "/48.8k [" in captured.err, captured.err


def tutorial_dcgan_file(path, generator_channels: int):
    """A DCGAN tutorial checkpoint of the catalog defaults' shape (z 10, 32 px); its size grows with its channels."""
    torch.manual_seed(0)
    config = DCGANConfig(z_dim=10, generator_channels=generator_channels, resolution=32)
    torch.save({"netG_state_dict": DCGANGenerator(config).state_dict()}, path)
    return path


def test_file_placed_by_hand_may_be_any_file_a_source_serves(tmp_path, monkeypatch):
    condensed = tutorial_dcgan_file(tmp_path / "condensed.pkl", generator_channels=4)
    full = tutorial_dcgan_file(tmp_path / "full.pkl", generator_channels=8)
    sizes = condensed.stat().st_size, full.stat().st_size
    use_catalog(
        tmp_path,
        monkeypatch,
        {
            "two-files": {
                "title": "Two files",
                "filename": "net.pkl",
                "sources": [
                    {"kind": "url", "url": "http://127.0.0.1:9/condensed.pkl", "size_bytes": sizes[0]},
                    {"kind": "url", "url": "http://127.0.0.1:9/full.pkl", "size_bytes": sizes[1]},
                ],
            }
        },
    )
    installed = registry.install_from_file("two-files", full)
    assert installed.read_bytes() == full.read_bytes() and registry.hub.recorded_sha256(installed) == sha256_of(full)
    wrong = tutorial_dcgan_file(tmp_path / "wrong.pkl", generator_channels=6)
    expected = f"has {wrong.stat().st_size:,} bytes .* expected {sizes[0]:,} bytes or {sizes[1]:,} bytes"
    with pytest.raises(FetchError, match=expected):
        registry.install_from_file("two-files", wrong)
    assert installed.read_bytes() == full.read_bytes()


# -- the Hugging Face Hub: its own cache, its offline switch, a pinned revision -------------------------------

REPO_ID = "someone/face-nets"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def build_hub_cache(root, files: dict[str, bytes], revision_ref: str = "main"):
    """The layout huggingface_hub keeps: blobs by hash, snapshots/<commit>/ links, refs/<branch> -> commit."""
    repo = root / f"models--{REPO_ID.replace('/', '--')}"
    for name, data in files.items():
        blob_path = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob_path.parent.mkdir(parents=True, exist_ok=True)
        blob_path.write_bytes(data)
        link = repo / "snapshots" / COMMIT / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob_path, link.parent))
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / revision_ref).write_text(COMMIT)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    root = tmp_path / "hf-cache"
    root.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def hub_model(tmp_path, monkeypatch, revision: str, fallback_url: str | None = None) -> None:
    sources = [{"kind": "huggingface", "repo_id": REPO_ID, "filename": "blob.bin", "revision": revision}]
    if fallback_url:
        sources.append({"kind": "url", "url": fallback_url})
    use_catalog(
        tmp_path,
        monkeypatch,
        {"blob": {"title": "Blob", "filename": "blob.bin", "sha256": PAYLOAD_SHA256, "sources": sources}},
    )


@pytest.mark.parametrize("revision", ["main", COMMIT], ids=["branch", "pinned-commit"])
def test_hub_source_is_served_from_the_local_hub_cache_offline(tmp_path, monkeypatch, offline_hub, revision):
    build_hub_cache(offline_hub, {"blob.bin": PAYLOAD})
    hub_model(tmp_path, monkeypatch, revision)
    path = registry.fetch_model("blob")
    assert sha256_of(path) == PAYLOAD_SHA256 and hub.recorded_sha256(path) == PAYLOAD_SHA256
    assert (offline_hub / f"models--{REPO_ID.replace('/', '--')}" / "blobs" / PAYLOAD_SHA256).exists()


def test_hub_file_with_other_bytes_is_refused(tmp_path, monkeypatch, offline_hub):
    build_hub_cache(offline_hub, {"blob.bin": PAYLOAD[::-1]})
    hub_model(tmp_path, monkeypatch, "main")
    with pytest.raises(FetchError, match="does not match"):
        registry.fetch_model("blob")
    assert not registry.cached_path(registry.catalog_entry("blob")).exists()


def test_offline_and_not_in_the_hub_cache_says_how_to_place_the_file(tmp_path, monkeypatch, offline_hub):
    hub_model(tmp_path, monkeypatch, "main")
    with pytest.raises(FetchError) as caught:
        registry.fetch_model("blob")
    message = str(caught.value)
    assert "Could not fetch blob (Blob)" in message and f"huggingface.co/{REPO_ID}" in message
    assert "HF_HUB_OFFLINE is set" in message and "python -m facegen fetch blob --from PATH" in message


def test_url_source_stands_in_when_the_hub_mirror_is_not_cached(host, tmp_path, monkeypatch, offline_hub):
    host.serve("blob.bin", PAYLOAD)
    hub_model(tmp_path, monkeypatch, "main", fallback_url=host.url("blob.bin"))
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256


def test_hub_downloads_report_progress_without_drawing_a_second_bar(capsys):
    """hf_hub_download draws through the tqdm class it is given: facegen's reports bytes to the caller's bar."""
    reports = []
    bar_class = hub._hub_progress_class(lambda done, total: reports.append((done, total)))
    bar = bar_class(total=100, initial=10, desc="blob.bin")
    bar.update(30)
    bar.update(60)
    bar.close()
    assert reports == [(40, 100), (100, 100)]
    assert capsys.readouterr().err == ""


# -- a machine without a network: one plain sentence, at once ------------------------------------------------


@pytest.fixture
def no_name_server(monkeypatch):
    """Every host name fails to resolve, as on a machine that is offline; loopback still answers."""
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if host in ("127.0.0.1", "localhost"):
            return real_getaddrinfo(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    import huggingface_hub.constants

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read once, when first imported


def test_offline_fetch_says_so_in_one_line_at_once(tmp_path, monkeypatch, no_name_server, capsys):
    monkeypatch.setattr(hub, "RETRY_PAUSE_S", 8.0)  # a retry would show in the time taken
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    hub_model(tmp_path, monkeypatch, "main", fallback_url="https://downloads.example/blob.bin")
    started = time.monotonic()

    assert cli_main(["fetch", "blob"]) == 2

    assert time.monotonic() - started < 5
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: Could not fetch blob: this machine is offline")
    assert "Retrying" not in captured.err + captured.out and "NameResolutionError" not in lines[0]
    assert registry.model_status(registry.catalog_entry("blob")).state == "downloadable"


def test_offline_machine_still_loads_a_hub_file_it_has_cached(tmp_path, monkeypatch, no_name_server):
    root = tmp_path / "hf-cache"
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    build_hub_cache(root, {"blob.bin": PAYLOAD})
    hub_model(tmp_path, monkeypatch, "main")
    assert sha256_of(registry.fetch_model("blob")) == PAYLOAD_SHA256
