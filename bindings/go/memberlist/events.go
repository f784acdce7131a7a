package memberlist

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// EventKind says what a polled Event carries (EventKindMember, EventKindMessage, ...; the
// values are the header's ML_EVENT_KIND_*).
type EventKind uint32

// Event is one notification taken from the library's event queue (Config.EventCh,
// Config.EventQueue). Which fields are set depends on Kind:
//
//	EventKindMember:        Type (NodeJoin, NodeLeave, NodeUpdate), Node
//	EventKindMessage:       Data (a user message)
//	EventKindBroadcast:     Origin, Name, Data (as BroadcastDelegate.NotifyBroadcast)
//	EventKindBroadcastDone: ID, Outcome
//	EventKindConflict:      Node (the known one), Other (the newcomer)
//	EventKindLog:           Level, Text
type Event struct {
	Kind    EventKind
	Type    NodeEventType
	Node    *Node
	Other   *Node
	Data    []byte
	Origin  string
	Name    string
	ID      uint64
	Outcome BroadcastOutcome
	Level   LogLevel
	Text    string
}

// pollCap is the most events one cgo call takes.
const pollCap = 256

// poller is the C memory PollEvents fills: one batch and one flat array, reused.
type poller struct {
	mu    sync.Mutex
	batch *C.ml_event_batch
	out   *C.ml_go_event
}

func (p *poller) free() {
	if p.batch != nil {
		C.ml_event_batch_free(p.batch)
		C.free(unsafe.Pointer(p.out))
		p.batch, p.out = nil, nil
	}
}

// PollEvents moves up to len(buf) queued events into buf, oldest first, and returns how
// many (0 if none); it never blocks. Only with the event queue on (Config.EventQueue or
// Config.EventCh; with EventCh the binding's goroutine is already taking them). Several
// goroutines may call it; each event goes to one of them.
func (m *Memberlist) PollEvents(buf []Event) (int, error) {
	max := len(buf)
	if max > pollCap {
		max = pollCap
	}
	if max == 0 {
		return 0, nil
	}
	p := &m.poll
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	err := m.use(func(ml *C.ml_memberlist) C.ml_status {
		if p.batch == nil {
			if st := C.ml_event_batch_create(&p.batch); st != C.ML_OK {
				return st
			}
			p.out = (*C.ml_go_event)(C.calloc(pollCap, C.sizeof_ml_go_event))
		}
		var count C.size_t
		st := C.ml_go_poll(ml, p.batch, p.out, C.size_t(max), &count)
		// Copied while the call still counts as in flight: a Close meanwhile cannot free the
		// batch the views point into.
		for i, e := range unsafe.Slice(p.out, int(count)) {
			buf[i] = eventFromC(&e)
		}
		n = int(count)
		return st
	})
	return n, err
}

// EventFD returns a descriptor that is readable while events are queued (an eventfd owned
// by the memberlist: do not read or close it), for hosts that run their own poll loop.
func (m *Memberlist) EventFD() (int, error) {
	var fd C.int32_t
	err := m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_event_fd(ml, &fd) })
	return int(fd), err
}

// EventStats returns the events queued now and those dropped so far because the queue was
// full (Config.MaxQueuedCallbacks and the log-line bound limit it).
func (m *Memberlist) EventStats() (queued int, dropped uint64, err error) {
	var q C.size_t
	var d C.uint64_t
	err = m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_get_event_stats(ml, &q, &d)
	})
	return int(q), uint64(d), err
}

