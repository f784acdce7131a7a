package memberlist

/*
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime/cgo"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

// EventDelegate receives membership events, as hashicorp/memberlist's does. Methods run on
// a library thread, one at a time, in order; the *Node is the delegate's to keep. They may
// call non-blocking Memberlist methods (Members, NumMembers, LocalNode, GetHealthScore);
// Join, Ping and Leave of the same memberlist fail there with StatusState. A panic is
// recovered and reported (Config.OnCallbackError); runtime.Goexit, which t.Fatal calls,
// aborts the process: see "Callbacks" in the package doc. The same holds for every
// delegate below.
type EventDelegate interface {
	NotifyJoin(*Node)
	NotifyLeave(*Node)
	NotifyUpdate(*Node)
}

// NodeEvent is a single event sent by ChannelEventDelegate.
type NodeEvent struct {
	Event NodeEventType
	Node  *Node
}

// ChannelEventDelegate sends events to a channel. Keep it drained: a full channel blocks
// the library's callback thread.
type ChannelEventDelegate struct {
	Ch chan<- NodeEvent
}

func (c *ChannelEventDelegate) NotifyJoin(n *Node)   { c.Ch <- NodeEvent{NodeJoin, n} }
func (c *ChannelEventDelegate) NotifyLeave(n *Node)  { c.Ch <- NodeEvent{NodeLeave, n} }
func (c *ChannelEventDelegate) NotifyUpdate(n *Node) { c.Ch <- NodeEvent{NodeUpdate, n} }

// NodeEventType is the kind of a membership event.
type NodeEventType int

// Delegate is the application's hook into gossip, as hashicorp/memberlist's Delegate.
// NodeMeta, GetBroadcasts, LocalState and MergeRemoteState run synchronously inside the
// protocol on a library thread: they must be quick and must not block; from there the
// queries and QueueBroadcast / SendBestEffort work, while Join, Ping, Leave, UpdateNode,
// SetMeta and SendReliable fail with StatusState. NotifyMsg is delivered like events. The
// byte slices passed in are the delegate's to keep. Never call runtime.Goexit (t.Fatal)
// here: it aborts the process (see "Callbacks" in the package doc).
type Delegate interface {
	// NodeMeta returns the local node's metadata, at most limit bytes (longer is refused).
	NodeMeta(limit int) []byte
	// NotifyMsg receives a user message (SendBestEffort, SendReliable, SendToAddress).
	NotifyMsg([]byte)
	// GetBroadcasts returns messages to piggyback on a packet: their lengths plus overhead
	// each must fit limit; the ones that do not fit are dropped.
	GetBroadcasts(overhead, limit int) [][]byte
	// LocalState is sent to a peer in a push/pull (join: during a Join).
	LocalState(join bool) []byte
	// MergeRemoteState receives the state a peer sent in a push/pull.
	MergeRemoteState(buf []byte, join bool)
}

// MergeDelegate may veto a join: a non-nil error keeps the peer's nodes out and Join fails
// with StatusRejected (the error's text is the reason).
type MergeDelegate interface {
	NotifyMerge(peers []*Node) error
}

// AliveDelegate may keep a node out of the cluster: a non-nil error refuses its alive
// message.
type AliveDelegate interface {
	NotifyAlive(peer *Node) error
}

// ConflictDelegate hears of a node claiming a known name from another address.
type ConflictDelegate interface {
	NotifyConflict(existing, other *Node)
}

// PingDelegate attaches a payload to acks and hears of completed probes.
type PingDelegate interface {
	AckPayload() []byte
	NotifyPingComplete(other *Node, rtt time.Duration, payload []byte)
}

// BroadcastDelegate receives the broadcasts queued with QueueBroadcast (each once per node)
// and the outcome of this node's own broadcasts. Not in hashicorp/memberlist, whose
// broadcasts are the Delegate's business.
type BroadcastDelegate interface {
	NotifyBroadcast(origin, name string, msg []byte)
	NotifyBroadcastDone(id uint64, outcome BroadcastOutcome)
}

// BroadcastOutcome says how a queued broadcast ended.
type BroadcastOutcome int

const (
	BroadcastDelivered BroadcastOutcome = mlBroadcastDelivered // fully retransmitted
	BroadcastReplaced  BroadcastOutcome = mlBroadcastReplaced  // a newer one with its name took its place
	BroadcastDropped   BroadcastOutcome = mlBroadcastDropped   // pruned, reset or shut down first
	// Fully retransmitted, then kept for repair until its horizon passed: every member that
	// could reach a node holding it for a push/pull meanwhile has it (MaxRepairBroadcasts).
	BroadcastSettled BroadcastOutcome = mlBroadcastSettled
)

func (o BroadcastOutcome) String() string {
	switch o {
	case BroadcastDelivered:
		return "delivered"
	case BroadcastReplaced:
		return "replaced"
	case BroadcastSettled:
		return "settled"
	}
	return "dropped"
}

// callbackState is what a memberlist's user_data (a cgo.Handle) refers to.
type callbackState struct {
	events    EventDelegate
	log       func(LogLevel, string)
	delegate  Delegate
	merge     MergeDelegate
	alive     AliveDelegate
	conflict  ConflictDelegate
	ping      PingDelegate
	broadcast BroadcastDelegate
	metric    func(name string, kind MetricKind, value float64)
	onError   func(*CallbackError)
	errCount  atomic.Uint64 // callbacks that panicked
}

// hooks is the ML_GO_* mask of the trampolines this state needs.
func (s *callbackState) hooks() C.uint {
	var h C.uint
	set := func(on bool, bit C.uint) {
		if on {
			h |= bit
		}
	}
	set(s.events != nil, C.ML_GO_EVENTS)
	set(s.log != nil, C.ML_GO_LOG)
	set(s.delegate != nil, C.ML_GO_DELEGATE)
	set(s.merge != nil, C.ML_GO_MERGE)
	set(s.alive != nil, C.ML_GO_ALIVE)
	set(s.conflict != nil, C.ML_GO_CONFLICT)
	set(s.ping != nil, C.ML_GO_PING)
	set(s.broadcast != nil, C.ML_GO_BROADCAST)
	set(s.metric != nil, C.ML_GO_METRIC)
	return h
}

func stateOf(userData C.uintptr_t) *callbackState {
	return cgo.Handle(userData).Value().(*callbackState)
}

// goBytes copies a borrowed C view.
func goBytes(data *C.uint8_t, n C.size_t) []byte {
	if data == nil || n == 0 {
		return []byte{}
	}
	return C.GoBytes(unsafe.Pointer(data), C.int(n))
}

// appendBuffer hands b to the library; the slice is only read during the call.
func appendBuffer(out *C.ml_buffer, b []byte) {
	if len(b) > 0 {
		C.ml_buffer_append(out, (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b)))
	}
}

//export goMemberlistNodeMeta
func goMemberlistNodeMeta(userData C.uintptr_t, out *C.ml_buffer, limit C.size_t) {
	st := stateOf(userData)
	st.guard("Delegate.NodeMeta", func() { appendBuffer(out, st.delegate.NodeMeta(int(limit))) })
}

//export goMemberlistGetBroadcasts
func goMemberlistGetBroadcasts(userData C.uintptr_t, sink *C.ml_message_sink, overhead, limit C.size_t) {
	st := stateOf(userData)
	st.guard("Delegate.GetBroadcasts", func() {
		for _, msg := range st.delegate.GetBroadcasts(int(overhead), int(limit)) {
			var p *C.uint8_t
			if len(msg) > 0 {
				p = (*C.uint8_t)(unsafe.Pointer(&msg[0]))
			}
			if C.ml_message_sink_add(sink, p, C.size_t(len(msg))) != C.ML_OK {
				return
			}
		}
	})
}

//export goMemberlistLocalState
func goMemberlistLocalState(userData C.uintptr_t, join C.uint32_t, out *C.ml_buffer) {
	st := stateOf(userData)
	st.guard("Delegate.LocalState", func() { appendBuffer(out, st.delegate.LocalState(join != 0)) })
}

//export goMemberlistMergeRemoteState
func goMemberlistMergeRemoteState(userData C.uintptr_t, data *C.uint8_t, n C.size_t, join C.uint32_t) {
	st := stateOf(userData)
	st.guard("Delegate.MergeRemoteState", func() { st.delegate.MergeRemoteState(goBytes(data, n), join != 0) })
}

//export goMemberlistMessage
func goMemberlistMessage(userData C.uintptr_t, data *C.uint8_t, n C.size_t) {
	st := stateOf(userData)
	st.guard("Delegate.NotifyMsg", func() { st.delegate.NotifyMsg(goBytes(data, n)) })
}

// veto turns a hook's error into the library's non-zero answer plus a reason. A panic
// vetoes too (the safe side for an admission hook).
func (s *callbackState) veto(reason *C.ml_buffer, what string, f func() error) C.int32_t {
	var err error
	if cbErr := s.guard(what, func() { err = f() }); cbErr != nil {
		err = cbErr
	}
	if err != nil {
		appendBuffer(reason, []byte(err.Error()))
		return 1
	}
	return 0
}

//export goMemberlistNotifyMerge
func goMemberlistNotifyMerge(userData C.uintptr_t, peers *C.ml_node_list, reason *C.ml_buffer) C.int32_t {
	st := stateOf(userData)
	return st.veto(reason, "MergeDelegate.NotifyMerge", func() error {
		return st.merge.NotifyMerge(nodesFromList(peers))
	})
}

//export goMemberlistNotifyAlive
func goMemberlistNotifyAlive(userData C.uintptr_t, peer *C.ml_node, reason *C.ml_buffer) C.int32_t {
	st := stateOf(userData)
	return st.veto(reason, "AliveDelegate.NotifyAlive", func() error {
		if peer == nil {
			return errors.New("no node")
		}
		return st.alive.NotifyAlive(nodeFromC(peer))
	})
}

//export goMemberlistAckPayload
func goMemberlistAckPayload(userData C.uintptr_t, out *C.ml_buffer) {
	st := stateOf(userData)
	st.guard("PingDelegate.AckPayload", func() { appendBuffer(out, st.ping.AckPayload()) })
}

//export goMemberlistPingComplete
func goMemberlistPingComplete(userData C.uintptr_t, node *C.ml_node, rttUs C.uint64_t, data *C.uint8_t, n C.size_t) {
	st := stateOf(userData)
	if node == nil {
		return
	}
	st.guard("PingDelegate.NotifyPingComplete", func() {
		st.ping.NotifyPingComplete(nodeFromC(node), time.Duration(rttUs)*time.Microsecond, goBytes(data, n))
	})
}

//export goMemberlistConflict
func goMemberlistConflict(userData C.uintptr_t, existing, other *C.ml_node) {
	st := stateOf(userData)
	if existing == nil || other == nil {
		return
	}
	st.guard("ConflictDelegate.NotifyConflict", func() {
		st.conflict.NotifyConflict(nodeFromC(existing), nodeFromC(other))
	})
}

//export goMemberlistBroadcast
func goMemberlistBroadcast(userData C.uintptr_t, origin, name *C.char, data *C.uint8_t, n C.size_t) {
	st := stateOf(userData)
	st.guard("BroadcastDelegate.NotifyBroadcast", func() {
		st.broadcast.NotifyBroadcast(C.GoString(origin), C.GoString(name), goBytes(data, n))
	})
}

//export goMemberlistBroadcastDone
func goMemberlistBroadcastDone(userData C.uintptr_t, id C.uint64_t, outcome C.uint32_t) {
	st := stateOf(userData)
	st.guard("BroadcastDelegate.NotifyBroadcastDone", func() {
		st.broadcast.NotifyBroadcastDone(uint64(id), BroadcastOutcome(outcome))
	})
}

//export goMemberlistMetric
func goMemberlistMetric(userData C.uintptr_t, name *C.char, kind C.uint32_t, value C.double) {
	st := stateOf(userData)
	st.guard("MetricSink", func() { st.metric(C.GoString(name), MetricKind(kind), float64(value)) })
}

// liveHandles counts handles not yet deleted by user_data_free (checked by the tests).
var liveHandles atomic.Int64

// CallbackError is a panic recovered from a callback: it never reaches C (which would crash
// the process). It goes to Config.OnCallbackError, or to stderr without one, and is counted
// by Memberlist.CallbackErrors.
type CallbackError struct {
	Callback string // the method that panicked: "Delegate.MergeRemoteState", ...
	Value    any    // what it panicked with (nil for panic(nil))
	Stack    []byte // the panicking goroutine's stack
}

func (e *CallbackError) Error() string {
	v := fmt.Sprint(e.Value)
	if e.Value == nil {
		v = "panic(nil)"
	}
	return fmt.Sprintf("memberlist: panic in %s: %s", e.Callback, v)
}

// Unwrap returns the panic value if it is an error.
func (e *CallbackError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// guard runs a callback's Go side: a panic (panic(nil) included) is recovered, reported and
// returned. runtime.Goexit cannot be stopped on a thread that came from C: the runtime aborts
// the process once the deferred calls have run, so guard only says why on stderr first.
// s may be nil (the standalone broadcast queue): reports then go to stderr.
func (s *callbackState) guard(what string, f func()) (cbErr *CallbackError) {
	returned := false
	defer func() {
		if !returned {
			fmt.Fprintf(os.Stderr, "memberlist: %s called runtime.Goexit (t.Fatal, t.FailNow, "+
				"t.Skip?) in a callback from C: the Go runtime will abort the process; report "+
				"failures through a channel or t.Error instead\n", what)
		}
	}()
	panicked := true
	func() {
		defer func() {
			if panicked { // recover returns nil for panic(nil) and Goexit alike: decided below
				cbErr = &CallbackError{Callback: what, Value: recover(), Stack: debug.Stack()}
			}
		}()
		f()
		panicked = false
	}()
	returned = true // not a Goexit: that never gets here
	if cbErr != nil {
		s.report(cbErr)
	}
	return cbErr
}

// report counts a callback's panic and hands it to OnCallbackError or stderr.
func (s *callbackState) report(e *CallbackError) {
	var onError func(*CallbackError)
	if s != nil {
		s.errCount.Add(1)
		onError = s.onError
	}
	if onError == nil {
		fmt.Fprintf(os.Stderr, "%v\n", e)
		return
	}
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "memberlist: OnCallbackError panicked (%v) reporting: %v\n", r, e)
		}
	}()
	onError(e)
}

//export goMemberlistEvent
func goMemberlistEvent(userData C.uintptr_t, event C.uint32_t, node *C.ml_node) {
	st := stateOf(userData)
	if st.events == nil || node == nil {
		return
	}
	n := nodeFromC(node)
	switch NodeEventType(event) {
	case NodeJoin:
		st.guard("EventDelegate.NotifyJoin", func() { st.events.NotifyJoin(n) })
	case NodeLeave:
		st.guard("EventDelegate.NotifyLeave", func() { st.events.NotifyLeave(n) })
	case NodeUpdate:
		st.guard("EventDelegate.NotifyUpdate", func() { st.events.NotifyUpdate(n) })
	}
}

//export goMemberlistLog
func goMemberlistLog(userData C.uintptr_t, level C.uint32_t, msg *C.char, n C.size_t) {
	st := stateOf(userData)
	if st.log != nil && msg != nil {
		line := C.GoStringN(msg, C.int(n))
		st.guard("Logger", func() { st.log(LogLevel(level), line) })
	}
}

//export goMemberlistFree
func goMemberlistFree(userData C.uintptr_t) {
	cgo.Handle(userData).Delete()
	liveHandles.Add(-1)
}
