// Package startup keeps the garbage collector out of package
// initialisation. Linking client-go runs the init of every API group it
// knows (client-go's and kubectl's schemes register thousands of types):
// about 4 MB of allocations, most of it kept, in every process, before
// main. Go's first collection starts at a 4 MB heap, so each short process
// (`version`, a one-token `verify`) paid a full concurrent mark of that
// heap, about a third of its CPU time, to free almost nothing.
//
// The main package imports it. It depends on runtime/debug alone, so Go
// initialises it before client-go and the API packages (the spec's order:
// a package's dependencies first, then the ready package whose import path
// sorts first). Resume puts the collector back, with the GOGC the user set,
// before a command runs. Measured by bench/rows.txt's start-up and
// one-token verify rows: about 5% of each process's CPU time.
//
// It must not import any other package of this module.
package startup

import "runtime/debug"

// gcPercent is GOGC as the process started (SetGCPercent returns the old
// value, which the runtime read from the environment).
var gcPercent = debug.SetGCPercent(-1)

// Resume gives the garbage collector back its GOGC; call it once the
// command tree is built, before running a command.
func Resume() {
	debug.SetGCPercent(gcPercent)
}
