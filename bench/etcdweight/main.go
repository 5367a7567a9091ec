// Command etcdweight is an empty program, built twice by bench/etcd.sh:
// as it is, and with -tags etcdclient, which links etcd's client/v3 (and
// with it gRPC and the protobuf descriptors) for its package
// initialisation alone. GODEBUG=inittrace=1 and the binaries' sizes then
// show what linking the client costs a process that never uses it.
package main

func main() {}