func eventFromC(e *C.ml_go_event) Event {
	ev := Event{Kind: EventKind(e.kind), ID: uint64(e.id)}
	switch ev.Kind {
	case EventKindMember:
		ev.Type = NodeEventType(e._type)
	case EventKindBroadcastDone:
		ev.Outcome = BroadcastOutcome(e._type)
	case EventKindLog:
		ev.Level = LogLevel(e._type)
		ev.Text = C.GoStringN((*C.char)(unsafe.Pointer(e.data)), C.int(e.len))
		return ev
	case EventKindBroadcast:
		ev.Origin, ev.Name = C.GoString(e.origin), C.GoString(e.name)
	}
	if e.data != nil && e.len > 0 {
		ev.Data = C.GoBytes(unsafe.Pointer(e.data), C.int(e.len))
	}
	if e.has_node != 0 {
		ev.Node = nodeFromFlat(&e.node)
	}
	if e.has_other != 0 {
		ev.Other = nodeFromFlat(&e.other)
	}
	return ev
}

func nodeFromFlat(f *C.ml_go_node) *Node {
	v := f.versions
	n := &Node{
		Name:        C.GoString(f.name),
		Addr:        net.IP(C.GoBytes(unsafe.Pointer(&f.ip[0]), 16)),
		Port:        uint16(f.port),
		State:       NodeStateType(f.state),
		Incarnation: uint32(f.incarnation),
		PMin:        uint8(v[0]), PMax: uint8(v[1]), PCur: uint8(v[2]),
		DMin: uint8(v[3]), DMax: uint8(v[4]), DCur: uint8(v[5]),
	}
	if f.meta != nil && f.meta_len > 0 {
		n.Meta = C.GoBytes(unsafe.Pointer(f.meta), C.int(f.meta_len))
	}
	return n
}

// startPump runs the goroutine behind Config.EventCh: it waits on the event fd through Go's
// netpoller (a duplicate of the fd, so that closing ours never closes the library's; no
// thread is held while waiting), takes the events in batches and sends them to ch in order.
// A full ch holds up only this goroutine: the library keeps queueing (bounded, drops
// counted in EventStats), the protocol never waits. It stops at Close, or once the
// memberlist is shut down and its queue is empty; ch is never closed (it is the caller's).
func (m *Memberlist) startPump(ch chan<- Event) error {
	fd, err := m.EventFD()
	if err != nil {
		return err
	}
	dup, err := syscall.Dup(fd)
	if err != nil {
		return &Error{StatusIO, "dup of the event fd: " + err.Error()}
	}
	syscall.CloseOnExec(dup)
	f := os.NewFile(uintptr(dup), "memberlist-events") // non-blocking: the netpoller takes it
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return &Error{StatusIO, "event fd: " + err.Error()}
	}
	m.pumpDone = make(chan struct{})
	m.pumpFile = f
	done := m.pumpDone
	go func() {
		defer f.Close()
		buf := make([]Event, 64)
		for {
			n, err := m.PollEvents(buf)
			if err != nil {
				return // closed
			}
			for i := 0; i < n; i++ {
				select {
				case ch <- buf[i]:
				case <-done:
					return
				}
				buf[i] = Event{}
			}
			if n == len(buf) {
				continue // more may be queued
			}
			if n == 0 && m.isStopped() {
				return // shut down and drained: nothing will come (lets the finalizer run)
			}
			// Wait until the fd is readable. The netpoller forgets readiness it saw before
			// this call, so the function looks itself (poll(2), timeout 0) before each wait.
			err = rc.Read(func(fd uintptr) bool { return C.ml_go_readable(C.int(fd)) != 0 })
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
				return // Close closed f
			}
			// A deadline is Shutdown waking us: drain what it kept, then stop (above).
		}
	}()
	return nil
}

func (m *Memberlist) isStopped() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stopped || m.closed
}

// wakePump makes the EventCh goroutine look again (Shutdown: no event may come to wake it).
func (m *Memberlist) wakePump() {
	if m.pumpFile != nil {
		m.pumpFile.SetReadDeadline(time.Now())
	}
}

// stopPump ends the EventCh goroutine (Close).
func (m *Memberlist) stopPump() {
	if m.pumpDone != nil {
		close(m.pumpDone)
		m.pumpFile.Close() // wakes its wait
	}
}

// fdReadable reports whether fd is readable now (tests).
func fdReadable(fd int) bool { return C.ml_go_readable(C.int(fd)) != 0 }
