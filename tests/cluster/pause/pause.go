// The sandbox ("pause") container of the real test node: holds a pod's namespaces open and
// reaps zombies until it is told to stop. There is no registry here to pull registry.k8s.io/pause
// from, so tests/cluster/build-kubelet.sh builds this static binary and tests/cluster/node.py
// wraps it in a one-layer image.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			return
		}
		for {
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
