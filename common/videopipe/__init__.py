"""videopipe: videos in an S3 bucket become transcripts and AI summaries.

This package holds what every part shares: the command-line entry point, the S3
folder layout (the contract with users, DESIGN.md §2), S3 URIs and clients, and the
worker's exit report (the contract between worker and operator, DESIGN.md §4).
It depends on boto3 only, so the worker imports it without kopf and the operator
without faster-whisper.
"""

__version__ = "0.1.0"
