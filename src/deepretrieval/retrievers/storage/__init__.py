"""Where index-backed retrievers keep their files: versioned index folders published atomically and verified
on load (``index_store``), and the documents' texts, memory-mapped and read on demand (``doc_store``)."""
