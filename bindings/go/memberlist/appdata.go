package memberlist

/*
#include <stdint.h>
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"math"
	"runtime"
	"runtime/cgo"
	"time"
	"unsafe"
)

// bytesPtr points C at a byte slice for the duration of a call (a []byte holds no Go
// pointers, so cgo allows it); nil for an empty slice.
func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// withName runs f with a C copy of s (nil for "").
func withName(s string, f func(*C.char) error) error {
	if s == "" {
		return f(nil)
	}
	cs, err := cString(s, "name")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cs))
	return f(cs)
}

// UpdateNode asks Delegate.NodeMeta again and announces the result, waiting until it has
// propagated or timeout passed.
func (m *Memberlist) UpdateNode(timeout time.Duration) error {
	ms, err := millis(timeout, "update timeout")
	if err != nil {
		return err
	}
	return m.use(func(ml *C.ml_memberlist) C.ml_status { return C.ml_memberlist_update_node(ml, ms) })
}

// SetMeta sets the local metadata and announces it, waiting as UpdateNode does. (Not in
// hashicorp/memberlist, where metadata only comes from Delegate.NodeMeta.)
func (m *Memberlist) SetMeta(meta []byte, timeout time.Duration) error {
	ms, err := millis(timeout, "update timeout")
	if err != nil {
		return err
	}
	return m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_set_meta(ml, bytesPtr(meta), C.size_t(len(meta)), ms)
	})
}

// SendBestEffort sends msg to a member in one UDP datagram (StatusTooLarge if it cannot fit).
func (m *Memberlist) SendBestEffort(to *Node, msg []byte) error {
	return withName(to.Name, func(name *C.char) error {
		return m.use(func(ml *C.ml_memberlist) C.ml_status {
			return C.ml_memberlist_send_best_effort(ml, name, bytesPtr(msg), C.size_t(len(msg)))
		})
	})
}

// SendReliable sends msg to a member over a TCP stream; it returns once written.
func (m *Memberlist) SendReliable(to *Node, msg []byte) error {
	return withName(to.Name, func(name *C.char) error {
		return m.use(func(ml *C.ml_memberlist) C.ml_status {
			return C.ml_memberlist_send_reliable(ml, name, bytesPtr(msg), C.size_t(len(msg)))
		})
	})
}

// Address is where SendToAddress sends ("host:port"); Name is informational, as in
// hashicorp/memberlist.
type Address struct {
	Addr string
	Name string
}

// SendToAddress sends msg in one UDP datagram to an address, member or not.
func (m *Memberlist) SendToAddress(a Address, msg []byte) error {
	addr, err := cString(a.Addr, "address")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(addr))
	return m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_send_to_address(ml, addr, bytesPtr(msg), C.size_t(len(msg)))
	})
}

// QueueBroadcast queues msg to spread to every member; each delivers it once through
// BroadcastDelegate.NotifyBroadcast. A non-empty name makes a newer broadcast with that
// name replace the older one. The id comes back in NotifyBroadcastDone.
func (m *Memberlist) QueueBroadcast(name string, msg []byte) (uint64, error) {
	var id C.uint64_t
	err := withName(name, func(cname *C.char) error {
		return m.use(func(ml *C.ml_memberlist) C.ml_status {
			return C.ml_memberlist_queue_broadcast(ml, cname, bytesPtr(msg), C.size_t(len(msg)), &id)
		})
	})
	return uint64(id), err
}

// NumQueuedBroadcasts returns how many broadcasts this node is still retransmitting (0 after
// Close or on a failure).
func (m *Memberlist) NumQueuedBroadcasts() int {
	var n C.size_t
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_get_num_queued_broadcasts(ml, &n)
	})
	return int(n)
}

// SetGossipVerify changes GossipVerifyIncoming / GossipVerifyOutgoing of a running node.
func (m *Memberlist) SetGossipVerify(incoming, outgoing bool) error {
	return m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_set_gossip_verify(ml, boolU32(incoming), boolU32(outgoing))
	})
}

// Keyring manages the encryption keys of a running memberlist (hashicorp's Keyring).
type Keyring struct{ m *Memberlist }

// Keyring returns the memberlist's keyring.
func (m *Memberlist) Keyring() *Keyring { return &Keyring{m} }

func (k *Keyring) keyOp(key []byte, op func(*C.ml_memberlist, *C.uint8_t, C.size_t) C.ml_status) error {
	return k.m.use(func(ml *C.ml_memberlist) C.ml_status { return op(ml, bytesPtr(key), C.size_t(len(key))) })
}

// AddKey installs a key (16, 24 or 32 bytes); the first one becomes the primary and turns
// encryption on.
func (k *Keyring) AddKey(key []byte) error {
	return k.keyOp(key, func(ml *C.ml_memberlist, p *C.uint8_t, n C.size_t) C.ml_status {
		return C.ml_memberlist_keyring_add(ml, p, n)
	})
}

// UseKey makes an installed key the primary.
func (k *Keyring) UseKey(key []byte) error {
	return k.keyOp(key, func(ml *C.ml_memberlist, p *C.uint8_t, n C.size_t) C.ml_status {
		return C.ml_memberlist_keyring_use(ml, p, n)
	})
}

// RemoveKey removes a key that is not the primary.
func (k *Keyring) RemoveKey(key []byte) error {
	return k.keyOp(key, func(ml *C.ml_memberlist, p *C.uint8_t, n C.size_t) C.ml_status {
		return C.ml_memberlist_keyring_remove(ml, p, n)
	})
}

// GetKeys returns the installed keys, primary first.
func (k *Keyring) GetKeys() ([][]byte, error) {
	var keys [][]byte
	err := k.m.use(func(ml *C.ml_memberlist) C.ml_status {
		var list *C.ml_bytes_list
		st := C.ml_memberlist_keyring_list(ml, &list)
		if st == C.ML_OK {
			keys = bytesList(list)
			C.ml_bytes_list_free(list)
		}
		return st
	})
	return keys, err
}

// GetPrimaryKey returns the primary key (nil without encryption).
func (k *Keyring) GetPrimaryKey() []byte {
	keys, err := k.GetKeys()
	if err != nil || len(keys) == 0 {
		return nil
	}
	return keys[0]
}

func bytesList(list *C.ml_bytes_list) [][]byte {
	n := C.ml_bytes_list_len(list)
	out := make([][]byte, 0, int(n))
	for i := C.size_t(0); i < n; i++ {
		var l C.size_t
		p := C.ml_bytes_list_get(list, i, &l)
		out = append(out, goBytes(p, l))
	}
	return out
}

// MetricKind is the kind of a metric.
type MetricKind int

const (
	MetricCounter MetricKind = mlMetricCounter
	MetricGauge   MetricKind = mlMetricGauge
	MetricTimer   MetricKind = mlMetricTimer // durations in milliseconds: count, sum, min, max
)

// Metric is one metric of a snapshot. For timers Value is the sum in milliseconds.
type Metric struct {
	Name   string // as hashicorp/memberlist: "memberlist.msg.alive", ...
	Labels string // Prometheus form (`node_state="alive"`), "" if none
	Kind   MetricKind
	Value  float64
	// Timer summary (zeros for other kinds).
	Count               uint64
	SumMs, MinMs, MaxMs float64
}

// Metrics returns a snapshot of every metric.
func (m *Memberlist) Metrics() ([]Metric, error) {
	var out []Metric
	err := m.use(func(ml *C.ml_memberlist) C.ml_status {
		var snap *C.ml_metrics
		st := C.ml_memberlist_metrics(ml, &snap)
		if st != C.ML_OK {
			return st
		}
		defer C.ml_metrics_free(snap)
		n := C.ml_metrics_len(snap)
		out = make([]Metric, 0, int(n))
		for i := C.size_t(0); i < n; i++ {
			// Cannot fail for an index below the length.
			kind := C.uint32_t(C.ML_METRIC_COUNTER)
			C.ml_metrics_get_kind(snap, i, &kind)
			mt := Metric{
				Name:   C.GoString(C.ml_metrics_name(snap, i)),
				Labels: C.GoString(C.ml_metrics_labels(snap, i)),
				Kind:   MetricKind(kind),
				Value:  float64(C.ml_metrics_value(snap, i)),
			}
			var count C.uint64_t
			var sum, min, max C.double
			C.ml_metrics_timer(snap, i, &count, &sum, &min, &max)
			mt.Count, mt.SumMs, mt.MinMs, mt.MaxMs = uint64(count), float64(sum), float64(min), float64(max)
			out = append(out, mt)
		}
		return st
	})
	return out, err
}

// MetricValue returns the value of the first metric with this name (any labels) in a
// snapshot, or NaN.
func MetricValue(metrics []Metric, name string) float64 {
	for _, mt := range metrics {
		if mt.Name == name {
			return mt.Value
		}
	}
	return math.NaN()
}

// Prometheus returns every metric in the Prometheus text exposition format.
func (m *Memberlist) Prometheus() (string, error) {
	var text string
	err := m.use(func(ml *C.ml_memberlist) C.ml_status {
		var s *C.char
		var n C.size_t
		st := C.ml_memberlist_prometheus(ml, &s, &n)
		if st == C.ML_OK {
			text = C.GoStringN(s, C.int(n))
			C.ml_string_free(s)
		}
		return st
	})
	return text, err
}

// BroadcastQueue is a transmit-limited queue of one's own, like hashicorp's
// TransmitLimitedQueue: each message is handed out RetransmitMult * ceil(log10(n+1)) times,
// least-transmitted first. Not safe for concurrent use; Close frees it.
type BroadcastQueue struct {
	q       *C.ml_broadcast_queue
	pending map[cgo.Handle]struct{} // done callbacks not called yet
}

// queuedDone is what a pushed message's done handle refers to.
type queuedDone struct {
	q  *BroadcastQueue
	fn func(BroadcastOutcome)
}

// NewBroadcastQueue creates a queue with the given retransmit multiplier.
func NewBroadcastQueue(retransmitMult int) (*BroadcastQueue, error) {
	if retransmitMult < 0 || retransmitMult > math.MaxUint32 {
		return nil, &Error{StatusInvalid, "retransmitMult out of range"}
	}
	// ml_last_error is per OS thread: read it on the thread that failed.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var q *C.ml_broadcast_queue
	if st := C.ml_broadcast_queue_create(&q, C.uint32_t(retransmitMult)); st != C.ML_OK {
		return nil, &Error{Status(st), C.GoString(C.ml_last_error())}
	}
	return &BroadcastQueue{q: q, pending: map[cgo.Handle]struct{}{}}, nil
}

func (b *BroadcastQueue) check(st C.ml_status) error {
	if st != C.ML_OK {
		return &Error{Status(st), C.GoString(C.ml_last_error())}
	}
	return nil
}

// SetNumNodes sets the cluster size used for the retransmit limit.
func (b *BroadcastQueue) SetNumNodes(n int) error {
	return b.check(C.ml_broadcast_queue_set_num_nodes(b.q, C.uint32_t(n)))
}

// QueueBroadcast queues msg; a non-empty name replaces a queued message with that name.
// done (may be nil) is called once with the outcome when the message leaves the queue, from
// inside the queue call that removes it.
func (b *BroadcastQueue) QueueBroadcast(name string, msg []byte, done func(BroadcastOutcome)) error {
	var h cgo.Handle
	if done != nil {
		h = cgo.NewHandle(&queuedDone{b, done})
		b.pending[h] = struct{}{}
	}
	err := withName(name, func(cname *C.char) error {
		return b.check(C.ml_go_queue_push(b.q, cname, bytesPtr(msg), C.size_t(len(msg)), C.uintptr_t(h)))
	})
	if err != nil && h != 0 {
		if _, still := b.pending[h]; still { // refused before the queue took it
			delete(b.pending, h)
			h.Delete()
		}
	}
	return err
}

// GetBroadcasts returns the messages that fit limit bytes, each counted with overhead.
func (b *BroadcastQueue) GetBroadcasts(overhead, limit int) [][]byte {
	var list *C.ml_bytes_list
	if C.ml_broadcast_queue_get(b.q, C.size_t(overhead), C.size_t(limit), &list) != C.ML_OK {
		return nil
	}
	defer C.ml_bytes_list_free(list)
	return bytesList(list)
}

// NumQueued returns the number of queued messages.
func (b *BroadcastQueue) NumQueued() int { return int(C.ml_broadcast_queue_len(b.q)) }

// Prune drops the most-transmitted messages until at most maxRetain remain.
func (b *BroadcastQueue) Prune(maxRetain int) error {
	return b.check(C.ml_broadcast_queue_prune(b.q, C.size_t(maxRetain)))
}

// Reset drops every message.
func (b *BroadcastQueue) Reset() error { return b.check(C.ml_broadcast_queue_reset(b.q)) }

// Close frees the queue; done callbacks the library did not call are forgotten.
func (b *BroadcastQueue) Close() {
	if b.q == nil {
		return
	}
	C.ml_broadcast_queue_free(b.q)
	b.q = nil
	for h := range b.pending {
		h.Delete()
	}
	b.pending = nil
}

//export goMemberlistQueueDone
func goMemberlistQueueDone(userData C.uintptr_t, outcome C.uint32_t) {
	h := cgo.Handle(userData)
	d := h.Value().(*queuedDone)
	delete(d.q.pending, h)
	h.Delete()
	var noState *callbackState // the queue has no Config: a panic goes to stderr
	noState.guard("BroadcastQueue done callback", func() { d.fn(BroadcastOutcome(outcome)) })
}
