// Command etcd is the upstream etcd server entry point (the same one-liner as
// go.etcd.io/etcd/v3's main.go), built here so envtest gets an etcd binary
// from the Go module proxy alone.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
