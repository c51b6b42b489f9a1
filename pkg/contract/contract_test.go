package contract

import (
	"io/fs"
	"regexp"
	"testing"

	"github.com/ratestream/ratestream/migrations"
)

// The one channel that SQL sends on (the trigger on posts) is the one
// this package names.
func TestMigrationsNotifyOnNamedChannels(t *testing.T) {
	t.Parallel()
	named := map[string]bool{ChannelPosts: true, ChannelRescore: true}
	re := regexp.MustCompile(`pg_notify\('([^']+)'`)
	found := 0
	err := fs.WalkDir(migrations.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(migrations.FS, path)
		if err != nil {
			return err
		}
		for _, m := range re.FindAllSubmatch(b, -1) {
			found++
			if !named[string(m[1])] {
				t.Errorf("%s notifies channel %q, which package contract does not name", path, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatal("no pg_notify in the migrations: the posts trigger is gone?")
	}
}
