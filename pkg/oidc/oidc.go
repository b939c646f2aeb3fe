// Package oidc exports a cluster's service-account issuer documents in the
// layout a static web host (a bucket, a CDN) serves to relying parties.
//
// It must not import any other package of this module except pkg/fileutil,
// pkg/jwt and pkg/keys.
package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"

	"github.com/bound-token/kubectl-bound-token/pkg/fileutil"
	"github.com/bound-token/kubectl-bound-token/pkg/jwt"
	"github.com/bound-token/kubectl-bound-token/pkg/keys"
)

// Layouts: where the JWKS goes under the issuer. "kube" mirrors
// kube-apiserver (/openid/v1/jwks); "keys.json" is the IRSA-style bucket.
var Layouts = map[string]string{"kube": "openid/v1/jwks", "keys.json": "keys.json"}

const DiscoveryPath = ".well-known/openid-configuration"

// Export is what was written and what changed.
type Export struct {
	Issuer        string   `json:"issuer"`
	ClusterIssuer string   `json:"clusterIssuer"`
	JWKSURI       string   `json:"jwksURI"`
	KeyIDs        []string `json:"keyIDs"`
	// Files and URLs pair up: Files[i] must be served at URLs[i]. dir
	// stands for the issuer URL, path included: it is the issuer's root, not
	// the host's.
	Files []string `json:"files"`
	URLs  []string `json:"urls"`
}

// Fetch reads the cluster's discovery document and JWKS through the API.
func Fetch(ctx context.Context, cs kubernetes.Interface) (*jwt.Discovery, *jwt.KeySet, []byte, error) {
	get := func(p string) ([]byte, error) {
		b, err := cs.CoreV1().RESTClient().Get().AbsPath(p).DoRaw(ctx)
		if err != nil {
			if apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) {
				return nil, fmt.Errorf("the cluster refused %s (needs ClusterRole system:service-account-issuer-discovery)", p)
			}
			return nil, fmt.Errorf("GET %s: %w", p, err)
		}
		return b, nil
	}
	db, err := get("/.well-known/openid-configuration")
	if err != nil {
		return nil, nil, nil, err
	}
	var d jwt.Discovery
	if err := json.Unmarshal(db, &d); err != nil {
		return nil, nil, nil, fmt.Errorf("the cluster's discovery document is not JSON: %v", err)
	}
	jb, err := get("/openid/v1/jwks")
	if err != nil {
		return nil, nil, nil, err
	}
	ks, err := jwt.ParseJWKS(jb)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("the cluster's JWKS: %w", err)
	}
	return &d, ks, jb, nil
}

// Write lays the documents out under dir for issuer (the cluster's when
// empty): dir is served at the issuer URL, so dir/.well-known/... answers at
// ISSUER/.well-known/... . jwks_uri always points under the issuer: that is
// where the static host serves it.
func Write(d *jwt.Discovery, jwksRaw []byte, ks *jwt.KeySet, dir, issuer, layout string, overwrite bool) (*Export, error) {
	rel, ok := Layouts[layout]
	if !ok {
		return nil, fmt.Errorf("layout %q is not one of kube, keys.json", layout)
	}
	if issuer == "" {
		issuer = d.Issuer
	}
	out := &Export{Issuer: issuer, ClusterIssuer: d.Issuer}
	doc, err := keys.Discovery(issuer, strings.TrimSuffix(issuer, "/")+"/"+rel, d.IDTokenSigningAlgValuesSupported)
	if err != nil {
		return nil, err
	}
	out.JWKSURI = doc.JWKSURI
	db, err := keys.MarshalDocument(doc)
	if err != nil {
		return nil, err
	}
	for _, k := range ks.Keys {
		out.KeyIDs = append(out.KeyIDs, k.ID)
	}
	// The JWKS is published as the cluster serves it, byte for byte.
	files := map[string][]byte{DiscoveryPath: db, rel: append(append([]byte{}, jwksRaw...), '\n')}
	for _, name := range []string{DiscoveryPath, rel} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := fileutil.WriteFile(p, files[name], 0o644, 0o755, overwrite); err != nil {
			return nil, err
		}
		out.Files = append(out.Files, p)
		out.URLs = append(out.URLs, strings.TrimSuffix(issuer, "/")+"/"+name)
	}
	return out, nil
}
