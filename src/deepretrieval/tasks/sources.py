"""Where a task's data comes from: a local file or folder, an ``ir_datasets`` id, or a Hugging Face dataset id.

``--data`` (``task.data``) takes:

* a file or folder, as it is;
* ``irds:ID`` (``irds:beir/scifact/test``): the field's standard loader, ``ir_datasets``, which downloads and
  caches under ``IR_DATASETS_HOME`` when online. Its documents, queries and qrels are written once, as a
  BEIR folder, into the deepretrieval cache. An id with qrels is one split, named after its last part
  (``test``); an id without (``beir/scifact``) has one split per registered sub-id with qrels;
* ``hf:OWNER/NAME`` (or plain ``OWNER/NAME`` when no such local path exists): a dataset repository on the
  Hugging Face hub laid out as BEIR publishes it (``corpus.jsonl[.gz]``, ``queries.jsonl[.gz]``, and
  ``qrels/<split>.tsv`` or a sibling ``OWNER/NAME-qrels`` repository of ``<split>.tsv``, as ``BeIR/scifact``
  and ``BeIR/scifact-qrels``), fetched by ``huggingface_hub`` into its cache (``HF_HUB_OFFLINE=1``: the cache
  only).

Both are read through their own libraries (never their private cache files) and published atomically.
"""

from __future__ import annotations

import difflib
import gzip
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from tqdm.auto import tqdm

from deepretrieval.files import atomic_write
from deepretrieval.paths import cache_dir

IRDS, HF = "irds:", "hf:"
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
HF_PATTERNS = ["*.jsonl", "*.jsonl.gz", "*.tsv", "*.tsv.gz", "qrels/*"]
BEIR_FILES = ("corpus.jsonl", "queries.jsonl")


class SourceError(ValueError):
    """A data source that cannot be had; the message says what to do."""


def resolve_data(spec: str | None, hub_names: bool = False) -> Path | None:
    """The local path of ``spec``: itself, or the BEIR folder an ``irds:`` / ``hf:`` id is materialised as.
    ``hub_names``: a plain ``OWNER/NAME`` that is no local path names a hub dataset too."""
    if spec is None:
        return None
    if spec.startswith(IRDS):
        return irds_folder(spec[len(IRDS) :])
    if spec.startswith(HF):
        return hf_folder(spec[len(HF) :])
    path = Path(spec)
    if hub_names and not path.exists() and REPO_ID.match(spec):
        try:
            return hf_folder(spec)
        except SourceError as err:
            raise SourceError(
                f"--data {spec}: no such file or folder here, nor a hub dataset ({err})"
            ) from None
    return path


def _slug(dataset_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "__", dataset_id).strip("_")


# ---- ir_datasets -------------------------------------------------------------------------------------


def irds_folder(dataset_id: str) -> Path:
    """``ir_datasets``' ``dataset_id`` as a BEIR folder in the cache (written on first use)."""
    try:
        import ir_datasets
    except ImportError:
        raise SourceError(
            f"--data irds:{dataset_id} reads ir_datasets: pip install 'deepretrieval[irds]'"
        ) from None
    folder = cache_dir() / "datasets" / "irds" / _slug(dataset_id)
    if (folder / "corpus.jsonl").is_file():
        return folder
    splits = _irds_splits(ir_datasets, dataset_id)
    dataset = next(iter(splits.values()))
    queries: dict[str, str] = {}
    qrels: dict[str, list[tuple[str, str, int]]] = {}
    for split, part in splits.items():
        queries.update((q.query_id, _text(q)) for q in part.queries_iter())
        qrels[split] = [(r.query_id, r.doc_id, int(r.relevance)) for r in part.qrels_iter()]
    count = dataset.docs_count() if dataset.has_docs() else None
    docs = tqdm(dataset.docs_iter(), total=count, desc=f"{dataset_id}: documents", unit="doc")
    corpus = ({"_id": d.doc_id, "title": getattr(d, "title", "") or "", "text": _text(d)} for d in docs)
    return _publish(folder, corpus, queries, qrels)


