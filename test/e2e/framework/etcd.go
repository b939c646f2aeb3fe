package framework

import (
	"bytes"
	"encoding/json"
	"fmt"
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
	if err := etcdCall(c.EtcdURL+"/v3/kv/range", map[string]any{"key": "AA=="}, &rng); err != nil {
		t.Fatal(err)
	}
	rev, err := strconv.ParseInt(rng.Header.Revision, 10, 64)
	if err != nil {
		t.Fatalf("etcd range: revision %q: %v", rng.Header.Revision, err)
	}
	if err := etcdCall(c.EtcdURL+"/v3/kv/compaction", map[string]any{"revision": strconv.FormatInt(rev, 10), "physical": true}, nil); err != nil {
		t.Fatal(err)
	}
	return rev
}

// etcdCall posts body to one of etcd's JSON gateway endpoints and decodes
// the answer into out (when not nil).
func etcdCall(url string, body, out any) error {
	b, _ := json.Marshal(body)
	hc := &http.Client{Timeout: 10 * time.Second}
	resp, err := hc.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("etcd %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("etcd %s: %s: %s", url, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("etcd %s: %v: %s", url, err, data)
		}
	}
	return nil
}
