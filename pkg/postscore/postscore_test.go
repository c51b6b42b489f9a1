package postscore

import (
	"errors"
	"strings"
	"testing"
)

const rec = `{"v":1,"post_id":7,"version":3,"score":3.5,"user_count":2,"mean":3.5,"distribution":[0,0,0,1,1,0],"flags":{"under_campaign":true,"since":"2026-12-07T18:00:00.000000Z"},"as_of":"2026-12-07T18:01:00.000000Z","strategy":"surge-guard","activity":2.5,"activity_at":"2026-12-07T18:00:00.000000Z"}`

func TestUnmarshalAndTable(t *testing.T) {
	r, err := Unmarshal([]byte(rec))
	if err != nil || r.PostID != 7 || r.Version != 3 || *r.Score != 3.5 || r.Distribution[4] != 1 || !r.Flags.UnderCampaign || r.Flags.Since == nil {
		t.Fatalf("%+v %v", r, err)
	}
	for name, bad := range map[string]string{
		"version 2":     strings.Replace(rec, `"v":1`, `"v":2`, 1),
		"unknown field": strings.Replace(rec, `"v":1`, `"v":1,"x":1`, 1),
		"duplicate key": strings.Replace(rec, `"v":1`, `"v":1,"v":1`, 1),
		"no version":    strings.Replace(rec, `"version":3`, `"version":0`, 1),
		"not JSON":      rec[:20],
	} {
		if _, err := Unmarshal([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A consumer's table: the newest version wins, whatever the order; a
	// record that comes twice changes nothing.
	tab := Table{}
	older := r
	older.Version, older.UserCount = 2, 1
	if !tab.Apply(r) || tab.Apply(older) || tab.Apply(r) || tab[7].UserCount != 2 {
		t.Fatalf("table %+v", tab)
	}
}
