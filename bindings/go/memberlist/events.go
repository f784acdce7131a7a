package memberlist

// EventKind says what a polled Event carries (EventKindMember, EventKindMessage, ...; the
// values are the header's ML_EVENT_KIND_*).
type EventKind uint32
