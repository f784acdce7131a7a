package memberlist

/*
#define ML_NO_DEPRECATION_WARNINGS // this file calls the deprecated forms on purpose
#include <stddef.h>
#include <memberlist.h>
*/
import "C"

// deprecatedAnswers is what the C forms deprecated in 0.x answer (docs/abi.md): the package
// uses only the forms that replace them, and TestDeprecatedFormsStillWork checks these.
type deprecatedAnswers struct {
	runtimeNew, runtimeNewRefused, queueNew, queueLen int
	numMembers, numQueued                             int
	healthScore                                       int
	nodeState, metricsKind                            uint32
}

func callDeprecatedForms() deprecatedAnswers {
	var a deprecatedAnswers
	var rt *C.ml_runtime
	a.runtimeNewRefused = int(C.ml_runtime_new(100000, &rt))
	a.runtimeNew = int(C.ml_runtime_new(1, &rt))
	C.ml_runtime_free(rt)
	var q *C.ml_broadcast_queue
	a.queueNew = int(C.ml_broadcast_queue_new(2, &q))
	if q != nil {
		C.ml_broadcast_queue_push(q, nil, nil, 0, nil, nil)
		a.queueLen = int(C.ml_broadcast_queue_len(q))
		C.ml_broadcast_queue_free(q)
	}
	a.numMembers = int(C.ml_memberlist_num_members(nil))
	a.numQueued = int(C.ml_memberlist_num_queued_broadcasts(nil))
	a.healthScore = int(C.ml_memberlist_health_score(nil))
	a.nodeState = uint32(C.ml_node_state(nil))
	a.metricsKind = uint32(C.ml_metrics_kind(nil, 0))
	return a
}
