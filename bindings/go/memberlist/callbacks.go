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
	"sync/atomic"
	"time"
	"unsafe"
)

// EventDelegate receives membership events, as hashicorp/memberlist's does. Methods run on
// a library thread, one at a time, in order; the *Node is the delegate's to keep. They may
// call non-blocking Memberlist methods (Members, NumMembers, LocalNode, GetHealthScore);
// Join, Ping and Leave of the same memberlist fail there with StatusState.
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
// byte slices passed in are the delegate's to keep.
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
)

func (o BroadcastOutcome) String() string {
	switch o {
	case BroadcastDelivered:
		return "delivered"
	case BroadcastReplaced:
		return "replaced"
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
	defer recoverCallback("Delegate.NodeMeta")
	appendBuffer(out, stateOf(userData).delegate.NodeMeta(int(limit)))
}

//export goMemberlistGetBroadcasts
func goMemberlistGetBroadcasts(userData C.uintptr_t, sink *C.ml_message_sink, overhead, limit C.size_t) {
	defer recoverCallback("Delegate.GetBroadcasts")
	for _, msg := range stateOf(userData).delegate.GetBroadcasts(int(overhead), int(limit)) {
		var p *C.uint8_t
		if len(msg) > 0 {
			p = (*C.uint8_t)(unsafe.Pointer(&msg[0]))
		}
		if C.ml_message_sink_add(sink, p, C.size_t(len(msg))) != C.ML_OK {
			return
		}
	}
}

//export goMemberlistLocalState
func goMemberlistLocalState(userData C.uintptr_t, join C.uint32_t, out *C.ml_buffer) {
	defer recoverCallback("Delegate.LocalState")
	appendBuffer(out, stateOf(userData).delegate.LocalState(join != 0))
}

//export goMemberlistMergeRemoteState
func goMemberlistMergeRemoteState(userData C.uintptr_t, data *C.uint8_t, n C.size_t, join C.uint32_t) {
	defer recoverCallback("Delegate.MergeRemoteState")
	stateOf(userData).delegate.MergeRemoteState(goBytes(data, n), join != 0)
}

//export goMemberlistMessage
func goMemberlistMessage(userData C.uintptr_t, data *C.uint8_t, n C.size_t) {
	defer recoverCallback("Delegate.NotifyMsg")
	stateOf(userData).delegate.NotifyMsg(goBytes(data, n))
}

// veto turns a hook's error into the library's non-zero answer plus a reason. A panic
// vetoes too (the safe side for an admission hook).
func veto(reason *C.ml_buffer, what string, f func() error) (rc C.int32_t) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(os.Stderr, "memberlist: recovered panic in %s: %v\n", what, r)
			rc = 1
		}
	}()
	if err := f(); err != nil {
		appendBuffer(reason, []byte(err.Error()))
		return 1
	}
	return 0
}

//export goMemberlistNotifyMerge
func goMemberlistNotifyMerge(userData C.uintptr_t, peers *C.ml_node_list, reason *C.ml_buffer) C.int32_t {
	return veto(reason, "MergeDelegate", func() error {
		return stateOf(userData).merge.NotifyMerge(nodesFromList(peers))
	})
}

//export goMemberlistNotifyAlive
func goMemberlistNotifyAlive(userData C.uintptr_t, peer *C.ml_node, reason *C.ml_buffer) C.int32_t {
	return veto(reason, "AliveDelegate", func() error {
		if peer == nil {
			return errors.New("no node")
		}
		return stateOf(userData).alive.NotifyAlive(nodeFromC(peer))
	})
}

//export goMemberlistAckPayload
func goMemberlistAckPayload(userData C.uintptr_t, out *C.ml_buffer) {
	defer recoverCallback("PingDelegate.AckPayload")
	appendBuffer(out, stateOf(userData).ping.AckPayload())
}

//export goMemberlistPingComplete
func goMemberlistPingComplete(userData C.uintptr_t, node *C.ml_node, rttUs C.uint64_t, data *C.uint8_t, n C.size_t) {
	defer recoverCallback("PingDelegate.NotifyPingComplete")
	if node != nil {
		stateOf(userData).ping.NotifyPingComplete(nodeFromC(node),
			time.Duration(rttUs)*time.Microsecond, goBytes(data, n))
	}
}

//export goMemberlistConflict
func goMemberlistConflict(userData C.uintptr_t, existing, other *C.ml_node) {
	defer recoverCallback("ConflictDelegate")
	if existing != nil && other != nil {
		stateOf(userData).conflict.NotifyConflict(nodeFromC(existing), nodeFromC(other))
	}
}

//export goMemberlistBroadcast
func goMemberlistBroadcast(userData C.uintptr_t, origin, name *C.char, data *C.uint8_t, n C.size_t) {
	defer recoverCallback("BroadcastDelegate.NotifyBroadcast")
	stateOf(userData).broadcast.NotifyBroadcast(C.GoString(origin), C.GoString(name), goBytes(data, n))
}

//export goMemberlistBroadcastDone
func goMemberlistBroadcastDone(userData C.uintptr_t, id C.uint64_t, outcome C.uint32_t) {
	defer recoverCallback("BroadcastDelegate.NotifyBroadcastDone")
	stateOf(userData).broadcast.NotifyBroadcastDone(uint64(id), BroadcastOutcome(outcome))
}

//export goMemberlistMetric
func goMemberlistMetric(userData C.uintptr_t, name *C.char, kind C.uint32_t, value C.double) {
	defer recoverCallback("MetricSink")
	stateOf(userData).metric(C.GoString(name), MetricKind(kind), float64(value))
}

// liveHandles counts handles not yet deleted by user_data_free (checked by the tests).
var liveHandles atomic.Int64

// recoverCallback stops a panic from unwinding into C (which would crash the process).
func recoverCallback(what string) {
	if r := recover(); r != nil {
		fmt.Fprintf(os.Stderr, "memberlist: recovered panic in %s: %v\n", what, r)
	}
}

//export goMemberlistEvent
func goMemberlistEvent(userData C.uintptr_t, event C.uint32_t, node *C.ml_node) {
	defer recoverCallback("EventDelegate")
	st := cgo.Handle(userData).Value().(*callbackState)
	if st.events == nil || node == nil {
		return
	}
	n := nodeFromC(node)
	switch NodeEventType(event) {
	case NodeJoin:
		st.events.NotifyJoin(n)
	case NodeLeave:
		st.events.NotifyLeave(n)
	case NodeUpdate:
		st.events.NotifyUpdate(n)
	}
}

//export goMemberlistLog
func goMemberlistLog(userData C.uintptr_t, level C.uint32_t, msg *C.char, n C.size_t) {
	defer recoverCallback("Logger")
	st := cgo.Handle(userData).Value().(*callbackState)
	if st.log != nil && msg != nil {
		st.log(LogLevel(level), C.GoStringN(msg, C.int(n)))
	}
}

//export goMemberlistFree
func goMemberlistFree(userData C.uintptr_t) {
	cgo.Handle(userData).Delete()
	liveHandles.Add(-1)
}
