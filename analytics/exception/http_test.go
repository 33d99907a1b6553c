package exception_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/patchgrid/patchgrid/analytics/exception"
	"github.com/patchgrid/patchgrid/schemas"
	"github.com/patchgrid/patchgrid/schemas/testenv"
)

func TestRoutes(t *testing.T) {
	st := testenv.CHDBStore(t)
	if _, err := schemas.Migrate(context.Background(), st, nil); err != nil {
		t.Fatal(err)
	}
	book := exception.New(st, nil, exception.Config{})
	mux := http.NewServeMux()
	for _, r := range book.Routes(func(r *http.Request) string { return r.Header.Get("X-Actor") }) {
		h := r.Handler
		// The API's error mapping, in small.
		mux.HandleFunc(r.Method+" "+r.Pattern, func(w http.ResponseWriter, req *http.Request) {
			if err := h(w, req); err != nil {
				code := http.StatusInternalServerError
				switch {
				case errors.Is(err, exception.ErrBadRequest):
					code = http.StatusBadRequest
				case errors.Is(err, exception.ErrInvalid):
					code = http.StatusUnprocessableEntity
				case errors.Is(err, exception.ErrNotFound):
					code = http.StatusNotFound
				}
				w.WriteHeader(code)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			}
		})
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, actor, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, bytes.NewBufferString(body))
		req.Header.Set("X-Actor", actor)
		if body == "" {
			req.ContentLength = 0
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	code, ex := call("POST", "/api/v1/exceptions", "alice", `{"advisory":"CVE-1","package":"openssl","owner":"o","reason":"r","expires_days":7}`)
	if code != http.StatusCreated || ex["requester"] != "alice" || ex["status"] != "requested" {
		t.Fatalf("create: %d %v", code, ex)
	}
	id := ex["exception_id"].(string)
	// The requester named in a body is ignored: it is the caller.
	if code, out := call("POST", "/api/v1/exceptions", "alice", `{"advisory":"CVE-1","package":"x","owner":"o","reason":"r","expires_days":7,"requester":"mallory"}`); code != http.StatusBadRequest {
		t.Fatalf("unknown body field: %d %v", code, out)
	}
	if code, out := call("POST", "/api/v1/exceptions/"+id+"/approve", "alice", ""); code != http.StatusUnprocessableEntity {
		t.Fatalf("self-approval: %d %v", code, out)
	}
	if code, out := call("POST", "/api/v1/exceptions/"+id+"/approve", "bob", ""); code != http.StatusOK || out["status"] != "approved" || out["approver"] != "bob" {
		t.Fatalf("approve: %d %v", code, out)
	}
	if code, _ := call("GET", "/api/v1/exceptions/EX-000000000000", "bob", ""); code != http.StatusNotFound {
		t.Fatalf("unknown id: %d", code)
	}
	if code, out := call("GET", "/api/v1/exceptions?status=approved", "bob", ""); code != http.StatusOK || len(out["exceptions"].([]any)) != 1 {
		t.Fatalf("list: %d %v", code, out)
	}
	if code, _ := call("GET", "/api/v1/exceptions?status=maybe", "bob", ""); code != http.StatusBadRequest {
		t.Fatalf("bad status filter: %d", code)
	}
	if code, out := call("POST", "/api/v1/exceptions/"+id+"/revoke", "carol", `{"reason":"patched"}`); code != http.StatusOK || out["status"] != "revoked" {
		t.Fatalf("revoke: %d %v", code, out)
	}
}
