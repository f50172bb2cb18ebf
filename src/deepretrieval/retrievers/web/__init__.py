"""Retrievers that search over HTTP: PubMed (``pubmed``), ClinicalTrials.gov (``ctgov``) and an index served by
``deepretrieval serve-retriever`` (``remote``), all on one client (``client``: rate limit, retries)."""
