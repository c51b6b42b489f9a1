package rating

import (
	"testing"
	"time"
)

// BenchmarkUnmarshal is the per-event decoding cost every consumer pays.
func BenchmarkUnmarshal(b *testing.B) {
	e, _ := New(123, "device-id-123456", 4, time.Now())
	v, _ := e.Marshal()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Unmarshal(v); err != nil {
			b.Fatal(err)
		}
	}
}
