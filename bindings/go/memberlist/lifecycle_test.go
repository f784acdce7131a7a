package memberlist

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Shutdown, Close and callbacks that call them: nothing may deadlock, every native
// memberlist is freed exactly once, and calls after Close fail with ErrClosed.

type mergeFunc func([]*Node) error

func (f mergeFunc) NotifyMerge(peers []*Node) error { return f(peers) }

// joinWithin runs m.Join on another goroutine and fails the test if it does not return.
func joinWithin(t *testing.T, m *Memberlist, addr string) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := m.Join([]string{addr})
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(deadline):
		t.Fatal("Join hung")
		return nil
	}
}

// state reads the binding's own view of m: closed (Close called), freed (native memberlist
// destroyed), stopped (Shutdown succeeded).
func state(m *Memberlist) (closed, freed, stopped bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed, m.ml == nil, m.stopped
}

func isFreed(m *Memberlist) func() bool {
	return func() bool { _, freed, _ := state(m); return freed }
}

func isStopped(m *Memberlist) func() bool {
	return func() bool { _, _, stopped := state(m); return stopped }
}

// closeOrShutdown is the call under test in the subtests below.
type closeOrShutdown struct {
	name string
	call func(*Memberlist)
}

var stopCalls = []closeOrShutdown{
	{"Shutdown", func(m *Memberlist) { m.Shutdown() }},
	{"Close", func(m *Memberlist) { m.Close() }},
}

// TestStopInsideNotifyMergeDuringJoin: Shutdown or Close called from NotifyMerge, which runs
// inside the Join that needs it, returns at once; the node stops (Shutdown) or is freed
// (Close) once the Join is over. With a lock held across the Join, this hung forever.
func TestStopInsideNotifyMergeDuringJoin(t *testing.T) {
	for _, sc := range stopCalls {
		t.Run(sc.name, func(t *testing.T) {
			seed := create(t, fastConfig("go-mstop-seed-"+sc.name))
			var self atomic.Pointer[Memberlist]
			var calls atomic.Int64
			c := fastConfig("go-mstop-" + sc.name)
			c.Merge = mergeFunc(func([]*Node) error {
				if m := self.Load(); m != nil && calls.Add(1) == 1 {
					sc.call(m)
				}
				return nil
			})
			a := create(t, c)
			self.Store(a)
			joinWithin(t, a, seed.LocalNode().Address()) // its result depends on the timing
			if calls.Load() == 0 {
				t.Fatal("NotifyMerge never ran")
			}
			if sc.name == "Close" {
				// The Join was the last call in flight: it freed the memberlist on its way out.
				if _, freed, _ := state(a); !freed {
					t.Error("not freed when the last call returned")
				}
				if _, err := a.Join([]string{seed.LocalNode().Address()}); err != ErrClosed {
					t.Errorf("Join after Close: %v", err)
				}
			} else {
				waitFor(t, "the node stopped after the Join", isStopped(a))
			}
		})
	}
}

// TestHookQueryWhileStopPending: a hook running inside Join calls NumMembers (allowed) while
// another goroutine's Shutdown or Close is pending. With an RWMutex held across the Join, the
// pending writer blocked the hook's read lock and nobody could move.
func TestHookQueryWhileStopPending(t *testing.T) {
	for _, sc := range stopCalls {
		t.Run(sc.name, func(t *testing.T) {
			seed := create(t, fastConfig("go-qstop-seed-"+sc.name))
			var self atomic.Pointer[Memberlist]
			var calls atomic.Int64
			var answered atomic.Bool
			c := fastConfig("go-qstop-" + sc.name)
			c.Merge = mergeFunc(func([]*Node) error {
				m := self.Load()
				if m == nil || calls.Add(1) != 1 {
					return nil
				}
				stopped := make(chan struct{})
				go func() { sc.call(m); close(stopped) }()
				// Let the other goroutine get as far as it can (with a lock, to the point of
				// blocking us): a bounded grace, not the synchronisation the test relies on.
				select {
				case <-stopped:
				case <-time.After(300 * time.Millisecond):
				}
				m.NumMembers()
				answered.Store(true)
				return nil
			})
			a := create(t, c)
			self.Store(a)
			joinWithin(t, a, seed.LocalNode().Address())
			if !answered.Load() {
				t.Fatal("the hook did not finish")
			}
			if sc.name == "Close" {
				waitFor(t, "freed after the Join", isFreed(a))
			} else {
				waitFor(t, "stopped after the Join", isStopped(a))
			}
		})
	}
}

