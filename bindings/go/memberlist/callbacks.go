package memberlist

/*
#include <memberlist.h>
*/
import "C"

import (
	"fmt"
	"os"
	"runtime/cgo"
	"sync/atomic"
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

// callbackState is what a memberlist's user_data (a cgo.Handle) refers to.
type callbackState struct {
	events EventDelegate
	log    func(LogLevel, string)
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
