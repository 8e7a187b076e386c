//go:build !unix

package main

import "log/slog"

// connectionBound is --max-connections as given: there is no descriptor
// limit to read here.
func connectionBound(flag int, _ *slog.Logger) int { return flag }
