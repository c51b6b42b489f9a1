package main

import (
	"net"
	"testing"
)

// A connection the broker closes is forgotten; drop closes the others.
func TestConnsForgetClosedConnections(t *testing.T) {
	c := &conns{}
	l, err := c.listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.(*trackedListener).addr
	accept := func() net.Conn {
		t.Helper()
		client, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		conn, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	first, second := accept(), accept()
	if n := len(c.byAddr[addr]); n != 2 {
		t.Fatalf("%d connections remembered, want 2", n)
	}
	first.Close()
	if n := len(c.byAddr[addr]); n != 1 {
		t.Fatalf("%d connections remembered after one closed, want 1", n)
	}
	c.drop(addr)
	if _, err := second.Write([]byte("x")); err == nil {
		t.Fatal("a dropped connection still writes")
	}
}
