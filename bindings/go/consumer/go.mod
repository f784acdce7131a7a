module example.com/memberlist-consumer

go 1.19

require github.com/libmemberlist/libmemberlist/bindings/go/memberlist v0.0.0

// The binding from a checkout (or a vendored copy) instead of a download: the path is
// relative to this file. scripts/test-bindings.sh builds a copy of this module outside the
// repository with the path made absolute.
replace github.com/libmemberlist/libmemberlist/bindings/go/memberlist => ../memberlist
