// Package memberlist binds libmemberlist, a C++ implementation of hashicorp/memberlist
// (SWIM gossip with the Lifeguard extensions), through cgo. The API follows
// github.com/hashicorp/memberlist where it can:
//
//	conf := memberlist.DefaultLocalConfig()
//	conf.Name, conf.BindPort = "node-a", 0
//	list, err := memberlist.Create(conf)
//	defer list.Close()
//	n, err := list.Join([]string{"127.0.0.1:7946"})
//	for _, m := range list.Members() { fmt.Println(m.Name, m.Address()) }
//	list.Leave(time.Second); list.Shutdown()
//
// Build: the package links with `#cgo pkg-config: memberlist`; set PKG_CONFIG_PATH to the
// install prefix's lib/pkgconfig and, unless the library is in a system directory,
// CGO_LDFLAGS=-Wl,-rpath,<libdir> (or LD_LIBRARY_PATH at run time).
//
// Config.Transport replaces the library's UDP and TCP sockets with a transport of the
// application's (TLS, TCP only, a message bus): see Transport and the example TCPTransport.
//
// Every Memberlist method may be called from any goroutine. Shutdown stops the node; the
// queries still answer from the last state and the commands fail. Close frees the native
// memberlist (the garbage collector also frees one that was shut down and is no longer
// referenced; a running one is never freed behind your back); every call after Close fails
// with ErrClosed.
//
// # Callbacks
//
// The delegates in Config (EventDelegate, Delegate, MergeDelegate, AliveDelegate,
// ConflictDelegate, PingDelegate, BroadcastDelegate), MetricSink, the Logger and
// OnCallbackError are called by the library, under these rules:
//
//   - Notifications (EventDelegate, NotifyMsg, BroadcastDelegate, NotifyPingComplete,
//     NotifyConflict, MetricSink, the Logger) run on a library thread, one at a time, in
//     order. The hooks (NodeMeta, GetBroadcasts, LocalState, MergeRemoteState, NotifyMerge,
//     NotifyAlive, AckPayload) run inside the protocol, possibly on the goroutine of the
//     call that triggers them (Create, Join, UpdateNode, Ping). All of them must be quick:
//     a blocked notification holds up the ones after it, a blocked hook the protocol.
//   - From a callback, the queries (Members, NumMembers, LocalNode, GetHealthScore,
//     Metrics), QueueBroadcast and SendBestEffort work. Join, Ping, Leave, UpdateNode,
//     SetMeta and SendReliable of the same memberlist fail with StatusState (they would
//     wait for the callback). Shutdown and Close return at once and complete after the
//     callback and the protocol step that ran it.
//   - A panic is recovered; it never reaches C. It is counted (Memberlist.CallbackErrors)
//     and passed to Config.OnCallbackError as a *CallbackError (printed to stderr without
//     one); panic(nil) too. A panic in NotifyMerge or NotifyAlive vetoes.
//   - runtime.Goexit cannot be stopped in a callback: on a thread that came from C the Go
//     runtime aborts the process ("fatal error: internal lockOSThread error"), and the
//     binding can only print which callback did it. So t.Fatal, t.FailNow, t.Skip and
//     t.SkipNow (which call it) must not run in a callback: in tests use t.Error, or send
//     the failure on a channel and call t.Fatal in the test's goroutine.
//   - Once the native memberlist is freed (Close returned with no other call in flight, or
//     the last call in flight returned after Close) no callback of it runs any more.
package memberlist

