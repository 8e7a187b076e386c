package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"

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
	CodeEventUnknown   Code = "EVENT_UNKNOWN"
	CodeKeyUnknown     Code = "KEY_UNKNOWN"      // an API key id names no key
	CodeKeyInvalid     Code = "KEY_INVALID"      // an API key request is malformed
	CodePolicyUnknown  Code = "POLICY_UNKNOWN"   // no retention policy of that name
	CodePolicyInvalid  Code = "POLICY_INVALID"   // a retention policy that does not parse or check
	CodeDeletedUnknown Code = "DELETION_UNKNOWN" // nothing restorable by that name (never deleted by retention, or past the undo window)
	// UNAVAILABLE (503, with Retry-After): the blob storage or the event
	// log's database could not be reached; the same request may succeed
	// later. Distribution uses the same code.
	CodeUnavailable Code = "UNAVAILABLE"
	// STORAGE_FULL (507 Insufficient Storage): the disk or quota under the
	// blob store or the database is full. Nothing was recorded; the request
	// succeeds once an operator has made room. Not in the spec's table.
	CodeStorageFull Code = "STORAGE_FULL"
	// Not in the spec's table, but used by every registry for what is not
	// the client's fault.
	CodeUnknown Code = "UNKNOWN"
	// RANGE_INVALID is what Distribution answers with its 416s.
	CodeRangeInvalid Code = "RANGE_INVALID"
)

