package backup

import "sort"

// Outcome is what a run did with one object.
type Outcome struct {
	// Kind is empty for Secrets; Group is set outside the core, apps and
	// batch groups.
	Kind      string `json:"kind,omitempty"`
	Group     string `json:"group,omitempty"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Result    string `json:"result"`
	Message   string `json:"message,omitempty"`
}

// Results that more than one run reports; each run has its own besides.
const (
	// OutWouldChange: a dry run would change the object.
	OutWouldChange = "would-change"
	// OutUnchanged: restore found the object as backed up.
	OutUnchanged = "unchanged"
	// OutSkipChanged: someone else changed the object since it was read
	// or backed up: left alone.
	OutSkipChanged = "skipped-changed"
	// OutSkipGone: the object is gone.
	OutSkipGone = "skipped-gone"
	// OutFailed: the change failed.
	OutFailed = "failed"
	// OutDeletedRefLeft: a Secret was deleted but its ServiceAccount
	// still lists it.
	OutDeletedRefLeft = "deleted-reference-left"
)

// Failed reports whether the outcome should make the command fail.
func (o Outcome) Failed() bool {
	return o.Result == OutFailed || o.Result == OutSkipChanged || o.Result == OutDeletedRefLeft
}

// SortOutcomes orders by namespace and name, as kubectl lists objects.
func SortOutcomes(out []Outcome) {
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
}
