"""videopipe's Kubernetes operator: S3 `pending/` → VideoJob → Job → `completed/` or `failed/`.

Layers, each importing only downwards:

- pure decisions: `naming`, `routing`, `specs`, `conditions`, `phases`, `planning`, `manifests`;
- I/O, one module per system: `kube` (Kubernetes API), `videopipe.store` (S3), `sources`;
- steps of a pass: `discovery`, `starts`, `outcomes`, `cancel`, composed by `reconcile`;
- process: `daemon` (per-source loop), `handlers` (kopf registrations), `metrics`, `health`,
  `kopf_settings` (how kopf is configured), `config` (our settings), and `__main__`
  (`videopipe operator`).
"""

from videopipe import __version__

__all__ = ["__version__"]
