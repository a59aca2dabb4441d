//go:build race

package main

// raceBuild: the test builds the server with -race too, so that it reuses the packages `go test
// -race` compiled already (and the server runs under the race detector).
const raceBuild = true
