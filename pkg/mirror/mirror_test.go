package mirror

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

func TestTablePagesInIDOrder(t *testing.T) {
	t.Parallel()
	var tb Table[string]
	if err := tb.Ready(context.Background()); !errors.Is(err, ErrNotLoaded) {
		t.Fatalf("Ready before loading: %v", err)
	}
	for _, id := range []int64{5, 1, 9, 3, 7} {
		tb.Put(id, string(rune('a'+id)))
	}
	tb.Put(3, "replaced")
	cases := []struct {
		after int64
		limit int
		want  []string
		more  bool
	}{
		{0, 2, []string{"b", "replaced"}, true},
		{3, 10, []string{"f", "h", "j"}, false},
		{4, 1, []string{"f"}, true},
		{9, 5, []string{}, false},
	}
	for _, c := range cases {
		got, more := tb.After(c.after, c.limit)
		if !reflect.DeepEqual(got, c.want) || more != c.more {
			t.Errorf("After(%d, %d) = %v, %v; want %v, %v", c.after, c.limit, got, more, c.want, c.more)
		}
	}
	page, n := tb.Page(3, 5)
	if n != 5 || !reflect.DeepEqual(page, []string{"h", "j"}) {
		t.Errorf("Page(3, 5) = %v of %d", page, n)
	}
	if page, _ := tb.Page(99, 5); len(page) != 0 {
		t.Errorf("Page past the end = %v", page)
	}
	if !tb.Has(9) || tb.Has(2) || tb.Len() != 5 {
		t.Errorf("Has/Len wrong: %v %v %d", tb.Has(9), tb.Has(2), tb.Len())
	}
}

// PutMany keeps the id order whatever mix of new and known ids it gets.
func TestPutManyKeepsIDOrder(t *testing.T) {
	t.Parallel()
	var tb Table[string]
	tb.Put(5, "e")
	before := tb.Version()
	tb.PutMany(map[int64]string{9: "i", 1: "a", 5: "E", 3: "c"})
	tb.PutMany(nil)
	got, more := tb.After(0, 10)
	if !reflect.DeepEqual(got, []string{"a", "c", "E", "i"}) || more || tb.Version() != before+1 {
		t.Fatalf("After PutMany: %v more %v, version %d after %d", got, more, tb.Version(), before)
	}
}
