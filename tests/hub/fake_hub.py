"""An in-memory HuggingFace Hub that speaks the Hub's HTTP protocol, for offline tests of real client code.

``huggingface_hub`` and ``datasets`` talk to the Hub over HTTP only, so a server that answers the same
routes with the same payloads lets their real code run end to end: ``create_repo``, ``create_commit``
(preupload, the LFS batch API, PUT to storage, the NDJSON commit), ``hf_hub_download`` (HEAD + GET on
``resolve``, LFS files redirected to storage), ``HfFileSystem`` (``tree``, ``paths-info``, ranged reads),
``Dataset.push_to_hub``, ``load_dataset`` and ``from_pretrained``.

Two ways to plug it in:

* in-process: ``huggingface_hub.set_client_factory(hub.client_factory)`` routes every request of the
  shared HTTP client through :meth:`FakeHub.handle` (an ``httpx2.MockTransport``); nothing leaves the process;
* served: :func:`serve` runs the same handler on 127.0.0.1 (one port for the Hub, one for LFS storage) for
  a subprocess that gets ``HF_ENDPOINT=http://127.0.0.1:<port>``. The server stops when its ``with`` block
  ends or, at the latest, after ``max_lifetime_s``.

Repos keep a full commit history (immutable snapshots) and share a content-addressed LFS store;
commits check ``parentCommit`` (412) and reject LFS pointers whose object was never uploaded (422), like
the Hub. The client must run with ``HF_HUB_DISABLE_XET``: the double offers only the ``basic`` LFS
transfer, not Xet storage.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime as dt
import fnmatch
import hashlib
import http.server
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx2
import yaml

DEFAULT_TOKEN = "hf_fake_hub_token"
DEFAULT_USER = "tester"
IN_PROCESS_STORAGE_ORIGIN = "https://cdn-lfs.fake-hub.test"
REGULAR_FILE_MAX_SIZE = 10 * 1024 * 1024  # larger files must go through LFS, as on the Hub
_LFS_STORAGE_PREFIX = "/lfs-objects/"
_PREFIX_BY_TYPE = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_TYPE_BY_PLURAL = {"models": "model", "datasets": "dataset", "spaces": "space"}
_REPO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

# The .gitattributes the Hub writes into every new repo (abridged to the patterns that matter for our files).
INITIAL_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.gguf", "*.gz", "*.h5", "*.joblib", "*.model",
        "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb", "*.pickle", "*.pkl", "*.pt",
        "*.pth", "*.safetensors", "*.tar", "*.tflite", "*.zip", "*.zst", "*tfevents*",
    )
)  # fmt: skip


def git_blob_sha1(content: bytes) -> str:
    """The git object id of a regular file (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """The git-lfs pointer file that git stores in place of an LFS object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """One file in a commit: inline bytes for a regular file, a sha256 for an LFS file."""

    size: int
    content: bytes | None = None
    lfs_oid: str | None = None

    @property
    def blob_id(self) -> str:
        if self.lfs_oid is None:
            return git_blob_sha1(self.content or b"")
        return git_blob_sha1(lfs_pointer(self.lfs_oid, self.size))

    @property
    def etag(self) -> str:
        """What the Hub sends as ETag: the git sha1 for regular files, the sha256 for LFS files."""
        return self.lfs_oid or self.blob_id


@dataclasses.dataclass(frozen=True)
class Commit:
    oid: str
    parent: str | None
    title: str
    description: str
    date: str
    files: dict[str, StoredFile]


@dataclasses.dataclass
class Repo:
    repo_id: str
    repo_type: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    branches: dict[str, str] = dataclasses.field(default_factory=dict)

    def head(self, revision: str) -> Commit | None:
        """The commit a branch name or a (full) commit id points to."""
        oid = self.branches.get(revision, revision)
        return self.commits.get(oid)


class HubError(Exception):
    """An error answered with the Hub's status code and ``X-Error-Code``/``X-Error-Message`` headers."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx2.Response:
    return httpx2.Response(status, json=payload, headers=headers)


class FakeHub:
    """The Hub's state (repos, commits, LFS objects) and the HTTP handler that serves it.

    ``requests`` records ``(method, path)`` of every request, so tests can assert on the protocol itself (for
    example, that a push made exactly one commit). ``fail_commits_with`` set to an HTTP status makes every
    commit fail with it (as a Hub outage or a rejected push would), after the uploads that precede it.
    """

    def __init__(self, *, token: str = DEFAULT_TOKEN, user: str = DEFAULT_USER):
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.storage_origin = IN_PROCESS_STORAGE_ORIGIN
        self.fail_commits_with: int | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ plugging in
    def client_factory(self) -> httpx2.Client:
        """For ``huggingface_hub.set_client_factory``: a client whose transport is this Hub."""
        return httpx2.Client(transport=httpx2.MockTransport(self.handle), follow_redirects=True, timeout=None)

    # ------------------------------------------------------------------ inspection helpers for tests
    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def file_content(self, repo_id: str, path: str, repo_type: str = "model", revision: str = "main") -> bytes:
        stored = self.repo(repo_id, repo_type).head(revision).files[path]
        return stored.content if stored.lfs_oid is None else self.lfs_objects[stored.lfs_oid]

    def commit_count(self, repo_id: str, repo_type: str = "model") -> int:
        return len(self.repo(repo_id, repo_type).commits)

    # ------------------------------------------------------------------ HTTP entry point
    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one HTTP request as the Hub would."""
        path = request.url.raw_path.decode().split("?", 1)[0]
        self.requests.append((request.method, path))
        try:
            with self._lock:
                return self._route(request, path)
        except HubError as error:
            headers = {"X-Error-Message": error.message}
            if error.code:
                headers["X-Error-Code"] = error.code
            return _json_response({"error": error.message}, error.status, headers)

    def _route(self, request: httpx2.Request, path: str) -> httpx2.Response:
        method = request.method
        if path.startswith(_LFS_STORAGE_PREFIX):
            oid = path[len(_LFS_STORAGE_PREFIX) :]
            if method == "PUT":
                return self._store_lfs_object(oid, request.content)
            return self._serve_bytes(request, self._lfs_object(oid), {})
        if path == "/api/repos/create" and method == "POST":
            return self._create_repo(request)
        if path == "/api/validate-yaml" and method == "POST":
            return self._validate_yaml(request)
        if path == "/api/whoami-v2":
            self._require_token(request)
            return _json_response({"type": "user", "name": self.user, "orgs": [], "auth": {"type": "access_token"}})
        if match := re.fullmatch(r"/api/(models|datasets|spaces)/([^/]+/[^/]+)(/.*)?", path):
            plural, repo_id, rest = match.groups()
            return self._repo_api(request, _TYPE_BY_PLURAL[plural], repo_id, rest or "")
        if match := re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)", path):
            plural, repo_id, action = match.groups()
            repo = self._get_repo(_TYPE_BY_PLURAL.get(f"{plural}", "model") if plural else "model", repo_id)
            self._require_token(request)
            if action == "batch":
                return self._lfs_batch(request, repo)
            return self._lfs_verify(request)
        if match := re.fullmatch(r"/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            plural, repo_id, revision, file_path = match.groups()
            repo_type = _TYPE_BY_PLURAL[plural] if plural else "model"
            return self._resolve(request, repo_type, repo_id, unquote(revision), unquote(file_path))
        raise HubError(404, f"Fake Hub has no route for {method} {path}")

    # ------------------------------------------------------------------ auth and lookups
    def _require_token(self, request: httpx2.Request) -> None:
        authorization = request.headers.get("authorization", "")
        if authorization != f"Bearer {self.token}":
            raise HubError(401, "Invalid credentials in Authorization header")

    def _get_repo(self, repo_type: str, repo_id: str, request: httpx2.Request | None = None) -> Repo:
        repo = self.repos.get((repo_type, repo_id))
        if repo is None:
            raise HubError(404, "Repository not found", "RepoNotFound")
        if repo.private and request is not None:
            try:
                self._require_token(request)
            except HubError:
                raise HubError(404, "Repository not found", "RepoNotFound") from None
        return repo

    def _get_commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.head(revision)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _lfs_object(self, oid: str) -> bytes:
        if oid not in self.lfs_objects:
            raise HubError(404, f"LFS object {oid} not found")
        return self.lfs_objects[oid]

    def _origin(self, request: httpx2.Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc.decode()}"

    def _repo_url(self, request: httpx2.Request, repo: Repo) -> str:
        return f"{self._origin(request)}/{_PREFIX_BY_TYPE[repo.repo_type]}{repo.repo_id}"

    # ------------------------------------------------------------------ repos
    def _create_repo(self, request: httpx2.Request) -> httpx2.Response:
        self._require_token(request)
        payload = json.loads(request.content)
        name, namespace = payload.get("name"), payload.get("organization") or self.user
        repo_type = payload.get("type") or "model"
        if repo_type not in _PREFIX_BY_TYPE:
            raise HubError(400, f"Invalid repo type {repo_type!r}")
        if not name or not _REPO_NAME.match(name) or ".." in name or name.endswith((".git", ".")):
            raise HubError(400, f"Invalid repo name {name!r}")
        if namespace != self.user:
            raise HubError(403, f"You don't have the rights to create a repo under the namespace {namespace!r}")
        repo_id = f"{namespace}/{name}"
        if (repo_type, repo_id) in self.repos:
            repo = self.repos[(repo_type, repo_id)]
            return _json_response({"error": "You already created this repo", "url": self._repo_url(request, repo)}, 409)
        private = payload.get("private") or payload.get("visibility") == "private"
        repo = Repo(repo_id=repo_id, repo_type=repo_type, private=bool(private), created_at=_now())
        files = {".gitattributes": StoredFile(len(INITIAL_GITATTRIBUTES), INITIAL_GITATTRIBUTES.encode())}
        self._add_commit(repo, "main", None, "initial commit", "", files)
        self.repos[(repo_type, repo_id)] = repo
        return _json_response({"url": self._repo_url(request, repo), "name": repo_id, "id": uuid.uuid4().hex})

    def _add_commit(
        self, repo: Repo, branch: str, parent: str | None, title: str, description: str, files: dict
    ) -> Commit:
        oid = hashlib.sha1(f"{parent}\n{title}\n{uuid.uuid4()}".encode()).hexdigest()
        commit = Commit(oid, parent, title, description, _now(), files)
        repo.commits[oid] = commit
        repo.branches[branch] = oid
        return commit

    def _repo_api(self, request: httpx2.Request, repo_type: str, repo_id: str, rest: str) -> httpx2.Response:
        repo = self._get_repo(repo_type, repo_id, request)
        method = request.method
        if rest == "" or rest.startswith("/revision/"):
            revision = unquote(rest[len("/revision/") :]) if rest else "main"
            return self._repo_info(request, repo, revision)
        action, _, remainder = rest[1:].partition("/")
        revision, _, sub_path = remainder.partition("/")
        revision = unquote(revision)
        if action == "preupload" and method == "POST":
            self._require_token(request)
            return self._preupload(request, repo, revision)
        if action == "commit" and method == "POST":
            self._require_token(request)
            return self._commit(request, repo, revision)
        if action == "tree" and method == "GET":
            return self._tree(request, repo, revision, unquote(sub_path))
        if action == "paths-info" and method == "POST":
            return self._paths_info(request, repo, revision)
        raise HubError(404, f"Fake Hub has no repo route {method} {rest}")

    def _repo_info(self, request: httpx2.Request, repo: Repo, revision: str) -> httpx2.Response:
        commit = self._get_commit(repo, revision)
        card_data = None
        if "README.md" in commit.files:
            card_data = _front_matter(self._read(commit.files["README.md"]).decode())
        author, _ = repo.repo_id.split("/")
        payload = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": author,
            "sha": commit.oid,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": list((card_data or {}).get("tags") or []),
            "cardData": card_data,
            "siblings": [self._sibling(path, stored) for path, stored in sorted(commit.files.items())],
        }
        if repo.repo_type == "model":
            payload["modelId"] = repo.repo_id
        return _json_response(payload)

    @staticmethod
    def _sibling(path: str, stored: StoredFile) -> dict[str, Any]:
        sibling: dict[str, Any] = {"rfilename": path, "size": stored.size, "blobId": stored.blob_id}
        if stored.lfs_oid:
            pointer_size = len(lfs_pointer(stored.lfs_oid, stored.size))
            sibling["lfs"] = {"sha256": stored.lfs_oid, "size": stored.size, "pointerSize": pointer_size}
        return sibling

    # ------------------------------------------------------------------ cards
    def _validate_yaml(self, request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        try:
            metadata = _front_matter(payload["content"])
        except yaml.YAMLError as error:
            return _json_response({"errors": [{"message": f"Invalid YAML: {error}"}], "warnings": []}, 400)
        errors = _metadata_errors(metadata or {}, payload.get("repoType") or "model")
        warnings = [] if metadata else [{"message": "empty or missing yaml metadata in repo card"}]
        status = 400 if errors else 200
        return _json_response({"errors": [{"message": message} for message in errors], "warnings": warnings}, status)

    # ------------------------------------------------------------------ upload: preupload, LFS, commit
    def _preupload(self, request: httpx2.Request, repo: Repo, revision: str) -> httpx2.Response:
        commit = self._get_commit(repo, revision)
        lfs_patterns = _lfs_patterns(self._read(commit.files[".gitattributes"]).decode())
        answers = []
        for entry in json.loads(request.content)["files"]:
            sample = base64.b64decode(entry["sample"])
            is_lfs = (
                entry["size"] > REGULAR_FILE_MAX_SIZE
                or b"\0" in sample
                or any(_matches(entry["path"], pattern) for pattern in lfs_patterns)
            )
            existing = commit.files.get(entry["path"])
            answers.append(
                {
                    "path": entry["path"],
                    "uploadMode": "lfs" if is_lfs else "regular",
                    "shouldIgnore": False,
                    "oid": existing.etag if existing else None,
                }
            )
        return _json_response({"files": answers, "commitOid": commit.oid})

    def _lfs_batch(self, request: httpx2.Request, repo: Repo) -> httpx2.Response:
        payload = json.loads(request.content)
        if payload.get("operation") != "upload" or "basic" not in payload.get("transfers", ["basic"]):
            raise HubError(400, "The fake Hub only supports LFS uploads with the basic transfer")
        objects = []
        for item in payload["objects"]:
            entry = {"oid": item["oid"], "size": item["size"]}
            if item["oid"] not in self.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.storage_origin}{_LFS_STORAGE_PREFIX}{item['oid']}"},
                    "verify": {
                        "href": f"{self._repo_url(request, repo)}.git/info/lfs/objects/verify",
                        "header": {"Authorization": request.headers.get("authorization", "")},
                    },
                }
            objects.append(entry)
        body = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
        return _json_response(body, headers={"Content-Type": "application/vnd.git-lfs+json"})

    def _store_lfs_object(self, oid: str, content: bytes) -> httpx2.Response:
        if hashlib.sha256(content).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not hash to {oid}")
        self.lfs_objects[oid] = content
        return httpx2.Response(200, headers={"ETag": f'"{hashlib.md5(content).hexdigest()}"'})

    def _lfs_verify(self, request: httpx2.Request) -> httpx2.Response:
        payload = json.loads(request.content)
        stored = self.lfs_objects.get(payload["oid"])
        if stored is None or len(stored) != payload["size"]:
            raise HubError(404, f"LFS object {payload['oid']} was not uploaded")
        return _json_response({"message": "Verified"})

    def _commit(self, request: httpx2.Request, repo: Repo, revision: str) -> httpx2.Response:
        if self.fail_commits_with is not None:
            raise HubError(self.fail_commits_with, "The commit failed (injected by the test)")
        if request.url.params.get("create_pr"):
            raise HubError(400, "The fake Hub does not implement pull requests")
        if revision not in repo.branches:
            raise HubError(404, f"Invalid rev id: {revision} (commits go to a branch)", "RevisionNotFound")
        lines = [json.loads(line) for line in request.content.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "The commit payload must start with a header line")
        header = lines[0]["value"]
        head = self._get_commit(repo, revision)
        if header.get("parentCommit") and header["parentCommit"] != head.oid:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        files = dict(head.files)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                content = base64.b64decode(value["content"])
                files[value["path"]] = StoredFile(len(content), content)
            elif key == "lfsFile":
                oid = value["oid"]
                if oid not in self.lfs_objects:
                    raise HubError(422, f"Your push was rejected: LFS object {oid} for {value['path']} is missing")
                files[value["path"]] = StoredFile(len(self.lfs_objects[oid]), lfs_oid=oid)
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del files[value["path"]]
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: stored for path, stored in files.items() if not path.startswith(prefix)}
            else:
                raise HubError(400, f"Unknown commit operation {key!r}")
        commit = self._add_commit(repo, revision, head.oid, header["summary"], header.get("description", ""), files)
        return _json_response(
            {
                "success": True,
                "commitOid": commit.oid,
                "commitUrl": f"{self._repo_url(request, repo)}/commit/{commit.oid}",
                "pullRequestUrl": None,
            }
        )

    # ------------------------------------------------------------------ download and listing
    def _read(self, stored: StoredFile) -> bytes:
        return stored.content if stored.lfs_oid is None else self._lfs_object(stored.lfs_oid)

    def _resolve(
        self, request: httpx2.Request, repo_type: str, repo_id: str, revision: str, path: str
    ) -> httpx2.Response:
        repo = self._get_repo(repo_type, repo_id, request)
        commit = self._get_commit(repo, revision)
        stored = commit.files.get(path)
        if stored is None:
            raise HubError(404, "Entry not found", "EntryNotFound")
        headers = {"X-Repo-Commit": commit.oid, "ETag": f'"{stored.blob_id}"'}
        if stored.lfs_oid is not None:
            # The Hub redirects LFS files to storage and puts their metadata in X-Linked-* headers.
            headers.update(
                {
                    "X-Linked-Etag": f'"{stored.lfs_oid}"',
                    "X-Linked-Size": str(stored.size),
                    "Location": f"{self.storage_origin}{_LFS_STORAGE_PREFIX}{stored.lfs_oid}",
                }
            )
            return httpx2.Response(302, headers=headers)
        return self._serve_bytes(request, stored.content or b"", headers)

    @staticmethod
    def _serve_bytes(request: httpx2.Request, content: bytes, headers: dict[str, str]) -> httpx2.Response:
        headers = {**headers, "Accept-Ranges": "bytes"}
        status = 200
        if match := re.fullmatch(r"bytes=(\d*)-(\d*)", request.headers.get("range", "")):
            first, last = match.groups()
            if first == "":
                start, end = max(len(content) - int(last), 0), len(content)
            else:
                start, end = int(first), min(int(last) + 1 if last else len(content), len(content))
            if start >= len(content) and len(content) > 0:
                return httpx2.Response(416, headers={"Content-Range": f"bytes */{len(content)}"})
            headers["Content-Range"] = f"bytes {start}-{max(end - 1, start)}/{len(content)}"
            content, status = content[start:end], 206
        headers["Content-Length"] = str(len(content))
        if request.method == "HEAD":
            return httpx2.Response(status, headers=headers)
        return httpx2.Response(status, headers=headers, content=content)

    def _entry(self, path: str, commit: Commit) -> dict[str, Any] | None:
        stored = commit.files.get(path)
        if stored is not None:
            entry: dict[str, Any] = {"type": "file", "oid": stored.blob_id, "size": stored.size, "path": path}
            if stored.lfs_oid:
                pointer_size = len(lfs_pointer(stored.lfs_oid, stored.size))
                entry["lfs"] = {"oid": stored.lfs_oid, "size": stored.size, "pointerSize": pointer_size}
            return entry
        prefix = path.rstrip("/") + "/"
        children = sorted(name for name in commit.files if name.startswith(prefix))
        if not children:
            return None
        tree_id = hashlib.sha1("\n".join(f"{name}:{commit.files[name].blob_id}" for name in children).encode())
        return {"type": "directory", "oid": tree_id.hexdigest(), "size": 0, "path": path.rstrip("/")}

    def _tree(self, request: httpx2.Request, repo: Repo, revision: str, folder: str) -> httpx2.Response:
        commit = self._get_commit(repo, revision)
        recursive = request.url.params.get("recursive", "false").lower() in ("1", "true")
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        if prefix and self._entry(prefix, commit) is None:
            raise HubError(404, f"{folder} does not exist on {revision}", "EntryNotFound")
        paths: set[str] = set()
        for name in commit.files:
            if not name.startswith(prefix):
                continue
            parts = name[len(prefix) :].split("/")
            depths = range(1, len(parts) + 1) if recursive else [1]
            paths.update(prefix + "/".join(parts[:depth]) for depth in depths)
        entries = [self._entry(path, commit) for path in sorted(paths)]
        return _json_response(sorted(entries, key=lambda entry: (entry["type"] != "directory", entry["path"])))

    def _paths_info(self, request: httpx2.Request, repo: Repo, revision: str) -> httpx2.Response:
        commit = self._get_commit(repo, revision)
        if request.headers.get("content-type", "").startswith("application/json"):
            paths = json.loads(request.content)["paths"]
        else:
            paths = parse_qs(request.content.decode()).get("paths", [])
        entries = [self._entry(path.strip("/"), commit) for path in paths]
        return _json_response([entry for entry in entries if entry is not None])


# ---------------------------------------------------------------------- card metadata helpers
def _front_matter(content: str) -> dict[str, Any] | None:
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
    if not match:
        return None
    metadata = yaml.safe_load(match.group(1))
    if metadata is not None and not isinstance(metadata, dict):
        raise yaml.YAMLError("the metadata block must be a mapping")
    return metadata


def _metadata_errors(metadata: dict[str, Any], repo_type: str) -> list[str]:
    """The checks of the Hub's YAML validator that our cards exercise."""
    errors = []
    for key in ("tags", "datasets", "language"):
        value = metadata.get(key)
        if value is not None and not isinstance(value, (str, list)):
            errors.append(f'"{key}" must be a string or an array of strings')
    if "license" in metadata and not isinstance(metadata["license"], str):
        errors.append('"license" must be a string')
    if repo_type == "model" and "model-index" in metadata:
        model_index = metadata["model-index"]
        if not isinstance(model_index, list) or not all("name" in entry for entry in model_index):
            errors.append('"model-index" must be an array of objects with a "name"')
        else:
            for entry in model_index:
                for result in entry.get("results", []):
                    if "task" not in result or "type" not in result["task"]:
                        errors.append('"model-index[].results[].task.type" is required')
                    for metric in result.get("metrics", []):
                        if not {"type", "value"} <= set(metric):
                            errors.append('"model-index[].results[].metrics[]" need "type" and "value"')
    if repo_type == "dataset" and "configs" in metadata:
        for config in metadata["configs"]:
            if "config_name" not in config:
                errors.append('"configs[]" entries need a "config_name"')
    return errors


def _lfs_patterns(gitattributes: str) -> list[str]:
    return [line.split()[0] for line in gitattributes.splitlines() if "filter=lfs" in line and line.strip()]


def _matches(path: str, pattern: str) -> bool:
    return fnmatch.fnmatch(path if "/" in pattern else path.rsplit("/", 1)[-1], pattern)


# ---------------------------------------------------------------------- serving on 127.0.0.1
def _http_handler_class(handle: Callable[[httpx2.Request], httpx2.Response]) -> type:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            request = httpx2.Request(
                self.command,
                f"http://{host}{self.path}",
                headers=[(key, value) for key, value in self.headers.items() if key.lower() != "content-length"],
                content=body,
            )
            response = handle(request)
            response.read()
            self.send_response(response.status_code)
            for key, value in response.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            declared = response.headers.get("content-length")
            self.send_header(
                "Content-Length",
                declared if self.command == "HEAD" and declared else str(len(response.content)),
            )
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.content)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    return Handler


@contextlib.contextmanager
def serve(hub: FakeHub, *, max_lifetime_s: float = 300.0) -> Iterator[str]:
    """Serve ``hub`` on 127.0.0.1 and yield its endpoint URL; LFS storage gets a second port (another origin).

    The servers stop when the ``with`` block ends, and by themselves after ``max_lifetime_s`` at the latest.
    """
    handler = _http_handler_class(hub.handle)
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) for _ in range(2)]
    hub_server, storage_server = servers
    previous_storage_origin = hub.storage_origin
    hub.storage_origin = f"http://127.0.0.1:{storage_server.server_address[1]}"
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in servers]
    for thread in threads:
        thread.start()
    deadline = threading.Timer(max_lifetime_s, lambda: [server.shutdown() for server in servers])
    deadline.daemon = True
    deadline.start()
    try:
        yield f"http://127.0.0.1:{hub_server.server_address[1]}"
    finally:
        deadline.cancel()
        for server in servers:
            server.shutdown()
            server.server_close()
        hub.storage_origin = previous_storage_origin
