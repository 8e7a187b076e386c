// Command rrproxy is a round-robin reverse proxy for tests: each request
// goes to the next backend, so that a client's multi-request operations
// (a chunked upload, a push then a pull) cross replicas.
//
//	rrproxy --listen 127.0.0.1:PORT http://127.0.0.1:A http://127.0.0.1:B
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync/atomic"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	verbose := flag.Bool("v", false, "log each request and the backend it went to")
	flag.Parse()
	var targets []*url.URL
	for _, a := range flag.Args() {
		u, err := url.Parse(a)
		if err != nil {
			log.Fatalf("backend %q: %v", a, err)
		}
		targets = append(targets, u)
	}
	if len(targets) == 0 {
		log.Fatal("usage: rrproxy --listen HOST:PORT BACKEND_URL...")
	}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			target := targets[next.Add(1)%uint64(len(targets))]
			pr.SetURL(target)
			pr.Out.Host = pr.In.Host // Location headers stay relative to the proxy
			if *verbose {
				log.Printf("%s %s -> %s", pr.In.Method, pr.In.URL.Path, target.Host)
			}
		},
		FlushInterval: -1, // event streams pass through unbuffered
	}
	log.Printf("rrproxy listening on %s, %d backends", *listen, len(targets))
	log.Fatal(http.ListenAndServe(*listen, proxy))
}
