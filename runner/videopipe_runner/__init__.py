"""`videopipe run`: the operator's S3 semantics on one machine, without Kubernetes.

The runner claims videos from a bucket's (or a local folder's) `pending/` folder, runs the
worker on each as a child process (up to `--concurrency` at once), and moves each video to
`completed/` or `failed/` (with `failed/<path>.error.json`), results in `results/<path>/`: the
same layout, the same moves (`videopipe.store`, shared with the operator) and the same worker
contract.

Where the operator's claim is a VideoJob, the runner's is a lock object per video created with
a conditional PUT (`If-None-Match: *`) and kept alive as a lease, so several runners can share a
bucket and a crashed runner's videos are taken over when its lease expires (claims.py).

Modules, each with one job, importing only downwards:

- `policy`: pure decisions (retry or fail, lease expiry, store support, exit code)
- `claims`: lock objects and leases; probing the store for conditional writes
- `folderclaims`: the same claims on a local folder (`videopipe run ./videos`): OS locks
- `worker`: one `videopipe transcribe` child process and its report
- `status`: what is known about one video
- `video`: one video's trip from claim to final folder
- `runner`: the loop (claim, resume, heartbeat, drain)
- `shutdown`: SIGTERM/SIGINT in two steps
- `display`: live table, log lines, summary
- `settings`, `__main__`: the command line
"""

from videopipe_runner.policy import Outcome, RunExit, Support
from videopipe_runner.settings import RunnerSettings

__all__ = ["Outcome", "RunExit", "RunnerSettings", "Support"]
