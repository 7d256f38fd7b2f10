"""Ingestion: file readers, column detection, validation, sequences, splits."""
