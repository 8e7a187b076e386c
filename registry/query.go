package registry

import (
	"net/http"
	"net/url"
)

// queryValues parses the request's query string strictly. req.URL.Query()
// silently drops what it cannot parse: a malformed escape, a ';'
// separator, or every parameter once there are more than net/url accepts
// (10,000). Dropped filters widen an answer without telling the client,
// so routes whose parameters filter use this and answer 400 instead.
func queryValues(req *http.Request) (url.Values, error) {
	v, err := url.ParseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, errorf(CodeUnsupported, "cannot read the query string: %v", err).withStatus(http.StatusBadRequest)
	}
	return v, nil
}

// checkQuery refuses, on every route, a query string that req.URL.Query()
// would read only in part: no handler then acts on a silently shortened
// list of tags, digests or filters.
func checkQuery(req *http.Request) error {
	if req.URL.RawQuery == "" {
		return nil
	}
	_, err := queryValues(req)
	return err
}
