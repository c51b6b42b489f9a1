package main

import (
	"net"
	"sync"
)

// conns remembers the connections each broker's listener accepted, so that
// a broker the fault API stops also drops its clients, as a broker that
// dies does. (kfake only closes the listener: a client would keep its
// connection to the removed broker and be told NOT_LEADER on it until the
// connection idled out, which no real cluster does.)
type conns struct {
	mu     sync.Mutex
	byAddr map[string]map[net.Conn]struct{}
}

// listen is kfake's ListenFn: a plain listener whose connections are
// remembered by its address.
func (c *conns) listen(network, addr string) (net.Listener, error) {
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return &trackedListener{Listener: l, c: c, addr: addr}, nil
}

// drop closes every connection accepted on addr.
func (c *conns) drop(addr string) {
	c.mu.Lock()
	open := c.byAddr[addr]
	delete(c.byAddr, addr)
	c.mu.Unlock()
	for conn := range open {
		_ = conn.Close()
	}
}

type trackedListener struct {
	net.Listener
	c    *conns
	addr string
}

func (l *trackedListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	t := &trackedConn{Conn: conn, c: l.c, addr: l.addr}
	l.c.mu.Lock()
	defer l.c.mu.Unlock()
	if l.c.byAddr == nil {
		l.c.byAddr = map[string]map[net.Conn]struct{}{}
	}
	if l.c.byAddr[l.addr] == nil {
		l.c.byAddr[l.addr] = map[net.Conn]struct{}{}
	}
	l.c.byAddr[l.addr][t] = struct{}{}
	return t, nil
}

// trackedConn forgets itself when it closes: a dev broker that runs for
// days sees clients come and go, and must not keep every connection it
// ever accepted.
type trackedConn struct {
	net.Conn
	c    *conns
	addr string
}

func (t *trackedConn) Close() error {
	t.c.mu.Lock()
	delete(t.c.byAddr[t.addr], t)
	t.c.mu.Unlock()
	return t.Conn.Close()
}
