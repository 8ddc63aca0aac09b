"""The test Kubernetes cluster: a real control plane built from source plus a kubelet stand-in.

`controlplane.py` runs etcd and the control-plane binaries, `kubelet.py` plays the nodes,
`harness.py` puts them together as `Cluster`, `fixtures.py` exposes it to pytest as `cluster`,
and `python -m tests.cluster` (`make cluster`) runs it in the foreground for manual use.
"""
