//go:build !unix

package main

import "syscall"

// signalNum knows no names here, where no command can run under a lease
// anyway: signals are given by number.
func signalNum(string) syscall.Signal { return 0 }