func (c Code) status() int {
	switch c {
	case CodeBlobUnknown, CodeBlobUploadUnknown, CodeManifestUnknown, CodeNameUnknown, CodeVersionUnknown, CodeFileUnknown, CodeEventUnknown, CodeKeyUnknown, CodePolicyUnknown, CodeDeletedUnknown:
		return http.StatusNotFound
	case CodeBlobUploadInvalid, CodeDigestInvalid, CodeManifestBlobUnknown, CodeManifestInvalid, CodeNameInvalid, CodeSizeInvalid, CodePaginationInvalid, CodePathInvalid, CodeKeyInvalid, CodePolicyInvalid:
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
	case CodeStorageFull:
		return http.StatusInsufficientStorage
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

// retryAfter is the Retry-After (seconds) of every 503 and 429: short,
// since the server reconnects by itself on the next request, and clients
// that retry add their own backoff on top.
const retryAfter = "5"

// classify maps an error from the libraries to a registry error. Handlers
// wrap domain errors with the code that fits their route (a missing blob is
// BLOB_UNKNOWN on the blob routes and MANIFEST_BLOB_UNKNOWN on a manifest
// PUT); what reaches here unwrapped gets the library's generic meaning.
//
// Temporary conditions are checked first, so that they win over whatever
// wraps them: an outage of either store is 503, a full disk 507, on every
// route. Their messages are fixed text: the cause (an address, a path)
// goes to the server log, never to the client.
func classify(err error) *Error {
	var re *Error
	switch {
	case errors.As(err, &re):
		return re
	case errors.Is(err, blobstore.ErrNoSpace), errors.Is(err, eventlog.ErrNoSpace):
		return errorf(CodeStorageFull, "the server's storage is full; the request was not completed; retry once an operator has made room")
	case errors.Is(err, blobstore.ErrUnavailable):
		return errorf(CodeUnavailable, "blob storage is unavailable; retry later")
	case errors.Is(err, eventlog.ErrUnavailable):
		return errorf(CodeUnavailable, "the registry database is unavailable; retry later")
	case errors.Is(err, eventlog.ErrFenced):
		return errorf(CodeUnavailable, "%s", publicText(err, eventlog.ErrFenced))
	case errors.Is(err, errBodyStalled):
		return errorf(CodeBlobUploadInvalid, "%s; nothing of this request was kept (an upload session keeps what it had: resume from the size it reports)", publicText(err, errBodyStalled)).withStatus(http.StatusRequestTimeout)
	case errors.Is(err, errBodyCut):
		return errorf(CodeBlobUploadInvalid, "the request body ended before its announced length; nothing of this request was kept")
	case errors.Is(err, eventlog.ErrConflict):
		return errorf(CodeDenied, "%s", publicText(err, eventlog.ErrConflict)).withStatus(http.StatusConflict)
	case errors.Is(err, digest.ErrUnsupported):
		return errorf(CodeUnsupported, "%s", publicText(err, digest.ErrUnsupported)).withStatus(http.StatusBadRequest)
	case errors.Is(err, digest.ErrInvalid):
		return errorf(CodeDigestInvalid, "%s", publicText(err, digest.ErrInvalid))
	case errors.Is(err, blobstore.ErrDigestMismatch):
		return errorf(CodeDigestInvalid, "%s", publicText(err, blobstore.ErrDigestMismatch))
	case errors.Is(err, blobstore.ErrUploadNotFound):
		return errorf(CodeBlobUploadUnknown, "%s", publicText(err, blobstore.ErrUploadNotFound))
	case errors.Is(err, blobstore.ErrNotFound):
		return errorf(CodeBlobUnknown, "%s", publicText(err, blobstore.ErrNotFound))
	case errors.Is(err, manifests.ErrInvalid):
		return errorf(CodeManifestInvalid, "%s", publicText(err, manifests.ErrInvalid))
	case errors.Is(err, manifests.ErrUnsupportedMediaType):
		return errorf(CodeManifestInvalid, "%s", publicText(err, manifests.ErrUnsupportedMediaType))
	case errors.Is(err, manifests.ErrUnknownManifestVersion):
		return errorf(CodeManifestInvalid, "%s", publicText(err, manifests.ErrUnknownManifestVersion))
	}
	return nil
}

// publicText is err's text for a client, or, when err carries a file
// system error (whose text names a path under the data directory), the
// sentinel's text alone. writeError logs the full error in that case.
func publicText(err, sentinel error) string {
	if namesPath(err) {
		return sentinel.Error()
	}
	return err.Error()
}

// namesPath reports whether err's text may include a server file path.
func namesPath(err error) bool {
	var pe *fs.PathError
	var le *os.LinkError
	return errors.As(err, &pe) || errors.As(err, &le)
}

// recordedButUnreadable wraps the failure to open bytes that the log says
// are stored. A missing blob is damage for verify to report (500), never
// the client's 404, so ErrNotFound is flattened into the text; any other
// cause stays wrapped, so that an outage (503) or a full disk (507) is
// answered as such.
func recordedButUnreadable(key string, err error) error {
	if errors.Is(err, blobstore.ErrNotFound) {
		return fmt.Errorf("blob %s recorded but missing from the store: %v", key, err)
	}
	return fmt.Errorf("blob %s recorded but unreadable: %w", key, err)
}

// envelope is e as the spec's JSON error body, {"errors": [...]}; clients
// ignore other members, and requestId (when known) lets a user's report
// be found in the server's log.
func (e *Error) envelope(requestID string) []byte {
	type jsonErr struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
		Detail  any    `json:"detail,omitempty"`
	}
	body, _ := json.Marshal(struct {
		Errors    []jsonErr `json:"errors"`
		RequestID string    `json:"requestId,omitempty"`
	}{[]jsonErr{{e.Code, e.Message, e.Detail}}, requestID})
	return body
}

// writeError writes err as the spec's JSON error envelope. Errors that are
// not registry errors are logged and answered 500 without detail; so are
// the causes of outages and full disks, which clients see as fixed text.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	re := classify(err)
	rec := recorderOf(w)
	id := ""
	if rec != nil {
		id = rec.id
	}
	switch {
	case re == nil:
		log.ErrorContext(r.Context(), "internal error", "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
		re = errorf(CodeUnknown, "internal error; the server log has the details under request id %s", id)
	case re.Code == CodeUnavailable || re.Code == CodeStorageFull:
		log.WarnContext(r.Context(), string(re.Code), "id", id, "method", r.Method, "path", r.URL.Path, "err", err)
	case namesPath(err):
		log.InfoContext(r.Context(), "client error with a file system cause", "id", id, "method", r.Method, "path", r.URL.Path, "code", string(re.Code), "err", err)
	}
	if rec != nil {
		rec.code = re.Code
	}
	status := re.Status
	if status == 0 {
		status = re.Code.status()
	}
	// A handler may have described the content before it failed to serve
	// it (a damaged blob, an outage on open): an error answer must not
	// carry that content's digests or caching headers.
	for _, k := range [...]string{"Docker-Content-Digest", "ETag", "Cache-Control", "Accept-Ranges",
		"Repr-Digest", "Content-Disposition", "OCI-Digest", "Last-Modified", "Content-Encoding"} {
		w.Header().Del(k)
	}
	if (status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests) && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", retryAfter)
	}
	body := re.envelope(id)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}
