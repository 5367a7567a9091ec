// Command empty is the reference: a Go program that does nothing.
package main

func main() {}
