package memberlist

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// eventLog collects events from an EventCh in the test's goroutine.
type eventLog struct {
	ch     chan Event
	events []Event
}

func newEventLog() *eventLog { return &eventLog{ch: make(chan Event, 16)} }

// until takes events until cond holds (or fails the test after the deadline).
func (l *eventLog) until(t *testing.T, what string, cond func(Event) bool) Event {
	t.Helper()
	timeout := time.After(deadline)
	for {
		select {
		case ev := <-l.ch:
			l.events = append(l.events, ev)
			if cond(ev) {
				return ev
			}
		case <-timeout:
			t.Fatalf("timed out waiting for %s (saw %d events)", what, len(l.events))
		}
	}
}

func member(typ NodeEventType, name string, state NodeStateType) func(Event) bool {
	return func(ev Event) bool {
		return ev.Kind == EventKindMember && ev.Type == typ && ev.Node.Name == name &&
			ev.Node.State == state
	}
}

// The three-node scenario of TestThreeNodeCluster, with every notification taken from the
// library's queue through Config.EventCh: no Go code runs on a library thread.
func TestEventChannelThreeNodes(t *testing.T) {
	la, lb, lc := newEventLog(), newEventLog(), newEventLog()
	ca, cb, cc := fastConfig("ev-a"), fastConfig("ev-b"), fastConfig("ev-c")
	ca.Meta = []byte("role=seed")
	ca.EventCh, cb.EventCh, cc.EventCh = la.ch, lb.ch, lc.ch
	a, b, c := create(t, ca), create(t, cb), create(t, cc)

	// Log lines come as events too (EventKindLog); the first membership event is a's own join.
	first := la.until(t, "a's own join", func(ev Event) bool { return ev.Kind == EventKindMember })
	if first.Kind != EventKindMember || first.Type != NodeJoin || first.Node.Name != "ev-a" {
		t.Fatalf("first event %+v, want a's own join", first)
	}
	for _, m := range []*Memberlist{b, c} {
		if n, err := m.Join([]string{a.LocalNode().Address()}); err != nil || n != 1 {
			t.Fatalf("Join: %d, %v", n, err)
		}
	}
	la.until(t, "a sees b join", member(NodeJoin, "ev-b", StateAlive))
	la.until(t, "a sees c join", member(NodeJoin, "ev-c", StateAlive))
	ev := lc.until(t, "c sees a", member(NodeJoin, "ev-a", StateAlive))
	if !bytes.Equal(ev.Node.Meta, []byte("role=seed")) {
		t.Errorf("c sees a's metadata %q", ev.Node.Meta)
	}

	if err := b.SetMeta([]byte("v2"), 10*time.Second); err != nil {
		t.Fatalf("SetMeta: %v", err)
	}
	la.until(t, "a sees b's update", func(ev Event) bool {
		return ev.Kind == EventKindMember && ev.Type == NodeUpdate && ev.Node.Name == "ev-b" &&
			bytes.Equal(ev.Node.Meta, []byte("v2"))
	})

	// Epidemic delivery is probabilistic (a loaded machine may lose one): as the other tests
	// (broadcastUntilSeen), queue another once the last is done, until a and c have one.
	isNews := func(ev Event) bool {
		return ev.Kind == EventKindBroadcast && ev.Origin == "ev-b" && ev.Name == "topic" &&
			bytes.HasPrefix(ev.Data, []byte("news #"))
	}
	seenA, seenC := false, false
	for round := 1; !(seenA && seenC); round++ {
		id, err := b.QueueBroadcast("topic", []byte(fmt.Sprintf("news #%d", round)))
		if err != nil {
			t.Fatalf("QueueBroadcast: %v", err)
		}
		lb.until(t, "b's broadcast done", func(ev Event) bool {
			return ev.Kind == EventKindBroadcastDone && ev.ID == id && ev.Outcome == BroadcastSettled
		})
		for _, l := range []*eventLog{la, lc} {
			// What arrived meanwhile, without waiting.
			for more := true; more; {
				select {
				case ev := <-l.ch:
					l.events = append(l.events, ev)
				default:
					more = false
				}
			}
		}
		for _, ev := range la.events {
			seenA = seenA || isNews(ev)
		}
		for _, ev := range lc.events {
			seenC = seenC || isNews(ev)
		}
		if round > 50 {
			t.Fatal("50 broadcasts and a or c never got one")
		}
	}

	var toA *Node
	for _, n := range b.Members() {
		if n.Name == "ev-a" {
			toA = n
		}
	}
	for i := 0; i < 5; i++ {
		if err := b.SendReliable(toA, []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatalf("SendReliable: %v", err)
		}
	}
	// Each reliable message is a stream of its own, and a receiver handles streams as they
	// complete: all five arrive, once each, in no promised order.
	got := map[string]int{}
	for i := 0; i < 5; i++ {
		ev := la.until(t, fmt.Sprintf("message %d of 5", i+1), func(ev Event) bool { return ev.Kind == EventKindMessage })
		got[string(ev.Data)]++
	}
	for i := 0; i < 5; i++ {
		if want := fmt.Sprintf("m%d", i); got[want] != 1 {
			t.Errorf("message %q arrived %d times, want once (all: %v)", want, got[want], got)
		}
	}

	if err := c.Leave(10 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	la.until(t, "a sees c left", member(NodeLeave, "ev-c", StateLeft))
	c.Shutdown()
	b.Shutdown() // no leave: a must detect the failure
	la.until(t, "a sees b dead", member(NodeLeave, "ev-b", StateDead))
	if _, dropped, err := a.EventStats(); err != nil || dropped != 0 {
		t.Errorf("EventStats: %d dropped, %v", dropped, err)
	}
}

func TestPollEventsAndFD(t *testing.T) {
	c := fastConfig("ev-poll")
	c.EventQueue = true
	c.LogLevel = LogWarn // no log line among the events checked below
	m := create(t, c)
	fd, err := m.EventFD()
	if err != nil || fd < 0 {
		t.Fatalf("EventFD: %d, %v", fd, err)
	}
	waitFor(t, "the fd readable (local join)", func() bool { return fdReadable(fd) })
	buf := make([]Event, 8)
	n, err := m.PollEvents(buf)
	if err != nil || n < 1 || buf[0].Kind != EventKindMember || buf[0].Node.Name != "ev-poll" {
		t.Fatalf("PollEvents: %d, %v, %+v", n, err, buf[0])
	}
	if fdReadable(fd) {
		t.Error("the fd is still readable after the queue was emptied")
	}
	first, _ := m.QueueBroadcast("k", []byte("x"))
	m.QueueBroadcast("k", []byte("y")) // replaces the first
	waitFor(t, "the fd readable (an outcome)", func() bool { return fdReadable(fd) })
	if n, _ = m.PollEvents(buf); n != 1 || buf[0].Kind != EventKindBroadcastDone ||
		buf[0].ID != first || buf[0].Outcome != BroadcastReplaced {
		t.Errorf("PollEvents: %d, %+v", n, buf[0])
	}
	m.Close()
	if _, err := m.PollEvents(buf); err != ErrClosed {
		t.Errorf("PollEvents after Close: %v", err)
	}
}

func TestEventQueueRefusals(t *testing.T) {
	c := fastConfig("ev-refuse")
	c.EventQueue = true
	c.Events = &counter{}
	if _, err := Create(c); err == nil {
		t.Fatal("Create accepted EventQueue with an EventDelegate")
	} else if e, ok := err.(*Error); !ok || e.Status != StatusInvalid {
		t.Errorf("Create: %v", err)
	}
	m := create(t, fastConfig("ev-callbacks"))
	if _, err := m.EventFD(); err == nil {
		t.Error("EventFD without the queue succeeded")
	} else if e := err.(*Error); e.Status != StatusState {
		t.Errorf("EventFD: %v", err)
	}
	if _, err := m.PollEvents(make([]Event, 4)); err == nil {
		t.Error("PollEvents without the queue succeeded")
	}
}

// A channel nobody reads never blocks the protocol: the library's queue fills up to its
// bound and counts the rest; Close does not wait for the blocked sender.
func TestEventChannelFullNeverBlocks(t *testing.T) {
	c := fastConfig("ev-full")
	ch := make(chan Event) // unbuffered, not read until the end
	c.EventCh = ch
	c.MaxQueuedCallbacks = 20
	m := create(t, c)
	for i := 0; i < 200; i++ {
		if _, err := m.QueueBroadcast("same", []byte("x")); err != nil {
			t.Fatalf("QueueBroadcast %d: %v", i, err)
		}
	}
	waitFor(t, "drops counted", func() bool {
		_, dropped, _ := m.EventStats()
		return dropped > 0
	})
	if n := m.NumMembers(); n != 1 {
		t.Errorf("NumMembers %d while the channel is full", n)
	}
	got := 0
	for got < 5 {
		select {
		case <-ch:
			got++
		case <-time.After(deadline):
			t.Fatal("no event came through")
		}
	}
	closed := make(chan struct{})
	go func() { m.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(deadline):
		t.Fatal("Close waited for the blocked channel")
	}
}

// After Shutdown the goroutine delivers what the library kept (broadcast outcomes) and stops.
func TestEventChannelAfterShutdown(t *testing.T) {
	l := newEventLog()
	c := fastConfig("ev-shut")
	c.EventCh = l.ch
	m := create(t, c)
	l.until(t, "the local join", member(NodeJoin, "ev-shut", StateAlive))
	id, err := m.QueueBroadcast("", []byte("pending"))
	if err != nil {
		t.Fatal(err)
	}
	m.Shutdown()
	l.until(t, "the pending broadcast dropped at shutdown", func(ev Event) bool {
		return ev.Kind == EventKindBroadcastDone && ev.ID == id && ev.Outcome == BroadcastDropped
	})
}

// BenchmarkEventPull: the cost per event taken from the queue in batches of 64 (one cgo
// call per batch; Node copied as in the callback path), to compare with
// BenchmarkEventCallback. The events (membership updates of the local node, made by
// SetMeta) are produced with the timer stopped.
//
//	go test -run '^$' -bench 'Event(Pull|Callback)'
func BenchmarkEventPull(b *testing.B) {
	c := fastConfig("go-bench-pull")
	c.EventQueue = true
	c.MaxQueuedCallbacks = 1 << 20
	m, err := Create(c)
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	buf := make([]Event, 64)
	for n, _ := m.PollEvents(buf); n > 0; n, _ = m.PollEvents(buf) {
	}
	const chunk = 4096
	var pulling time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; {
		want := b.N - done
		if want > chunk {
			want = chunk
		}
		b.StopTimer()
		for i := 0; i < want; i++ {
			if err := m.SetMeta([]byte{byte(i), byte(i >> 8)}, time.Second); err != nil {
				b.Fatal(err)
			}
		}
		if q, _, _ := m.EventStats(); q < want {
			b.Fatalf("%d events queued, want %d", q, want)
		}
		b.StartTimer()
		start := time.Now()
		for got := 0; got < want; {
			n, err := m.PollEvents(buf[:min(64, want-got)])
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < n; i++ {
				if buf[i].Kind != EventKindMember || buf[i].Node == nil {
					b.Fatalf("event %+v", buf[i])
				}
			}
			got += n
		}
		pulling += time.Since(start)
		done += want
	}
	b.StopTimer()
	b.ReportMetric(float64(pulling.Nanoseconds())/float64(b.N), "ns/event")
}

func min(a, b int) int {
	if a < b {
		return a
	}
	return b
}
