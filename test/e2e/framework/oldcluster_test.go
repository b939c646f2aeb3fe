package framework

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// A Secret as kube-apiserver stores it with JSON storage, with a label and
// an annotation that spell "creationTimestamp" as a decoy.
const storedSecret = `{"kind":"Secret","apiVersion":"v1","metadata":{"name":"tok","namespace":"app","uid":"u1",` +
	`"creationTimestamp":"2026-03-01T10:00:00Z","labels":{"creationTimestamp":"2026-03-01T10:00:00Z"},` +
	`"annotations":{"note":"{\"creationTimestamp\":\"2026-03-01T10:00:00Z\"}"},` +
	`"managedFields":[{"manager":"m","time":"2026-03-01T10:00:00Z"}]},` +
	`"data":{"token":"ZXlK"},"type":"kubernetes.io/service-account-token"}` + "\n"

func TestSetCreationTimestampChangesOnlyThatField(t *testing.T) {
	created := time.Date(2025, 1, 25, 8, 30, 15, 999, time.FixedZone("x", 3600))
	out, err := SetCreationTimestamp([]byte(storedSecret), created)
	if err != nil {
		t.Fatal(err)
	}
	// Stored in UTC to the second, like metav1.Time.MarshalJSON.
	want := strings.Replace(storedSecret, `"creationTimestamp":"2026-03-01T10:00:00Z","labels"`,
		`"creationTimestamp":"2025-01-25T07:30:15Z","labels"`, 1)
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestSetCreationTimestampFindsMetadataAfterOtherFields(t *testing.T) {
	// Field order and spacing are not assumed: a null value (never set) is
	// replaced too.
	in := `{"spec":{"metadata":{"creationTimestamp":"keep"}}, "metadata" : { "creationTimestamp" : null , "name":"x"}}`
	out, err := SetCreationTimestamp([]byte(in), time.Date(2024, 2, 3, 4, 5, 6, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"spec":{"metadata":{"creationTimestamp":"keep"}}, "metadata" : { "creationTimestamp" : "2024-02-03T04:05:06Z" , "name":"x"}}`
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
}

func TestSetCreationTimestampRefusesProtobufAndMissingField(t *testing.T) {
	if _, err := SetCreationTimestamp([]byte("k8s\x00\n\x02v1"), time.Now()); err == nil || !strings.Contains(err.Error(), "JSONStorage") {
		t.Errorf("protobuf: got %v, want an error naming JSONStorage", err)
	}
	if _, err := SetCreationTimestamp([]byte(`{"metadata":{"name":"x"}}`), time.Now()); err == nil {
		t.Error("no creationTimestamp: want an error")
	}
}

func TestEtcdKeyLayout(t *testing.T) {
	for _, c := range []struct{ group, resource, ns, name, want string }{
		{"", "secrets", "app", "tok", "/registry/secrets/app/tok"},
		{"", "configmaps", "kube-system", "c", "/registry/configmaps/kube-system/c"},
		{"", "services", "app", "web", "/registry/services/specs/app/web"},
		{"", "namespaces", "", "app", "/registry/namespaces/app"},
		{"apps", "deployments", "app", "web", "/registry/deployments/app/web"},
	} {
		if got := EtcdKey(schema.GroupResource{Group: c.group, Resource: c.resource}, c.ns, c.name); got != c.want {
			t.Errorf("%s %s/%s: %s, want %s", c.resource, c.ns, c.name, got, c.want)
		}
	}
}
