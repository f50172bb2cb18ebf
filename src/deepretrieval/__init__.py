"""deepretrieval: train LLMs to write search queries with retrieval outcomes as the RL reward."""

__version__ = "0.1.0"
