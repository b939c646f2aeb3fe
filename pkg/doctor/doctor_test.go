package doctor

import (
	"strings"
	"testing"
)

func TestParseCounters(t *testing.T) {
	text := []byte(`# HELP serviceaccount_legacy_tokens_total [ALPHA] Cumulative legacy service account tokens used
# TYPE serviceaccount_legacy_tokens_total counter
serviceaccount_legacy_tokens_total 12
serviceaccount_legacy_auto_token_uses_total 3
serviceaccount_legacy_tokens_total_other 99
serviceaccount_legacy_tokens_total{note="labelled series are not the counter"} 98
serviceaccount_invalid_legacy_auto_token_uses_total 1e+00
apiserver_request_total{code="200"} 5
`)
	got := ParseCounters(text, legacyCounters)
	want := map[string]float64{"serviceaccount_legacy_tokens_total": 12, "serviceaccount_legacy_auto_token_uses_total": 3, "serviceaccount_invalid_legacy_auto_token_uses_total": 1}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestJudgeLegacyMetrics(t *testing.T) {
	for _, tc := range []struct {
		name, metrics string
		want          Status
		fix           string
	}{
		{"no counters exported", "apiserver_request_total 5\n", Skip, ""},
		{"never used", "serviceaccount_legacy_tokens_total 0\nserviceaccount_invalid_legacy_auto_token_uses_total 0\n", Pass, ""},
		{"used", "serviceaccount_legacy_tokens_total 3\nserviceaccount_invalid_legacy_auto_token_uses_total 0\n", Warn, "legacy tokens are in use"},
		{"invalidated tokens presented", "serviceaccount_legacy_tokens_total 3\nserviceaccount_invalid_legacy_auto_token_uses_total 1\n", Warn, "in-use-failing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := judgeLegacyMetrics([]byte(tc.metrics))
			if c.Status != tc.want || !strings.Contains(c.Fix, tc.fix) {
				t.Fatalf("got %+v, want status %v with a fix containing %q", c, tc.want, tc.fix)
			}
		})
	}
}