// TestCloseDefersDestroyToLastCall: Close during a blocked Join marks the memberlist closed
// at once (new calls fail with ErrClosed) and frees it only when the Join has returned.
func TestCloseDefersDestroyToLastCall(t *testing.T) {
	seed := create(t, fastConfig("go-defer-seed"))
	entered, unblock := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	c := fastConfig("go-defer")
	c.Merge = mergeFunc(func([]*Node) error {
		if calls.Add(1) == 1 {
			close(entered)
			<-unblock // holds the Join in flight
		}
		return nil
	})
	a := create(t, c)
	joinDone := make(chan error, 1)
	go func() {
		_, err := a.Join([]string{seed.LocalNode().Address()})
		joinDone <- err
	}()
	select {
	case <-entered:
	case <-time.After(deadline):
		t.Fatal("NotifyMerge never ran")
	}
	closeDone := make(chan struct{})
	go func() { a.Close(); close(closeDone) }()
	waitFor(t, "Close marked it closed", func() bool { closed, _, _ := state(a); return closed })
	if a.NumMembers() != 0 || a.LocalNode() != nil {
		t.Error("queries after Close should answer nothing")
	}
	if _, freed, _ := state(a); freed {
		t.Fatal("freed while a Join was in flight")
	}
	close(unblock)
	select {
	case <-joinDone:
	case <-time.After(deadline):
		t.Fatal("Join did not return")
	}
	select {
	case <-closeDone:
	case <-time.After(deadline):
		t.Fatal("Close did not return")
	}
	waitFor(t, "freed once the Join returned", isFreed(a))
}

