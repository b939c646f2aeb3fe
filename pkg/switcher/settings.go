package switcher

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"

	"github.com/bound-token/kubectl-bound-token/pkg/backup"
)

// The settings a switch's rewrite depends on, recorded in its backup
// folder (backup.OpSettings): a rerun that finishes an interrupted run
// must rewrite the rest as the first run did, and it must recognise the
// first run's rewrites (resume compares templates with MakePlan's).
const (
	settingExpiration = "expirationSeconds"
	settingAudience   = "audience"
)

func (o Options) settings() map[string]string {
	return map[string]string{settingExpiration: strconv.FormatInt(o.seconds(), 10), settingAudience: o.Audience}
}

func describeSettings(s map[string]string) string {
	aud := "the API's audience"
	if a := s[settingAudience]; a != "" {
		aud = strconv.Quote(a) + " as audience"
	}
	return fmt.Sprintf("tokens of %s s with %s", s[settingExpiration], aud)
}

// checkSettings refuses to go on in a folder whose recorded settings are
// not this run's (nil recorded: a folder from before they were recorded).
func checkSettings(dir string, recorded map[string]string, o Options) error {
	want := o.settings()
	if recorded == nil || maps.Equal(recorded, want) {
		return nil
	}
	return fmt.Errorf("backup folder %s holds a switch to %s, this run asks for %s: nothing was changed; finish it with the same token settings, or use a new folder", dir, describeSettings(recorded), describeSettings(want))
}

// CheckResume tells, before anything is asked or changed, whether a run
// with o may resume the switch backup in dir: a folder without an index
// (a new one) may be used; one with an index must hold a switch with the
// same token settings. backup.Open and Apply check the rest.
func CheckResume(dir string, o Options) error {
	if dir == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, backup.IndexFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %v", filepath.Join(dir, backup.IndexFile), err)
	}
	ix, err := backup.ParseIndex(data)
	if err != nil || ix.Mode != backup.ModeSwitch {
		// OpenBackup says what is wrong with it.
		return nil
	}
	return checkSettings(dir, ix.Settings, o)
}
