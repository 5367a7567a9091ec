//go:build etcdclient

package main

import _ "go.etcd.io/etcd/client/v3"
