"""videopipe: videos in an S3 bucket become transcripts and AI summaries.

This package is the contract every part relies on: the command-line entry point, the S3
folder layout (`layout`), what is done to it (`store`), S3 URIs and clients (`s3`) and the
names of their errors (`s3errors`), every reason a part gives (`reasons`), the worker's exit
report (`report`) and how a claimed video settles (`settle`). It depends on boto3 alone, so
the worker imports it without kopf, the operator without faster-whisper, and the runner
(`videopipe_runner`) without either. See docs/architecture.md, "Parts and folders".
"""

__version__ = "0.1.0"
