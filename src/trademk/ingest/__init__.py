"""Ingestion: bounded queue, batching, idempotent retries and disk spill."""

from trademk.ingest.pipeline import IngestPipeline

__all__ = ["IngestPipeline"]
