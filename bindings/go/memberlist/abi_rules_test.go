package memberlist

import (
	"errors"
	"testing"
)

// The C forms deprecated in 0.x still work through cgo, with their old answers to misuse.
func TestDeprecatedFormsStillWork(t *testing.T) {
	got := callDeprecatedForms()
	want := deprecatedAnswers{
		runtimeNew: 0, runtimeNewRefused: int(StatusInvalid), queueNew: 0, queueLen: 1,
		numMembers: 0, numQueued: 0, healthScore: -1,
		nodeState: uint32(StateDead), metricsKind: uint32(MetricCounter),
	}
	if got != want {
		t.Fatalf("deprecated forms answered %+v, want %+v", got, want)
	}
}

// A NUL byte in a name is refused before C could read a shorter name (docs/abi.md, "Strings").
func TestNamesWithNULAreRefused(t *testing.T) {
	isInvalid := func(err error) bool {
		var e *Error
		return errors.As(err, &e) && e.Status == StatusInvalid
	}
	c := fastConfig("nul\x00name")
	if m, err := Create(c); !isInvalid(err) {
		if m != nil {
			m.Close()
		}
		t.Fatalf("Create with a NUL in the name: %v, want StatusInvalid", err)
	}
	m := create(t, fastConfig("nul-test"))
	if _, err := m.Ping("nul-test\x00other"); !isInvalid(err) {
		t.Fatalf("Ping with a NUL in the name: %v, want StatusInvalid", err)
	}
	if _, err := m.Join([]string{"127.0.0.1:1\x00"}); !isInvalid(err) {
		t.Fatalf("Join with a NUL in an address: %v, want StatusInvalid", err)
	}
	if err := m.SendToAddress(Address{Addr: "127.0.0.1:1\x00"}, []byte("x")); !isInvalid(err) {
		t.Fatalf("SendToAddress with a NUL in the address: %v, want StatusInvalid", err)
	}
}
