package memberlist

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Real sockets on a shared 2-core machine: poll with generous deadlines, never fixed sleeps.
const deadline = 30 * time.Second

func fastConfig(name string) *Config {
	c := DefaultLocalConfig()
	c.Name = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.ProbeInterval = 200 * time.Millisecond
	c.ProbeTimeout = 100 * time.Millisecond
	c.GossipInterval = 50 * time.Millisecond
	c.PushPullInterval = 2 * time.Second
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > deadline {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func create(t *testing.T, c *Config) *Memberlist {
	t.Helper()
	m, err := Create(c)
	if err != nil {
		t.Fatalf("Create(%s): %v", c.Name, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// recorder is an EventDelegate keeping every event and the OS thread it arrived on.
type recorder struct {
	mu      sync.Mutex
	events  []NodeEvent
	threads map[int]bool
}

func (r *recorder) add(ev NodeEventType, n *Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, NodeEvent{ev, n})
	if r.threads == nil {
		r.threads = map[int]bool{}
	}
	r.threads[syscall.Gettid()] = true
}
func (r *recorder) NotifyJoin(n *Node)   { r.add(NodeJoin, n) }
func (r *recorder) NotifyLeave(n *Node)  { r.add(NodeLeave, n) }
func (r *recorder) NotifyUpdate(n *Node) { r.add(NodeUpdate, n) }

func (r *recorder) has(ev NodeEventType, name string, state NodeStateType) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Event == ev && e.Node.Name == name && e.Node.State == state {
			return true
		}
	}
	return false
}

func names(m *Memberlist) string {
	var out []string
	for _, n := range m.Members() {
		out = append(out, n.Name)
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

func TestLayoutMatchesC(t *testing.T) {
	for _, c := range layoutChecks() {
		if c.actual != c.expected {
			t.Errorf("%s: cgo says %d, libclang says %d", c.what, c.actual, c.expected)
		}
	}
}

func TestThreeNodeCluster(t *testing.T) {
	runtime.LockOSThread() // so the test's own thread id is fixed
	defer runtime.UnlockOSThread()
	me := syscall.Gettid()

	ra, rb, rc := &recorder{}, &recorder{}, &recorder{}
	ca := fastConfig("go-a")
	ca.Meta = []byte("role=seed")
	ca.Events = ra
	cb, cc := fastConfig("go-b"), fastConfig("go-c")
	cb.Events, cc.Events = rb, rc
	a, b, c := create(t, ca), create(t, cb), create(t, cc)

	seed := a.LocalNode()
	if seed.Addr.String() != "127.0.0.1" || seed.Port == 0 {
		t.Fatalf("local node address %s", seed.Address())
	}
	for _, m := range []*Memberlist{b, c} {
		if n, err := m.Join([]string{seed.Address()}); err != nil || n != 1 {
			t.Fatalf("Join: %d, %v", n, err)
		}
	}
	waitFor(t, "three members everywhere", func() bool {
		for _, m := range []*Memberlist{a, b, c} {
			if m.NumMembers() != 3 || names(m) != "go-a,go-b,go-c" {
				return false
			}
		}
		return true
	})
	for _, n := range c.Members() {
		if n.Name == "go-a" && (!bytes.Equal(n.Meta, []byte("role=seed")) || n.State != StateAlive) {
			t.Errorf("c sees a as %+v", n)
		}
	}
	// Events are delivered after the membership changed, from a queue: wait for them.
	waitFor(t, "the join event of the local node at create", func() bool { return ra.has(NodeJoin, "go-a", StateAlive) })
	waitFor(t, "b sees c join", func() bool { return rb.has(NodeJoin, "go-c", StateAlive) })
	ra.mu.Lock()
	if ra.threads[me] {
		t.Error("a callback ran on the test's thread")
	}
	ra.mu.Unlock()

	if err := c.Leave(10 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitFor(t, "a sees c left", func() bool { return ra.has(NodeLeave, "go-c", StateLeft) })
	c.Shutdown()
	b.Shutdown() // no leave: a must detect the failure
	waitFor(t, "a sees b dead", func() bool { return ra.has(NodeLeave, "go-b", StateDead) })
	waitFor(t, "a alone", func() bool { return a.NumMembers() == 1 })

	// After Shutdown the queries answer from the last state and the commands fail; after
	// Close every call fails with ErrClosed.
	if _, err := b.Join([]string{seed.Address()}); err == nil {
		t.Error("Join after Shutdown succeeded")
	}
	if b.LocalNode() == nil || b.NumMembers() == 0 || len(b.Members()) == 0 {
		t.Error("the queries after Shutdown should answer from the last state")
	}
	b.Close()
	if _, err := b.Join([]string{seed.Address()}); err != ErrClosed {
		t.Errorf("Join after Close: %v", err)
	}
	if b.Members() != nil || b.LocalNode() != nil {
		t.Error("Members/LocalNode after Close should be nil")
	}
}

func TestPingAndErrors(t *testing.T) {
	a, b := create(t, fastConfig("go-ping-a")), create(t, fastConfig("go-ping-b"))
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a knows b", func() bool { return a.NumMembers() == 2 })
	// One UDP ping may be lost or answered after its timeout on a loaded machine: ping until
	// one is answered.
	var rtt time.Duration
	waitFor(t, "a ping answered", func() bool {
		var err error
		rtt, err = a.Ping("go-ping-b")
		return err == nil
	})
	if rtt <= 0 {
		t.Errorf("Ping: rtt %v", rtt)
	}
	var e *Error
	if _, err := a.Ping("nobody"); !errors.As(err, &e) || e.Status != StatusNotFound {
		t.Errorf("Ping unknown: %v", err)
	}
	if a.GetHealthScore() < 0 {
		t.Error("health score")
	}
}

type panicky struct{ calls atomic.Int64 }

func (p *panicky) NotifyJoin(*Node)   { p.calls.Add(1); panic("deliberate panic in NotifyJoin") }
func (p *panicky) NotifyLeave(*Node)  { p.calls.Add(1); panic("deliberate panic in NotifyLeave") }
func (p *panicky) NotifyUpdate(*Node) { p.calls.Add(1); panic("deliberate panic in NotifyUpdate") }

func TestPanicInCallbackIsRecovered(t *testing.T) {
	p := &panicky{}
	c := fastConfig("go-panic")
	c.Events = p
	c.LogLevel = LogDebug
	c.Logger = log.New(io.Discard, "", 0)
	a := create(t, c)
	b := create(t, fastConfig("go-panic-peer"))
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "panicking delegate called", func() bool { return p.calls.Load() >= 2 })
	waitFor(t, "cluster still works", func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 })
}

// callsFromCallback calls back into its own memberlist from NotifyJoin.
type callsFromCallback struct {
	ml      atomic.Pointer[Memberlist]
	members atomic.Int64
	joinErr atomic.Value
}

func (c *callsFromCallback) NotifyJoin(n *Node) {
	m := c.ml.Load()
	if m == nil || n.Name != "go-cb-peer" {
		return
	}
	_, err := m.Join([]string{"127.0.0.1:1"})
	c.joinErr.Store(err)
	c.members.Store(int64(len(m.Members())))
}
func (c *callsFromCallback) NotifyLeave(*Node)  {}
func (c *callsFromCallback) NotifyUpdate(*Node) {}

func TestCallsFromInsideACallback(t *testing.T) {
	d := &callsFromCallback{}
	c := fastConfig("go-cb")
	c.Events = d
	a := create(t, c)
	d.ml.Store(a)
	b := create(t, fastConfig("go-cb-peer"))
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "callback ran", func() bool { return d.members.Load() != 0 })
	if d.members.Load() != 2 {
		t.Errorf("Members() from a callback saw %d", d.members.Load())
	}
	var e *Error
	if err, _ := d.joinErr.Load().(error); !errors.As(err, &e) || e.Status != StatusState {
		t.Errorf("blocking Join from its own callback: %v (want StatusState)", err)
	}
}

func TestConfigRefusals(t *testing.T) {
	var e *Error
	c := DefaultLocalConfig()
	c.ProtocolVersion = 99
	if err := c.Validate(); !errors.As(err, &e) || e.Status != StatusInvalid || e.Message == "" {
		t.Errorf("protocol version 99: %v", err)
	}
	c = DefaultLANConfig()
	c.Name = ""
	if _, err := Create(c); !errors.As(err, &e) || e.Status != StatusInvalid {
		t.Errorf("empty name: %v", err)
	}
	c = DefaultLANConfig()
	c.Meta = make([]byte, 100000)
	if err := c.Validate(); !errors.As(err, &e) || e.Status != StatusTooLarge {
		t.Errorf("huge meta: %v", err)
	}
	c = DefaultLANConfig()
	c.ProbeInterval = -time.Second
	if err := c.Validate(); !errors.As(err, &e) || e.Status != StatusInvalid {
		t.Errorf("negative interval: %v", err)
	}
	if DefaultWANConfig().ProbeInterval <= DefaultLocalConfig().ProbeInterval {
		t.Error("WAN preset should probe less often than Local")
	}
	if err := DefaultLANConfig().Validate(); err != nil {
		t.Errorf("a preset round-trips through the setters: %v", err)
	}
}

func TestHandlesFreedOnShutdownAndFailedCreate(t *testing.T) {
	before := liveHandles.Load()
	m, err := Create(fastConfig("go-free"))
	if err != nil {
		t.Fatal(err)
	}
	if liveHandles.Load() != before+1 {
		t.Fatalf("handles: %d, want %d", liveHandles.Load(), before+1)
	}
	m.Shutdown()
	m.Shutdown() // idempotent
	if liveHandles.Load() != before+1 {
		t.Fatal("Shutdown freed the handle: Close (or the collector) should")
	}
	m.Close()
	m.Close() // idempotent
	bad := fastConfig("go-free-bad")
	bad.BindAddr = "192.0.2.1" // not a local address: bind fails
	if _, err := Create(bad); err == nil {
		t.Fatal("binding a foreign address should fail")
	}
	if liveHandles.Load() != before {
		t.Errorf("handles leaked: %d, want %d", liveHandles.Load(), before)
	}
}

// TestGCStress runs the collector continuously while nodes join, gossip, log at trace level
// and leave, cycle after cycle: callbacks must only ever see valid Go values, and every
// handle must be deleted in the end.
func TestGCStress(t *testing.T) {
	gcLoop(t, 0)

	before := liveHandles.Load()
	var logLines atomic.Int64
	config := func(name string, r *recorder) *Config {
		c := fastConfig(name)
		c.Events = r
		c.LogLevel = LogTrace
		c.Logger = log.New(writerFunc(func(p []byte) { logLines.Add(1) }), "", 0)
		return c
	}
	var nodes []*Memberlist
	recs := make([]*recorder, 3)
	for i := range recs {
		recs[i] = &recorder{}
		nodes = append(nodes, create(t, config("go-gc-"+string(rune('a'+i)), recs[i])))
	}
	seed := nodes[0].LocalNode().Address()
	for _, m := range nodes[1:] {
		if _, err := m.Join([]string{seed}); err != nil {
			t.Fatal(err)
		}
	}
	allHave := func(n int) func() bool {
		return func() bool {
			for _, m := range nodes {
				if m.NumMembers() != n {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "three members", allHave(3))
	const cycles = 8
	for i := 0; i < cycles; i++ {
		m := create(t, config(fmt.Sprintf("go-gc-guest-%d", i), &recorder{}))
		if _, err := m.Join([]string{seed}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "guest joined", allHave(4))
		m.Leave(5 * time.Second)
		m.Close()
		waitFor(t, "guest left", allHave(3))
	}
	// Events arrive from a queue after the membership changed, and Close drops the ones not
	// delivered yet: wait for them first.
	events := func() int {
		recs[0].mu.Lock()
		defer recs[0].mu.Unlock()
		return len(recs[0].events)
	}
	waitFor(t, "node a's join and leave events", func() bool { return events() >= 3+2*cycles })
	for _, m := range nodes {
		m.Close()
	}
	if liveHandles.Load() != before {
		t.Errorf("handles leaked: %d, want %d", liveHandles.Load(), before)
	}
	t.Logf("%d log lines, %d events at node a", logLines.Load(), events())
}

type writerFunc func([]byte)

func (w writerFunc) Write(p []byte) (int, error) { w(p); return len(p), nil }

type counter struct{ n atomic.Int64 }

func (c *counter) NotifyJoin(*Node)   { c.n.Add(1) }
func (c *counter) NotifyLeave(*Node)  { c.n.Add(1) }
func (c *counter) NotifyUpdate(*Node) { c.n.Add(1) }

// BenchmarkEventCallback: one event callback from a non-Go thread (as the library makes
// them): C trampoline, cgo.Handle lookup, Node copy, delegate call.
//
//	go test -run '^$' -bench EventCallback
func BenchmarkEventCallback(b *testing.B) {
	m, err := Create(fastConfig("go-bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c := &counter{}
	b.ResetTimer()
	per, err := benchEventRoundTrip(m, c, b.N)
	if err != nil {
		b.Fatal(err)
	}
	if c.n.Load() != int64(b.N) {
		b.Fatalf("%d callbacks, want %d", c.n.Load(), b.N)
	}
	b.ReportMetric(float64(per.Nanoseconds()), "ns/callback")
}

type msgCounter struct{ n atomic.Int64 }

func (c *msgCounter) NodeMeta(int) []byte             { return nil }
func (c *msgCounter) NotifyMsg(b []byte)              { c.n.Add(int64(len(b))) }
func (c *msgCounter) GetBroadcasts(int, int) [][]byte { return nil }
func (c *msgCounter) LocalState(bool) []byte          { return nil }
func (c *msgCounter) MergeRemoteState([]byte, bool)   {}

// BenchmarkMessageCallback: one on_message callback with a 64-byte payload from a non-Go
// thread: C trampoline, cgo.Handle lookup, payload copy, Delegate.NotifyMsg.
//
//	go test -run '^$' -bench MessageCallback
func BenchmarkMessageCallback(b *testing.B) {
	c := &msgCounter{}
	b.ResetTimer()
	per := benchMessageRoundTrip(c, 64, b.N)
	if c.n.Load() != int64(64*b.N) {
		b.Fatalf("%d bytes delivered, want %d", c.n.Load(), 64*b.N)
	}
	b.ReportMetric(float64(per.Nanoseconds()), "ns/callback")
}
