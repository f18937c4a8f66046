"""Hugging Face dataset repos (`hf:OWNER/NAME[@REV]`): only image, parquet and CelebA attribute files are fetched."""

from __future__ import annotations

import re
from pathlib import Path

from facegen.data.report import DatasetError
from facegen.hub import host_lookup_problem, hub_endpoint, hub_offline_switch
from facegen.data.sources import CELEBA_ATTRIBUTE_FILES, IMAGE_EXTENSIONS, FolderTree, Source, tree_source

HF_DOWNLOAD_PATTERNS = (
    *(f"*{ext}" for ext in IMAGE_EXTENSIONS),
    *(f"*{ext.upper()}" for ext in IMAGE_EXTENSIONS),
    "*.parquet",
    *CELEBA_ATTRIBUTE_FILES,
)


def hf_source(spec: str) -> Source:
    repo_id, _, revision = spec.partition("@")
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_id):
        raise DatasetError(f"'hf:{spec}' is not a dataset repo id: write hf:OWNER/NAME or hf:OWNER/NAME@REVISION.")
    folder = _download_hf_dataset(repo_id, revision or None)
    commit = folder.name if re.fullmatch(r"[0-9a-f]{40}", folder.name) else None
    label = f"hf:{repo_id}" + (f"@{commit[:8]}" if commit else f"@{revision}" if revision else "")
    resolved = tree_source(FolderTree(folder), label) if folder.is_dir() else None
    if resolved is None:
        raise DatasetError(
            f"{label} has no image files and no parquet files with an image column (only those are downloaded). "
            "Repos that pack images into archives need a manual download: fetch the archive and give its path."
        )
    return resolved


def _download_hf_dataset(repo_id: str, revision: str | None) -> Path:
    """The local snapshot of a dataset repo, downloaded (only images, parquet, CelebA attributes) when not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HFValidationError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    manual = (
        f"Or download the files yourself (`hf download {repo_id} --repo-type dataset --local-dir DIR`) and give DIR."
    )
    # huggingface_hub retries a failed name lookup for 23 s: an offline machine reads only its local cache
    lookup_problem = None if hub_offline_switch() else host_lookup_problem(hub_endpoint())
    try:
        folder = snapshot_download(
            repo_id=repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=list(HF_DOWNLOAD_PATTERNS),
            local_files_only=lookup_problem is not None,
        )
    except GatedRepoError:
        raise DatasetError(
            f"Dataset repo {repo_id} is gated: accept its terms on huggingface.co/datasets/{repo_id}, then set "
            f"HF_TOKEN to an access token of that account. {manual}"
        ) from None
    except RevisionNotFoundError:
        raise DatasetError(f"Dataset repo {repo_id} has no revision {revision!r}. Check the name after '@'.") from None
    except RepositoryNotFoundError:
        raise DatasetError(
            f"Dataset repo {repo_id} was not found on the Hugging Face Hub. Check the name; for a private repo set "
            f"HF_TOKEN to an access token that can read it. {manual}"
        ) from None
    except LocalEntryNotFoundError:
        if lookup_problem:
            raise DatasetError(
                f"Dataset repo {repo_id} is not in the local Hugging Face cache, and {lookup_problem}. Connect to the "
                f"internet and try again. {manual}"
            ) from None
        raise DatasetError(
            f"Dataset repo {repo_id} is not (completely) in the local Hugging Face cache and the Hub cannot be "
            "reached (offline, or HF_HUB_OFFLINE=1). Connect and run again (set HF_TOKEN for private or gated repos), "
            f"or copy a cache that holds it and point HF_HUB_CACHE at it. {manual}"
        ) from None
    except HFValidationError as error:
        raise DatasetError(f"'{repo_id}' is not a valid dataset repo id ({error}).") from None
    except OSError as error:
        raise DatasetError(
            f"Downloading dataset repo {repo_id} failed ({error}). Check the connection and retry. {manual}"
        ) from None
    return Path(folder)
