package framework

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// CompactEtcd compacts etcd's history up to its current revision, as
// kube-apiserver does every few minutes, and returns that revision: every
// resourceVersion before it has expired, so a watch that starts there gets
// 410 Gone. It uses etcd's JSON gateway, which needs no client library.
func (c *Cluster) CompactEtcd(t testing.TB) int64 {
	t.Helper()
	if c.EtcdURL == "" {
		t.Fatal("the cluster's env file names no etcd (ETCD=): restart it with this repository's hack/local-cluster.sh")
	}
	var rng struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	// Any key will do: the answer's header carries the store's revision.
	etcdCall(t, c.EtcdURL+"/v3/kv/range", map[string]any{"key": "AA=="}, &rng)
	rev, err := strconv.ParseInt(rng.Header.Revision, 10, 64)
	if err != nil {
		t.Fatalf("etcd range: revision %q: %v", rng.Header.Revision, err)
	}
	etcdCall(t, c.EtcdURL+"/v3/kv/compaction", map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}, nil)
	return rev
}

func etcdCall(t testing.TB, url string, body, out any) {
	t.Helper()
	b, _ := json.Marshal(body)
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("etcd %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("etcd %s: %s: %s", url, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("etcd %s: %v: %s", url, err, data)
		}
	}
}
