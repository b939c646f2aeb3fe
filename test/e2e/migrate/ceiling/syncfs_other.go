//go:build !linux

package main

// syncfs is Linux's only (the benchmarks run there): elsewhere the backup
// is written without it.
func syncfs(string) error { return nil }
