// The pod sandbox's PID 1 ("pause"): it holds the pod's namespaces open, reaps any child that gets
// reparented to it (zombies would otherwise pile up in a shared PID namespace) and exits promptly on
// SIGTERM/SIGINT so that stopping a sandbox never waits out a grace period.
//
// Built statically (CGO_ENABLED=0) by infra/k8s/images.sh into localhost/ms2m-pause:<tag>, our own
// sandbox image, so the cluster never pulls registry.k8s.io/pause.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		switch sig {
		case syscall.SIGCHLD:
			reap()
		default:
			reap()
			os.Exit(0)
		}
	}
}

// reap collects every exited child without blocking. One SIGCHLD can stand for several exits, so
// loop until there is nothing left to wait for.
func reap() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
	}
}
