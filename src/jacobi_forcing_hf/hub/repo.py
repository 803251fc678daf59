"""What every push shares: checking the token and the repo id up front, and uploading in one commit.

Every push in this package checks its inputs locally first (these checks, plus the dataset or checkpoint
checks of its own module), then creates the repo if needed and uploads everything in a single
``create_commit``. A commit is atomic on the Hub: either all files land or none does, so a failed push never
leaves a half-updated repo that looks complete. The commit names the revision it was built on
(``parent_commit``), so a push that raced with another commit fails instead of silently overwriting it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.utils import HFValidationError, validate_repo_id


class HubPushError(ValueError):
    """A push was refused before anything was uploaded; the message says what is wrong and how to fix it."""


def resolve_token(token: str | None) -> str:
    """The token to push with: ``token`` if given, else the one of the logged-in user; refuse when there is none."""
    resolved = token or get_token()
    if not resolved:
        raise HubPushError(
            "No Hugging Face token found, and pushing needs one with write access. Log in with "
            "`hf auth login` (or `huggingface_hub.login()` in Python), set the HF_TOKEN environment variable, "
            "or pass token=... . Create a token at https://huggingface.co/settings/tokens."
        )
    return resolved


def check_repo_id(repo_id: object) -> str:
    """Refuse a malformed ``repo_id`` with a message that shows the expected form."""
    if not isinstance(repo_id, str) or not repo_id:
        raise HubPushError(f"repo_id must be a non-empty string like 'your-name/your-repo', got {repo_id!r}.")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubPushError(
            f"repo_id {repo_id!r} is not a valid Hub repo id: expected 'name' or 'namespace/name' made of "
            f"letters, digits, '-', '_' and '.', at most 96 characters per part. ({error})"
        ) from None
    return repo_id


@dataclasses.dataclass(frozen=True)
class RepoHead:
    """A repo as it stood when the push began: its full id, the commit we build on, and its files."""

    repo_id: str
    repo_type: str
    commit: str
    files: tuple[str, ...]


def open_repo(api: HfApi, repo_id: str, repo_type: str, *, private: bool | None) -> RepoHead:
    """Create the repo if it does not exist yet and read the revision the push will build on."""
    repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
    full_id = repo_url.repo_id
    head = api.repo_info(full_id, repo_type=repo_type).sha
    files = api.list_repo_files(full_id, repo_type=repo_type, revision=head)
    return RepoHead(repo_id=full_id, repo_type=repo_type, commit=head, files=tuple(files))


def commit_in_one_go(
    api: HfApi,
    head: RepoHead,
    files: Mapping[str, Path | bytes],
    *,
    delete: Iterable[str] = (),
    commit_message: str,
    commit_description: str | None = None,
) -> CommitInfo:
    """Upload ``files`` (path in repo -> local file or bytes) and delete ``delete`` in one commit on ``head``."""
    operations: list[CommitOperationAdd | CommitOperationDelete] = [
        CommitOperationAdd(path_in_repo=path, path_or_fileobj=str(source) if isinstance(source, Path) else source)
        for path, source in sorted(files.items())
    ]
    operations += [CommitOperationDelete(path_in_repo=path) for path in sorted(set(delete) - set(files))]
    return api.create_commit(
        head.repo_id,
        operations=operations,
        commit_message=commit_message,
        commit_description=commit_description,
        repo_type=head.repo_type,
        parent_commit=head.commit,
    )
