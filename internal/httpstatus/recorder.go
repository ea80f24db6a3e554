// Package httpstatus records the status code an HTTP handler answered
// with, for the metrics of ssp's servers (the /retrieve server and the
// OpenAI-compatible one).
package httpstatus

import (
	"net/http"
	"sync/atomic"
)

// Recorder wraps a ResponseWriter and remembers the status written.
type Recorder struct {
	http.ResponseWriter
	// Draining, when set, is read at the first write: while it is true the
	// answer is marked "Connection: close" — also the answers of requests
	// that arrived before a shutdown began — and Go's server then closes
	// the connection after it.
	Draining *atomic.Bool

	code  int
	wrote bool
}

func (r *Recorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
		if r.Draining != nil && r.Draining.Load() {
			r.Header().Set("Connection", "close")
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *Recorder) Write(p []byte) (int, error) {
	if !r.wrote {
		r.WriteHeader(http.StatusOK)
	}
	return r.ResponseWriter.Write(p)
}

// Flush lets streamed answers through the recorder.
func (r *Recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *Recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Wrote reports whether the handler has written a status yet.
func (r *Recorder) Wrote() bool { return r.wrote }

// Status is the status written, 200 when the handler wrote none.
func (r *Recorder) Status() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.code
}
