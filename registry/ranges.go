package registry

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// checkRange answers an unsatisfiable or malformed Range with the spec's
// error envelope (RANGE_INVALID, 416, Content-Range: bytes */size) instead
// of the plain-text body http.ServeContent would write. Satisfiable ranges
// are left to ServeContent. With If-Range, ServeContent decides.
func checkRange(w http.ResponseWriter, req *http.Request, size int64) error {
	rh := req.Header.Get("Range")
	if rh == "" || req.Header.Get("If-Range") != "" {
		return nil
	}
	specs, ok := strings.CutPrefix(rh, "bytes=")
	if !ok {
		return rangeInvalid(w, size, fmt.Sprintf("Range %q: only byte ranges (bytes=START-END) are supported", rh))
	}
	for _, spec := range strings.Split(specs, ",") {
		if satisfiable(strings.TrimSpace(spec), size) {
			return nil
		}
	}
	return rangeInvalid(w, size, fmt.Sprintf("Range %q does not overlap the %d bytes of the blob (or is malformed: START must not exceed END)", rh, size))
}

// satisfiable reports whether one range spec selects at least one byte.
func satisfiable(spec string, size int64) bool {
	a, b, ok := strings.Cut(spec, "-")
	if !ok {
		return false
	}
	if a == "" { // suffix: the last N bytes
		n, err := strconv.ParseInt(b, 10, 64)
		return err == nil && n > 0 && size > 0
	}
	start, err := strconv.ParseInt(a, 10, 64)
	if err != nil || start < 0 || start >= size {
		return false
	}
	if b == "" {
		return true
	}
	end, err := strconv.ParseInt(b, 10, 64)
	return err == nil && end >= start
}

func rangeInvalid(w http.ResponseWriter, size int64, msg string) error {
	w.Header().Set("Content-Range", fmt.Sprintf("bytes */%d", size))
	return errorf(CodeRangeInvalid, "%s", msg)
}
