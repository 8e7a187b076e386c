package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"github.com/artifact-store/artifact-store/blobstore"
	"github.com/artifact-store/artifact-store/digest"
	"github.com/artifact-store/artifact-store/eventlog"
	"github.com/artifact-store/artifact-store/manifests"
)

// Code is an OCI distribution-spec error code.
// https://github.com/opencontainers/distribution-spec/blob/main/spec.md#error-codes
type Code string

// The error codes, each mapped to its HTTP status once, in status below.
const (
	CodeBlobUnknown         Code = "BLOB_UNKNOWN"
	CodeBlobUploadInvalid   Code = "BLOB_UPLOAD_INVALID"
	CodeBlobUploadUnknown   Code = "BLOB_UPLOAD_UNKNOWN"
	CodeDigestInvalid       Code = "DIGEST_INVALID"
	CodeManifestBlobUnknown Code = "MANIFEST_BLOB_UNKNOWN"
	CodeManifestInvalid     Code = "MANIFEST_INVALID"
	CodeManifestUnknown     Code = "MANIFEST_UNKNOWN"
	CodeNameInvalid         Code = "NAME_INVALID"
	CodeNameUnknown         Code = "NAME_UNKNOWN"
	CodeSizeInvalid         Code = "SIZE_INVALID"
	CodeUnauthorized        Code = "UNAUTHORIZED"
	CodeDenied              Code = "DENIED"
	CodeUnsupported         Code = "UNSUPPORTED"
	CodeTooManyRequests     Code = "TOOMANYREQUESTS"
	CodePaginationInvalid   Code = "PAGINATION_NUMBER_INVALID"
	// The native API's own codes (/api/v1/).
	CodeVersionExists  Code = "VERSION_EXISTS"
	CodeVersionUnknown Code = "VERSION_UNKNOWN"
	CodeFileUnknown    Code = "FILE_UNKNOWN"
	CodePathInvalid    Code = "PATH_INVALID"
	// UNAVAILABLE (503): the blob storage could not be reached; the same
	// request may succeed later. Distribution uses the same code.
	CodeUnavailable Code = "UNAVAILABLE"
	// Not in the spec's table, but used by every registry for what is not
	// the client's fault.
	CodeUnknown Code = "UNKNOWN"
	// RANGE_INVALID is what Distribution answers with its 416s.
	CodeRangeInvalid Code = "RANGE_INVALID"
)

func (c Code) status() int {
	switch c {
	case CodeBlobUnknown, CodeBlobUploadUnknown, CodeManifestUnknown, CodeNameUnknown, CodeVersionUnknown, CodeFileUnknown:
		return http.StatusNotFound
	case CodeBlobUploadInvalid, CodeDigestInvalid, CodeManifestBlobUnknown, CodeManifestInvalid, CodeNameInvalid, CodeSizeInvalid, CodePaginationInvalid, CodePathInvalid:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeDenied:
		return http.StatusForbidden
	case CodeVersionExists:
		return http.StatusConflict
	case CodeUnsupported:
		return http.StatusMethodNotAllowed
	case CodeTooManyRequests:
		return http.StatusTooManyRequests
	case CodeRangeInvalid:
		return http.StatusRequestedRangeNotSatisfiable
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// Error is a registry error: a code, a message a person can act on, and
// optionally a status that overrides the code's default (413, 416).
type Error struct {
	Code    Code
	Message string
	Detail  any
	Status  int
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// withStatus returns e answered with status instead of the code's default.
func (e *Error) withStatus(status int) *Error { e.Status = status; return e }

// classify maps an error from the libraries to a registry error. Handlers
// wrap domain errors with the code that fits their route (a missing blob is
// BLOB_UNKNOWN on the blob routes and MANIFEST_BLOB_UNKNOWN on a manifest
// PUT); what reaches here unwrapped gets the library's generic meaning.
func classify(err error) *Error {
	var re *Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, errBodyStalled):
		return errorf(CodeBlobUploadInvalid, "%v; nothing of this request was kept: resume from the size the upload reports", err).withStatus(http.StatusRequestTimeout)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(CodeBlobUploadInvalid, "the request body ended before its announced length; nothing of this request was kept")
	case errors.Is(err, eventlog.ErrConflict):
		return errorf(CodeDenied, "%v", err).withStatus(http.StatusConflict)
	case errors.Is(err, blobstore.ErrUnavailable):
		// The details (endpoint, bucket, key) go to the log, not the client.
		return errorf(CodeUnavailable, "blob storage is unavailable; retry later")
	case errors.Is(err, digest.ErrUnsupported):
		return errorf(CodeUnsupported, "%v", err).withStatus(http.StatusBadRequest)
	case errors.Is(err, digest.ErrInvalid), errors.Is(err, blobstore.ErrDigestMismatch):
		return errorf(CodeDigestInvalid, "%v", err)
	case errors.Is(err, blobstore.ErrUploadNotFound):
		return errorf(CodeBlobUploadUnknown, "%v", err)
	case errors.Is(err, blobstore.ErrNotFound):
		return errorf(CodeBlobUnknown, "%v", err)
	case errors.Is(err, manifests.ErrInvalid), errors.Is(err, manifests.ErrUnsupportedMediaType), errors.Is(err, manifests.ErrUnknownManifestVersion):
		return errorf(CodeManifestInvalid, "%v", err)
	}
	return nil
}

// writeError writes err as the spec's JSON error envelope. Errors that are
// not registry errors are logged and answered 500 without detail.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	re := classify(err)
	if errors.Is(err, blobstore.ErrUnavailable) {
		log.WarnContext(r.Context(), "blob storage unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if re == nil {
		log.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
		re = errorf(CodeUnknown, "internal error; the server log has the details")
	}
	status := re.Status
	if status == 0 {
		status = re.Code.status()
	}
	type jsonErr struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	body, _ := json.Marshal(map[string][]jsonErr{"errors": {{re.Code, re.Message, re.Detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
