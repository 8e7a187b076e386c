package main

import "syscall"

// oDirect opens the ceiling's file for direct I/O, as a large push writes.
const oDirect = syscall.O_DIRECT