def _irds_splits(ir_datasets, dataset_id: str) -> dict:
    """The split(s) of an id: itself when it has qrels (named by its last part), else each sub-id with qrels."""
    try:
        dataset = ir_datasets.load(dataset_id)
    except KeyError:
        known = list(ir_datasets.registry)
        close = difflib.get_close_matches(dataset_id, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise SourceError(
            f"irds:{dataset_id}: not an ir_datasets id{hint}; see https://ir-datasets.com"
        ) from None
    if not dataset.has_docs():
        raise SourceError(f"irds:{dataset_id} has no documents to search")
    if dataset.has_qrels():
        return {dataset_id.rsplit("/", 1)[-1]: dataset}
    children = sorted(
        name
        for name in ir_datasets.registry
        if name.startswith(f"{dataset_id}/") and name.count("/") == dataset_id.count("/") + 1
    )
    splits = {name.rsplit("/", 1)[-1]: ir_datasets.load(name) for name in children}
    splits = {name: part for name, part in splits.items() if part.has_qrels() and part.has_queries()}
    if not splits:
        raise SourceError(f"irds:{dataset_id} has no relevance judgements (qrels) and no sub-id with them")
    return splits


def _text(record) -> str:
    text = getattr(record, "text", None)
    return text if isinstance(text, str) else record.default_text()


# ---- Hugging Face hub ----------------------------------------------------------------------------------


def hf_folder(repo_id: str) -> Path:
    """The hub dataset ``repo_id`` (BEIR layout) as a BEIR folder: its own snapshot when it already is one,
    else one written into the cache from its (gzipped) files and its ``-qrels`` sibling."""
    snapshot = _snapshot(repo_id)
    found = {name: _find(snapshot, name) for name in BEIR_FILES}
    files = {name: path for name, path in found.items() if path is not None}
    if len(files) < len(found):
        present = sorted(p.name for p in snapshot.rglob("*") if p.is_file())[:8]
        raise SourceError(
            f"hf:{repo_id} is not in BEIR's layout (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); it holds "
            f"{', '.join(present) or 'no data files'}"
        )
    qrels = sorted((snapshot / "qrels").glob("*.tsv")) if (snapshot / "qrels").is_dir() else []
    if not qrels:
        sibling = _snapshot(f"{repo_id}-qrels", needed_by=repo_id)
        qrels = sorted(sibling.glob("*.tsv"))
    if not qrels:
        raise SourceError(f"hf:{repo_id}: no qrels (qrels/<split>.tsv, or <split>.tsv in {repo_id}-qrels)")
    plain = all(path.suffix == ".jsonl" for path in files.values())
    if plain and qrels[0].parent == snapshot / "qrels":
        return snapshot  # already a BEIR folder
    folder = cache_dir() / "datasets" / "hf" / f"{_slug(repo_id)}-{snapshot.name[:12]}"
    if (folder / "corpus.jsonl").is_file():
        return folder
    return _publish_files(folder, files, qrels)


def _snapshot(repo_id: str, needed_by: str | None = None) -> Path:
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise SourceError(f"hf:{repo_id} needs huggingface_hub: pip install 'deepretrieval[train]'") from None
    try:
        return Path(snapshot_download(repo_id, repo_type="dataset", allow_patterns=HF_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as err:
        what = f"the qrels of hf:{needed_by} ({repo_id})" if needed_by else f"hf:{repo_id}"
        offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes", "on"}
        fix = (
            "it is not in the local hub cache and HF_HUB_OFFLINE is set"
            if offline
            else str(err).split("\n")[0]
        )
        raise SourceError(f"{what}: no such dataset repository reachable ({fix})") from None


def _find(snapshot: Path, name: str) -> Path | None:
    return next((p for p in (snapshot / name, snapshot / f"{name}.gz") if p.is_file()), None)


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else path.open(encoding="utf-8")


def _publish_files(folder: Path, files: dict[str, Path], qrels: list[Path]) -> Path:
    """Copy (decompressing) a BEIR layout into ``folder``, atomically."""

    def write(partial: Path) -> None:
        for name, source in files.items():
            with _open_text(source) as src, (partial / name).open("w", encoding="utf-8") as out:
                shutil.copyfileobj(src, out)
        (partial / "qrels").mkdir()
        for path in qrels:
            with (
                _open_text(path) as src,
                (partial / "qrels" / path.name.removesuffix(".gz")).open("w") as out,
            ):
                shutil.copyfileobj(src, out)

    return _atomic_folder(folder, write)


# ---- publishing --------------------------------------------------------------------------------------


def _publish(
    folder: Path,
    corpus: Iterable[dict],
    queries: dict[str, str],
    qrels: dict[str, list[tuple[str, str, int]]],
) -> Path:
    """Write a BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv) at ``folder``, atomically."""

    def write(partial: Path) -> None:
        _jsonl(partial / "corpus.jsonl", corpus)
        _jsonl(partial / "queries.jsonl", ({"_id": qid, "text": text} for qid, text in queries.items()))
        (partial / "qrels").mkdir()
        for split, rows in qrels.items():
            lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{d}\t{r}" for q, d, r in rows)]
            (partial / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")

    return _atomic_folder(folder, write)


def _jsonl(path: Path, records: Iterable[dict]) -> None:
    with atomic_write(path) as out:
        for record in records:
            out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))


def _atomic_folder(folder: Path, write: Callable[[Path], None]) -> Path:
    """Fill a fresh sibling folder with ``write`` and rename it into place: a reader sees the whole folder
    or none of it (a concurrent writer that finished first wins; ours is dropped)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    partial.mkdir()
    try:
        write(partial)
        try:
            os.replace(partial, folder)
        except OSError:
            if not (folder / "corpus.jsonl").is_file():
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder
