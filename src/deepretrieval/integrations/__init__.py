"""Bridges to other trainers: ``verl`` (the reward functions verl calls, and the parquet export)."""