/*
#cgo pkg-config: memberlist
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// cString is a C copy of s (free it with C.free). A NUL byte inside is refused: C would read
// a shorter name (docs/abi.md, "Strings").
func cString(s, what string) (*C.char, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return nil, &Error{StatusInvalid, fmt.Sprintf("%s %q contains a NUL byte", what, s)}
	}
	return C.CString(s), nil
}

// Status is a libmemberlist status code (StatusOK, StatusInvalid, ...).
type Status int32

// String is the library's static name of the status.
func (s Status) String() string { return C.GoString(C.ml_status_str(C.ml_status(s))) }

// Error is a failed library call: the status and the library's detail message.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("memberlist: %s: %s", e.Status, e.Message)
}

// lastError reads the thread-local message of a handle-less call: the caller must hold
// runtime.LockOSThread across the call and this read.
func lastError(st C.ml_status) error {
	if st == C.ML_OK {
		return nil
	}
	return &Error{Status(st), C.GoString(C.ml_last_error())}
}

var (
	versionOnce sync.Once
	versionErrV error
)

// versionErr checks the loaded library once (sync.OnceValue needs Go 1.21).
func versionErr() error {
	versionOnce.Do(func() { versionErrV = checkVersion() })
	return versionErrV
}

// checkVersion refuses a library older than the header the constants were generated from.
func checkVersion() error {
	var major, minor, patch C.uint32_t
	C.ml_version(&major, &minor, &patch)
	abi := C.ml_abi_version()
	if abi != mlABIVersion || major < mlVersionMajor || (major == mlVersionMajor && minor < mlVersionMinor) {
		return &Error{StatusVersion, fmt.Sprintf(
			"libmemberlist %d.%d.%d (ABI %d) is older than or incompatible with the bindings (%d.%d, ABI %d)",
			major, minor, patch, abi, mlVersionMajor, mlVersionMinor, mlABIVersion)}
	}
	return nil
}

// Runtime is a pool of I/O threads that several memberlists can share (Config.Runtime).
type Runtime struct{ rt *C.ml_runtime }

// NewRuntime starts threads I/O threads (0 = the library default). Free it with Close; it
// stays alive until every memberlist using it is shut down.
func NewRuntime(threads int) (*Runtime, error) {
	if err := versionErr(); err != nil {
		return nil, err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var rt *C.ml_runtime
	if err := lastError(C.ml_runtime_create(&rt, C.uint32_t(threads))); err != nil {
		return nil, err
	}
	return &Runtime{rt}, nil
}

// Close releases the caller's reference to the runtime.
func (r *Runtime) Close() {
	if r.rt != nil {
		C.ml_runtime_free(r.rt)
		r.rt = nil
	}
}

// Memberlist is one cluster member.
type Memberlist struct {
	st *callbackState // what the callbacks see; its error count outlives Close

	// A call must never wait for Close, nor Close free the native memberlist under a call
	// using it (a hook may call back in while a Join that triggered it is blocked): calls
	// count themselves in flight, Close marks the memberlist closed, and whoever drops the
	// count to zero destroys it (as C#'s SafeHandle does).
	mu       sync.Mutex
	ml       *C.ml_memberlist
	inflight int
	closed   bool
	stopped  bool // Shutdown succeeded: the finalizer may free it

	poll     poller        // PollEvents' C memory, freed with the native memberlist
	pumpDone chan struct{} // Config.EventCh's goroutine (events.go)
	pumpFile *os.File

	transport *transportState // Config.Transport's glue (transport.go), or nil
}

// ErrClosed is returned by every call on a Memberlist after Close.
var ErrClosed error = &Error{StatusClosed, "the Memberlist is closed (Close was called)"}

// Create binds the sockets, starts the protocol and fires NotifyJoin for the local node.
func Create(conf *Config) (*Memberlist, error) {
	if err := versionErr(); err != nil {
		return nil, err
	}
	var rt *C.ml_runtime
	if conf.Runtime != nil {
		if rt = conf.Runtime.rt; rt == nil {
			return nil, &Error{StatusClosed, "Config.Runtime is closed"}
		}
	}
	runtime.LockOSThread() // ml_last_error is thread-local
	defer runtime.UnlockOSThread()
	cfg, err := conf.toC()
	if err != nil {
		return nil, err
	}
	defer C.ml_config_free(cfg)
	pull := conf.EventQueue || conf.EventCh != nil
	if pull {
		if conf.Events != nil || conf.logFunc() != nil || conf.Conflict != nil ||
			conf.Broadcasts != nil || conf.MetricSink != nil {
			return nil, &Error{StatusInvalid, "with EventQueue or EventCh the notifications come as " +
				"Events: Events, Logger, LogOutput, Conflict, Broadcasts and MetricSink must be nil"}
		}
		if err := lastError(C.ml_config_set_event_queue(cfg, 1)); err != nil {
			return nil, err
		}
	}

	state := &callbackState{events: conf.Events, log: conf.logFunc(), delegate: conf.Delegate,
		merge: conf.Merge, alive: conf.Alive, conflict: conf.Conflict, ping: conf.Ping,
		broadcast: conf.Broadcasts, metric: conf.MetricSink, onError: conf.OnCallbackError}
	var ts *transportState
	if conf.Transport != nil {
		ts = newTransportState(conf.Transport, state, conf.TCPTimeout)
		addr, err := ts.address(conf)
		if err == nil {
			err = ts.set(cfg, addr)
		}
		if err != nil {
			ts.start(nil)
			ts.free()
			return nil, err
		}
	}
	h := cgo.NewHandle(state)
	liveHandles.Add(1)
	var cb C.ml_callbacks
	hooks := state.hooks()
	if pull {
		hooks |= C.ML_GO_PULL
	}
	C.ml_go_callbacks(&cb, C.uintptr_t(h), hooks)
	var ml *C.ml_memberlist
	// On failure the library calls user_data_free, which deletes the handle.
	if err := lastError(C.ml_memberlist_create(&ml, rt, cfg, &cb)); err != nil {
		if ts != nil { // the caller keeps the transport: not shut down
			ts.start(nil)
			ts.free()
		}
		return nil, err
	}
	m := &Memberlist{st: state, ml: ml, transport: ts}
	if ts != nil {
		ts.start(m)
	}
	if conf.EventCh != nil {
		if err := m.startPump(conf.EventCh); err != nil {
			m.Close()
			return nil, err
		}
	}
	runtime.SetFinalizer(m, (*Memberlist).finalize)
	return m, nil
}

// finalize frees a memberlist that was shut down and is no longer referenced. A running one
// is left running, as a goroutine would be: a network node must not vanish because a
// reference went out of scope.
func (m *Memberlist) finalize() {
	m.mu.Lock()
	stopped := m.stopped
	m.mu.Unlock()
	if stopped {
		go m.Close() // destroy may wait for callbacks: not on the finalizer goroutine
	}
}

func boolU32(b bool) C.uint32_t {
	if b {
		return 1
	}
	return 0
}

// acquire counts a call in flight and returns the native pointer, or ErrClosed.
func (m *Memberlist) acquire() (*C.ml_memberlist, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	m.inflight++
	return m.ml, nil
}

// release ends a call; the last one out after Close destroys the native memberlist (from
// one of its own callbacks the library completes that once the callback returns).
func (m *Memberlist) release() {
	m.mu.Lock()
	m.inflight--
	var ml *C.ml_memberlist
	if m.closed && m.inflight == 0 {
		ml, m.ml = m.ml, nil
	}
	m.mu.Unlock()
	if ml != nil {
		C.ml_memberlist_destroy(ml)
		m.poll.free() // no PollEvents can reach it now: they fail in acquire
		if m.transport != nil {
			m.transport.shutdown()
			m.transport.free()
		}
	}
}

// use runs f with the native pointer, or fails with ErrClosed after Close.
func (m *Memberlist) use(f func(ml *C.ml_memberlist) C.ml_status) error {
	ml, err := m.acquire()
	if err != nil {
		return err
	}
	defer m.release()
	if st := f(ml); st != C.ML_OK {
		return &Error{Status(st), C.GoString(C.ml_memberlist_last_error(ml))}
	}
	return nil
}

// Join contacts existing members ("host", "host:port", "[v6]:port", a DNS name, optionally
// prefixed "name/") and returns how many were reached. It fails only if none was.
func (m *Memberlist) Join(existing []string) (int, error) {
	if len(existing) == 0 {
		return 0, &Error{StatusInvalid, "no addresses to join"}
	}
	// A Go slice of C pointers may be passed to C (it holds no Go pointers).
	addrs := make([]*C.char, len(existing))
	for i, a := range existing {
		cs, err := cString(a, "address")
		if err != nil {
			return 0, err
		}
		addrs[i] = cs
		defer C.free(unsafe.Pointer(cs))
	}
	var joined C.uint32_t
	err := m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_join(ml, &addrs[0], C.size_t(len(addrs)), &joined)
	})
	return int(joined), err
}

// Members returns the alive and suspect members, the local node included (the last ones
// known after Shutdown, nil after Close).
func (m *Memberlist) Members() []*Node {
	var nodes []*Node
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		var list *C.ml_node_list
		st := C.ml_memberlist_members(ml, &list)
		if st != C.ML_OK {
			return st
		}
		defer C.ml_node_list_free(list)
		nodes = nodesFromList(list)
		return st
	})
	return nodes
}

// NumMembers returns the number of alive and suspect members (0 after Close or on a failure).
func (m *Memberlist) NumMembers() int {
	var n C.size_t
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_get_num_members(ml, &n)
	})
	return int(n)
}

// LocalNode returns the local node (its Port is the one actually bound; nil after Close).
func (m *Memberlist) LocalNode() *Node {
	var out *Node
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		var node *C.ml_node
		st := C.ml_memberlist_local_node(ml, &node)
		if st == C.ML_OK {
			out = nodeFromC(node)
			C.ml_node_free(node)
		}
		return st
	})
	return out
}

// GetHealthScore returns Lifeguard's health score: 0 is healthy, higher is worse (-1 after
// Close or on a failure).
func (m *Memberlist) GetHealthScore() int {
	score := -1
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		var s C.int32_t
		st := C.ml_memberlist_get_health_score(ml, &s)
		if st == C.ML_OK {
			score = int(s)
		}
		return st
	})
	return score
}

// Ping sends a UDP ping to the named member and returns the round-trip time.
// (hashicorp's Ping also takes the address; here the name is enough.)
func (m *Memberlist) Ping(node string) (time.Duration, error) {
	name, err := cString(node, "node name")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(name))
	var rtt C.uint64_t
	err = m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_ping(ml, name, &rtt) })
	return time.Duration(rtt) * time.Microsecond, err
}

// Leave broadcasts that this node leaves and waits until that propagated or timeout passed.
func (m *Memberlist) Leave(timeout time.Duration) error {
	ms, err := millis(timeout, "leave timeout")
	if err != nil {
		return err
	}
	return m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_leave(ml, ms) })
}

// Shutdown stops the node without leaving (peers detect a failure unless Leave ran first).
// Afterwards the queries (Members, NumMembers, LocalNode, GetHealthScore, Metrics,
// Keyring().GetKeys) answer from the last state, and the commands (Join, Ping, Leave,
// UpdateNode, SetMeta, Send*, QueueBroadcast, key changes, SetGossipVerify) fail.
// Called from one of the node's own callbacks, it returns at once and the node stops from
// another goroutine once the protocol step that ran the callback is over. Idempotent; nil
// after Close. Close (or the garbage collector, once a shut-down Memberlist is no longer
// referenced) frees the native memberlist.
func (m *Memberlist) Shutdown() error {
	err := m.shutdown()
	var e *Error
	if errors.As(err, &e) && e.Status == StatusState {
		// Inside one of our callbacks the library cannot stop the node (the step that called
		// us may hold the node's lock): do it from another goroutine, which waits for that step.
		go m.shutdown()
		return nil
	}
	return err
}

func (m *Memberlist) shutdown() error {
	err := m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_shutdown(ml) })
	if err == ErrClosed {
		return nil
	}
	if err == nil {
		m.mu.Lock()
		m.stopped = true
		m.mu.Unlock()
		m.wakePump()
		if m.transport != nil { // as hashicorp's Shutdown, which shuts its transport down
			return m.transport.shutdown()
		}
	}
	return err
}

// Close shuts the node down if needed (without leaving) and frees the native memberlist once
// no call is using it: right away, or when the last call in flight returns (Close does not
// wait for those). Called from one of the node's own callbacks, the freeing completes after
// that callback returns. Every later call fails with ErrClosed; the queries without an error
// result return nothing (nil, 0, or -1 for GetHealthScore). Idempotent.
func (m *Memberlist) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.inflight++ // Close's own use of ml, below
	m.stopPump()
	if m.transport != nil {
		m.transport.stop()
	}
	ml := m.ml
	m.mu.Unlock()
	// Stopping first makes blocking calls in flight (Join, Leave, Ping) return soon, so the
	// last of them frees the handle. From our own callback this fails (StatusState): the
	// destroy then stops the node.
	C.ml_memberlist_shutdown(ml)
	m.release()
	return nil
}

// CallbackErrors returns how many callbacks of this memberlist panicked (each one also went
// to Config.OnCallbackError, or to stderr without it). It still answers after Close.
func (m *Memberlist) CallbackErrors() uint64 { return m.st.errCount.Load() }

// nodesFromList copies a borrowed node list.
func nodesFromList(list *C.ml_node_list) []*Node {
	n := C.ml_node_list_len(list)
	nodes := make([]*Node, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		if node := C.ml_node_list_get(list, i); node != nil {
			nodes = append(nodes, nodeFromC(node))
		}
	}
	return nodes
}

func millis(d time.Duration, what string) (C.uint32_t, error) {
	ms := d.Milliseconds()
	if ms < 0 || ms > 0xffffffff {
		return 0, &Error{StatusInvalid, fmt.Sprintf("%s %v out of range", what, d)}
	}
	return C.uint32_t(ms), nil
}

// LibraryVersion returns the loaded library's "major.minor.patch".
func LibraryVersion() string { return C.GoString(C.ml_version_string()) }

// benchEventRoundTrip calls the event trampoline n times from a non-Go thread with the local
// node and returns the time per callback (benchmark support).
func benchEventRoundTrip(m *Memberlist, events EventDelegate, n int) (time.Duration, error) {
	var node *C.ml_node
	err := m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_local_node(ml, &node) })
	if err != nil {
		return 0, err
	}
	defer C.ml_node_free(node)
	h := cgo.NewHandle(&callbackState{events: events})
	liveHandles.Add(1)
	cb := (*C.ml_callbacks)(C.calloc(1, C.sizeof_ml_callbacks))
	defer C.free(unsafe.Pointer(cb))
	C.ml_go_callbacks(cb, C.uintptr_t(h), C.ML_GO_EVENTS)
	ns := C.ml_go_bench_fire(cb, node, C.uint32_t(n))
	goMemberlistFree(C.uintptr_t(h))
	return time.Duration(uint64(ns) / uint64(n)), nil
}

// benchMessageRoundTrip calls the on_message trampoline n times from a non-Go thread with a
// size-byte payload and returns the time per callback (benchmark support).
func benchMessageRoundTrip(d Delegate, size, n int) time.Duration {
	h := cgo.NewHandle(&callbackState{delegate: d})
	liveHandles.Add(1)
	cb := (*C.ml_callbacks)(C.calloc(1, C.sizeof_ml_callbacks))
	defer C.free(unsafe.Pointer(cb))
	C.ml_go_callbacks(cb, C.uintptr_t(h), C.ML_GO_DELEGATE)
	data := C.calloc(C.size_t(size+1), 1)
	defer C.free(data)
	ns := C.ml_go_bench_fire_message(cb, (*C.uint8_t)(data), C.size_t(size), C.uint32_t(n))
	goMemberlistFree(C.uintptr_t(h))
	return time.Duration(uint64(ns) / uint64(n))
}
