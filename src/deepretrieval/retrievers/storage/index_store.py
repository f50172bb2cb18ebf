"""Index folders that are published atomically and verified on load, for every index-backed retriever.

Layout of an index folder::

    index.json          the manifest: kind, settings, fingerprints, document count, and the name, size and
                        sha256 of every file of the published version; replaced with os.replace, never edited
    v<time>-<token>/    the published version's files (immutable once published)
    .lock               taken by builders, so two builds of one folder run one after the other

A build writes a fresh ``.build-*`` folder, renames it to a version folder, replaces ``index.json`` and
then deletes the older versions. A reader resolves ``index.json`` once and maps that version's files:
a rebuild never writes into files a reader has mapped (deleting a mapped file is safe on POSIX,
overwriting it is not: the reader dies of SIGBUS), and a builder killed at any moment leaves the previous
index in place. Loading checks what is cheap and catches damage that would crash or mislead: every
file's size, the checksum of every file up to ``CHECKSUM_ON_LOAD`` bytes (and of every file it reads
whole), array shapes, document counts, that every stored row id is in range, and each kind's value
invariants (BM25: every weight finite and within the bounds BM25 allows); ``verify=True`` (and
``deepretrieval index verify``) also checks the checksum of every larger file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Self, TypeVar

import numpy as np
from filelock import FileLock

from deepretrieval.files import write_json
from deepretrieval.retrievers.corpus import Corpus

FORMAT, FORMAT_VERSION = "deepretrieval-index", 1
MANIFEST = "index.json"
LOCK = ".lock"
BUILD_PREFIX = ".build-"
# Files of the layout before versioned folders (deepretrieval <= 0.1): in a folder that holds such an
# index, they are replaced by a rebuild (removed once the new version is published).
LEGACY_FILES = frozenset(
    {"deepretrieval_bm25.json", "bm25s", "manifest.json", "embeddings.npy", "ids.json"}
    | {"docs.jsonl", "docs.offsets.npy", "docs.ids.json", "docs.sha256"}
)
VERSION = re.compile(r"v\d{8}T\d{6}-[0-9a-f]{8}")  # a version folder's name
CHUNK = 1 << 20
RETRIES = 5
# Files up to this size are checked against their sha256 on every load: at ~800 MB/s (one core), at most
# ~20 ms a file; SciFact's whole BM25 index (12.6 MB) is under it. Larger files (a 600 MB score matrix)
# are checked by size and by their readers' value checks on load, byte for byte only with verify=True.
CHECKSUM_ON_LOAD = 16 << 20

T = TypeVar("T")
S = TypeVar("S")


class BadIndexError(ValueError):
    """An index folder that is missing, damaged or of another kind; the message says how to rebuild it."""


class IndexMismatchError(BadIndexError):
    """An intact index built from another corpus, or with other settings, than the caller asked for."""


def build_command(index_dir: Path, kind: str, corpus: str | None = None) -> str:
    """The command that builds an index of ``kind`` in ``index_dir``."""
    flag = "" if kind == "bm25" else f" --retriever {kind}"
    return f"`deepretrieval index build --corpus {corpus or 'CORPUS'} --out {index_dir}{flag}`"


def rebuild_hint(index_dir: Path, kind: str, corpus: str | None = None) -> str:
    return f"rebuild it with {build_command(index_dir, kind, corpus)}"


def has_index(index_dir: Path) -> bool:
    """Whether ``index_dir`` holds an index (possibly a damaged one, or one in the legacy layout)."""
    return (index_dir / MANIFEST).exists() or _legacy_index(index_dir)


def _legacy_index(folder: Path) -> bool:
    """Whether ``folder`` holds an index in the layout before versioned folders."""
    if (folder / "deepretrieval_bm25.json").is_file():
        return True
    try:
        return json.loads((folder / "manifest.json").read_bytes()).get("format") == "deepretrieval-dense"
    except (OSError, ValueError, AttributeError):
        return False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class IndexVersion:
    """One published version of an index folder: its manifest and its files, sizes already checked, and
    the checksums of those named in ``verified``."""

    root: Path
    folder: Path
    manifest: dict[str, Any]
    verified: frozenset[str] = frozenset()

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def documents(self) -> int:
        return self.manifest["corpus"]["documents"]

    @property
    def info(self) -> dict[str, Any]:
        """Facts about the build that are not settings (library versions, dimensions, ...)."""
        return self.manifest["info"]

    def fail(self, problem: str) -> BadIndexError:
        """The one-line error for damage found in this version, with the command that rebuilds it."""
        hint = rebuild_hint(self.root, self.kind, self.manifest["corpus"].get("source"))
        return BadIndexError(f"index {self.root} is damaged: {problem}; {hint}")

    def settings(self, settings_type: type[S]) -> S:
        """The recorded settings as ``settings_type`` (refused as damage if they no longer validate)."""
        try:
            return settings_type(**self.manifest["settings"])
        except ValueError as err:
            raise self.fail(f"recorded settings are invalid ({err})") from None

    def path(self, name: str) -> Path:
        if name not in self.manifest["files"]:
            raise self.fail(f"the manifest lists no {name}")
        return self.folder / name

    def read_bytes(self, name: str) -> bytes:
        """A small file read whole, checked against its recorded sha256 (unless loading already did)."""
        data = self.path(name).read_bytes()
        if (
            name not in self.verified
            and hashlib.sha256(data).hexdigest() != self.manifest["files"][name]["sha256"]
        ):
            raise self.fail(f"{name} does not match its checksum")
        return data

    def read_json(self, name: str) -> Any:
        return json.loads(self.read_bytes(name))

    def load_array(self, name: str, *, mmap_mode: str | None) -> np.ndarray:
        """A ``.npy`` array, memory-mapped when ``mmap_mode`` is given; a bad header is reported as damage."""
        try:
            return np.load(self.path(name), mmap_mode=mmap_mode, allow_pickle=False)
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError):
            raise self.fail(f"{name} is not a readable .npy array") from None


def _read_manifest(root: Path, raw: bytes, kind: str | None) -> dict[str, Any]:
    """The manifest ``raw`` of ``root``, checked complete and (unless ``kind`` is None) of ``kind``."""

    def refuse(problem: str) -> BadIndexError:
        return BadIndexError(f"index {root} is unusable: {problem}; {rebuild_hint(root, kind or 'bm25')}")

    try:
        manifest = json.loads(raw)
    except ValueError:
        raise refuse(f"{MANIFEST} is not valid JSON ({len(raw)} bytes)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise refuse(f"{MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise refuse(
            f"format version {manifest.get('format_version')!r}, this deepretrieval reads {FORMAT_VERSION}"
        )
    try:
        files = manifest["files"]
        ok = (
            isinstance(manifest["version"], str)
            and VERSION.fullmatch(manifest["version"]) is not None
            and isinstance(manifest["kind"], str)
            and isinstance(manifest["settings"], dict)
            and isinstance(manifest["fingerprint"], str)
            and isinstance(manifest["corpus"]["fingerprint"], str)
            and isinstance(manifest["corpus"]["documents"], int)
            and isinstance(manifest["info"], dict)
            and isinstance(files, dict)
            and all(isinstance(f["size"], int) and isinstance(f["sha256"], str) for f in files.values())
            and all("/" not in name and not name.startswith(".") for name in files)
        )
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise refuse(f"{MANIFEST} is incomplete")
    if kind is not None and manifest["kind"] != kind:
        raise refuse(f"it is a {manifest['kind']} index, not {kind}")
    return manifest


def _open_version(root: Path, raw: bytes, kind: str, verify: bool) -> IndexVersion:
    """The version ``raw`` (the manifest) names, every file's size checked, and its checksum when the
    file is small (``CHECKSUM_ON_LOAD``) or ``verify`` is set."""
    manifest = _read_manifest(root, raw, kind)
    version = IndexVersion(root, root / manifest["version"], manifest)
    verified = []
    for name, recorded in manifest["files"].items():
        size = (version.folder / name).stat().st_size  # FileNotFoundError: see load_index
        if size != recorded["size"]:
            raise version.fail(f"{name} is {size} bytes, the manifest says {recorded['size']} (truncated?)")
        if verify or size <= CHECKSUM_ON_LOAD:
            if _sha256(version.folder / name) != recorded["sha256"]:
                raise version.fail(f"{name} does not match its checksum")
            verified.append(name)
    return replace(version, verified=frozenset(verified))


def load_index(root: str | Path, kind: str, open_files: Callable[[IndexVersion], T], *, verify: bool) -> T:
    """Resolve the published version of ``root`` and open it with ``open_files``.

    A rebuild may publish a new version and delete this one between reading the manifest and opening
    the files: a missing file is retried against the new manifest, and is damage only if the manifest
    did not change."""
    root = Path(root)
    manifest_path = root / MANIFEST
    for _ in range(RETRIES):
        try:
            raw = manifest_path.read_bytes()
        except FileNotFoundError:
            if _legacy_index(root):
                raise BadIndexError(
                    f"index {root} was written by an older deepretrieval; {rebuild_hint(root, kind)}"
                ) from None
            raise BadIndexError(
                f"{root} holds no deepretrieval index (no {MANIFEST}); build one with "
                f"{build_command(root, kind)}"
            ) from None
        try:
            return open_files(_open_version(root, raw, kind, verify))
        except FileNotFoundError as err:
            with contextlib.suppress(OSError):
                if manifest_path.read_bytes() != raw:
                    continue  # a new version was published meanwhile: resolve the pointer again
            missing = Path(err.filename).name if err.filename else "a file"
            raise BadIndexError(
                f"index {root} is damaged: {missing} is missing; {rebuild_hint(root, kind)}"
            ) from None
    raise BadIndexError(f"index {root} was republished {RETRIES} times while loading; try again")


def published_manifest(root: str | Path) -> dict[str, Any]:
    """The manifest of the index published in ``root`` (its kind, documents, files); :class:`BadIndexError`
    when ``root`` holds no index or its manifest is unusable."""
    root = Path(root)
    try:
        raw = (root / MANIFEST).read_bytes()
    except OSError as err:  # missing, or root is a file
        if _legacy_index(root):
            raise BadIndexError(f"index {root} was written by an older deepretrieval; rebuild it") from None
        raise BadIndexError(f"{root} holds no deepretrieval index ({err.strerror}: {MANIFEST})") from None
    return _read_manifest(root, raw, None)


def check_index_path(root: Path) -> None:
    """Refuse an index folder path that is a file or lies under a file."""
    for parent in (root, *root.parents):
        if parent.exists():
            if not parent.is_dir():
                where = "is" if parent == root else f"lies under {parent}, which is"
                raise BadIndexError(f"index folder {root} {where} a file; choose a folder path")
            return


def _check_out_dir(root: Path) -> None:
    """Refuse a build destination that is a file, lies under a file, or holds files that are not ours."""
    check_index_path(root)
    if root.is_dir():
        legacy = _legacy_index(root)
        foreign = sorted(entry.name for entry in root.iterdir() if not _ours(entry.name, legacy))
        if foreign:
            raise BadIndexError(
                f"index folder {root} holds files that are not part of an index ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder"
            )


def _ours(name: str, legacy: bool) -> bool:
    """Whether ``name`` in an index folder is part of the index (``legacy``: an old-layout index)."""
    return (
        name in (MANIFEST, LOCK)
        or (legacy and name in LEGACY_FILES)
        or name.startswith((BUILD_PREFIX, f".{MANIFEST}."))
        or VERSION.fullmatch(name) is not None
    )


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class IndexWriter:
    """Context manager that builds one version of an index folder and publishes it atomically.

    ``IndexWriter(dir, kind)`` checks the destination; ``with writer:`` takes the folder's build lock and
    opens a fresh ``writer.folder``: write the files there (flat), then call :meth:`publish`. Leaving the
    block without publishing (an error, Ctrl-C) deletes the partial build; a builder killed outright
    leaves a ``.build-*`` folder that the next publish of this folder removes.
    """

    def __init__(self, index_dir: str | Path, kind: str):
        self.root = Path(index_dir)
        self.kind = kind
        _check_out_dir(self.root)  # now, so that a bad destination fails before any expensive work
        self._lock = FileLock(self.root / LOCK)
        self._published = False
        self.folder = self.root  # set in __enter__

    def __enter__(self) -> Self:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock.acquire()
        stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"
        self._version = f"v{stamp}"
        self.folder = self.root / f"{BUILD_PREFIX}{stamp}"
        self.folder.mkdir()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self._published:
                shutil.rmtree(self.folder, ignore_errors=True)
        finally:
            self._lock.release()

    def publish(self, corpus: Corpus, *, settings: dict, fingerprint: str, info: dict) -> None:
        """Record every file of the build in a manifest and make this version the index's current one."""
        files = {}
        for path in sorted(self.folder.iterdir()):
            if not path.is_file():
                raise BadIndexError(f"{path}: an index version holds plain files only")
            files[path.name] = {"size": path.stat().st_size, "sha256": _sha256(path)}
            _fsync(path)  # durable before the manifest points at it (a power cut, not just a kill)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "version": self._version,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "settings": settings,
            "fingerprint": fingerprint,
            "corpus": {
                "fingerprint": corpus.fingerprint,
                "documents": len(corpus),
                "source": str(corpus.source) if corpus.source else None,
            },
            "info": info,
            "files": files,
        }
        os.rename(self.folder, self.root / self._version)
        self.folder = self.root / self._version
        write_json(self.root / MANIFEST, manifest)
        _fsync(self.root)
        self._published = True
        self._remove_stale()

    def _remove_stale(self) -> None:
        """Delete older versions, leftovers of killed builds and legacy files (readers keep their maps)."""
        legacy = _legacy_index(self.root)
        for entry in self.root.iterdir():
            if entry.name in (MANIFEST, LOCK, self._version) or not _ours(entry.name, legacy):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