// TestAfterShutdownAndClose: after Shutdown the queries answer from the last state and the
// blocking commands fail; after Close every call fails with ErrClosed (or answers nothing,
// for the queries without an error result).
func TestAfterShutdownAndClose(t *testing.T) {
	a := create(t, fastConfig("go-after-a"))
	b := create(t, fastConfig("go-after-b"))
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "two members at b", func() bool { return b.NumMembers() == 2 })
	if err := b.Shutdown(); err != nil {
		t.Fatal(err)
	}
	// (Whether a was still alive in b's view at that instant is the protocol's business.)
	if !strings.Contains(names(b), "go-after-b") || b.NumMembers() != len(b.Members()) {
		t.Errorf("members after Shutdown: %s, %d", names(b), b.NumMembers())
	}
	if n := b.LocalNode(); n == nil || n.Name != "go-after-b" {
		t.Errorf("LocalNode after Shutdown: %v", n)
	}
	if b.GetHealthScore() < 0 {
		t.Error("GetHealthScore after Shutdown")
	}
	if _, err := b.Metrics(); err != nil {
		t.Errorf("Metrics after Shutdown: %v", err)
	}
	if _, err := b.Keyring().GetKeys(); err != nil {
		t.Errorf("GetKeys after Shutdown: %v", err)
	}
	if _, err := b.Join([]string{a.LocalNode().Address()}); err == nil {
		t.Error("Join after Shutdown succeeded")
	}
	if _, err := b.Ping("go-after-a"); err == nil {
		t.Error("Ping after Shutdown succeeded")
	}
	// Commands fail with StatusClosed after Shutdown, as the library returns ML_E_CLOSED.
	shutKey := make([]byte, 16)
	for name, call := range map[string]func() error{
		"AddKey":          func() error { return b.Keyring().AddKey(shutKey) },
		"UseKey":          func() error { return b.Keyring().UseKey(shutKey) },
		"RemoveKey":       func() error { return b.Keyring().RemoveKey(shutKey) },
		"SetGossipVerify": func() error { return b.SetGossipVerify(true, true) },
	} {
		var e *Error
		if err := call(); !errors.As(err, &e) || e.Status != StatusClosed {
			t.Errorf("%s after Shutdown: %v, want StatusClosed", name, err)
		}
	}
	if err := b.Shutdown(); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}

	b.Close()
	aNode := a.LocalNode()
	key := make([]byte, 16)
	calls := map[string]func() error{
		"Join":            func() error { _, err := b.Join([]string{aNode.Address()}); return err },
		"Ping":            func() error { _, err := b.Ping(aNode.Name); return err },
		"Leave":           func() error { return b.Leave(time.Second) },
		"UpdateNode":      func() error { return b.UpdateNode(time.Second) },
		"SetMeta":         func() error { return b.SetMeta([]byte("m"), time.Second) },
		"SendBestEffort":  func() error { return b.SendBestEffort(aNode, []byte("x")) },
		"SendReliable":    func() error { return b.SendReliable(aNode, []byte("x")) },
		"SendToAddress":   func() error { return b.SendToAddress(Address{Addr: aNode.Address()}, []byte("x")) },
		"QueueBroadcast":  func() error { _, err := b.QueueBroadcast("", []byte("x")); return err },
		"AddKey":          func() error { return b.Keyring().AddKey(key) },
		"UseKey":          func() error { return b.Keyring().UseKey(key) },
		"RemoveKey":       func() error { return b.Keyring().RemoveKey(key) },
		"GetKeys":         func() error { _, err := b.Keyring().GetKeys(); return err },
		"SetGossipVerify": func() error { return b.SetGossipVerify(true, true) },
		"Metrics":         func() error { _, err := b.Metrics(); return err },
		"Prometheus":      func() error { _, err := b.Prometheus(); return err },
	}
	for name, call := range calls {
		if err := call(); err != ErrClosed {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	var e *Error
	if !errors.As(ErrClosed, &e) || e.Status != StatusClosed {
		t.Errorf("ErrClosed is %v", ErrClosed)
	}
	if b.Members() != nil || b.NumMembers() != 0 || b.LocalNode() != nil || b.GetHealthScore() != -1 ||
		b.NumQueuedBroadcasts() != 0 || b.Keyring().GetPrimaryKey() != nil {
		t.Error("queries after Close should answer nothing")
	}
	if b.Shutdown() != nil || b.Close() != nil || b.CallbackErrors() != 0 {
		t.Error("Shutdown, Close and CallbackErrors after Close")
	}
}

// TestClosedRuntimeRefused: Create refuses a closed Runtime instead of silently using the
// default one.
func TestClosedRuntimeRefused(t *testing.T) {
	rt, err := NewRuntime(1)
	if err != nil {
		t.Fatal(err)
	}
	c := fastConfig("go-rt-open")
	c.Runtime = rt
	m := create(t, c) // an open one works
	m.Close()
	rt.Close()
	before := liveHandles.Load()
	c = fastConfig("go-rt-closed")
	c.Runtime = rt
	var e *Error
	if _, err := Create(c); !errors.As(err, &e) || e.Status != StatusClosed {
		t.Errorf("Create with a closed Runtime: %v", err)
	}
	if liveHandles.Load() != before {
		t.Error("a refused Create leaked its handle")
	}
}

// TestFinalizerFreesOnlyShutDownNodes: an unreferenced Memberlist that was shut down is freed
// by the collector; a running one is left running.
func TestFinalizerFreesOnlyShutDownNodes(t *testing.T) {
	before := liveHandles.Load()
	var runningAddr string
	func() {
		stopped, err := Create(fastConfig("go-fin-stopped"))
		if err != nil {
			t.Fatal(err)
		}
		stopped.Shutdown()
		running, err := Create(fastConfig("go-fin-running"))
		if err != nil {
			t.Fatal(err)
		}
		runningAddr = running.LocalNode().Address()
	}()
	waitFor(t, "the shut-down node freed by the collector", func() bool {
		runtime.GC()
		return liveHandles.Load() == before+1
	})
	// The running node still answers (it leaks until the process exits, as a goroutine would).
	peer := create(t, fastConfig("go-fin-peer"))
	if _, err := peer.Join([]string{runningAddr}); err != nil {
		t.Errorf("the unreferenced running node stopped: %v", err)
	}
}

// panicDelegate panics with nil in MergeRemoteState (and sends state so that it runs).
type panicDelegate struct{}

func (panicDelegate) NodeMeta(int) []byte             { return nil }
func (panicDelegate) NotifyMsg([]byte)                {}
func (panicDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (panicDelegate) LocalState(bool) []byte          { return []byte("state") }
func (panicDelegate) MergeRemoteState([]byte, bool)   { panic(nil) }

var errBoom = errors.New("boom")

type panicJoin struct{ recorder }

func (p *panicJoin) NotifyJoin(*Node) { panic(errBoom) }

// TestCallbackErrorsReported: panics in callbacks, panic(nil) included, reach
// Config.OnCallbackError as *CallbackError and are counted; a panicking veto hook vetoes with
// the panic as the reason.
func TestCallbackErrorsReported(t *testing.T) {
	errs := make(chan *CallbackError, 64)
	c := fastConfig("go-cberr-a")
	c.Delegate, c.Events = panicDelegate{}, &panicJoin{}
	c.OnCallbackError = func(e *CallbackError) {
		select {
		case errs <- e:
		default:
		}
	}
	a := create(t, c) // NotifyJoin of the local node panics
	bc := fastConfig("go-cberr-b")
	bc.Delegate = panicDelegate{}
	bc.OnCallbackError = func(*CallbackError) {}
	b := create(t, bc)
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		t.Fatal(err)
	}
	var gotNil, gotBoom bool
	timeout := time.After(deadline)
	for !gotNil || !gotBoom {
		select {
		case e := <-errs:
			switch {
			case e.Callback == "Delegate.MergeRemoteState" && e.Value == nil:
				gotNil = strings.Contains(e.Error(), "panic(nil)") && len(e.Stack) > 0
			case e.Callback == "EventDelegate.NotifyJoin":
				gotBoom = errors.Is(e, errBoom)
			}
		case <-timeout:
			t.Fatalf("reports: panic(nil) %v, NotifyJoin %v", gotNil, gotBoom)
		}
	}
	if a.CallbackErrors() < 2 {
		t.Errorf("counted %d at a", a.CallbackErrors())
	}
	waitFor(t, "b's own panic(nil) counted", func() bool { return b.CallbackErrors() >= 1 })
	waitFor(t, "the cluster still works", func() bool { return a.NumMembers() == 2 && b.NumMembers() == 2 })

	vc := fastConfig("go-cberr-veto")
	vc.Merge = mergeFunc(func([]*Node) error { panic("no merge today") })
	vc.OnCallbackError = func(*CallbackError) {}
	v := create(t, vc)
	_, err := v.Join([]string{a.LocalNode().Address()})
	if err == nil || !strings.Contains(err.Error(), "panic in MergeDelegate.NotifyMerge: no merge today") {
		t.Errorf("Join with a panicking NotifyMerge: %v", err)
	}
	if v.CallbackErrors() < 1 {
		t.Errorf("veto panics counted: %d", v.CallbackErrors())
	}
}

type goexitOnJoin struct{ recorder }

func (*goexitOnJoin) NotifyJoin(*Node) { runtime.Goexit() }

// TestGoexitInCallbackIsReported: runtime.Goexit (what t.Fatal calls) in a callback cannot be
// survived on a library thread; the process dies, but says which callback did it. Runs in a
// child process: this test binary, re-executed.
func TestGoexitInCallbackIsReported(t *testing.T) {
	if os.Getenv("ML_GO_TEST_GOEXIT") == "1" {
		c := fastConfig("go-goexit")
		c.Events = &goexitOnJoin{}
		if _, err := Create(c); err != nil { // NotifyJoin of the local node calls Goexit
			t.Fatal(err)
		}
		time.Sleep(deadline) // not synchronisation: the runtime aborts the process before
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoexitInCallbackIsReported$", "-test.count=1")
	cmd.Env = append(os.Environ(), "ML_GO_TEST_GOEXIT=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the child survived Goexit in a callback (then document that):\n%s", out)
	}
	if !strings.Contains(string(out), "memberlist: EventDelegate.NotifyJoin called runtime.Goexit") {
		t.Errorf("no report of the Goexit:\n%s", out)
	}
}
