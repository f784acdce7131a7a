//! The C forms deprecated in 0.x (docs/abi.md) still work through the raw layer; the safe API
//! uses only the forms that replace them.
use libmemberlist_sys as sys;
use std::ptr;

const OK: i32 = sys::ML_OK as i32;

#[test]
fn deprecated_c_forms_still_work() {
    unsafe {
        // Constructors with the out-parameter last.
        let mut rt = ptr::null_mut();
        assert_eq!(sys::ml_runtime_new(100_000, &mut rt), sys::ML_E_INVALID);
        assert_eq!(sys::ml_runtime_new(1, &mut rt), OK);
        assert!(!rt.is_null());
        sys::ml_runtime_free(rt);
        let mut q = ptr::null_mut();
        assert_eq!(sys::ml_broadcast_queue_new(0, &mut q), sys::ML_E_INVALID);
        assert_eq!(sys::ml_broadcast_queue_new(2, &mut q), OK);
        assert!(!q.is_null());
        assert_eq!(sys::ml_broadcast_queue_push(q, ptr::null(), b"x".as_ptr(), 1, None, ptr::null_mut()), OK);
        assert_eq!(sys::ml_broadcast_queue_len(q), 1);
        sys::ml_broadcast_queue_free(q);
        // Getters that answer misuse with a sentinel, where the new forms return a status.
        assert_eq!(sys::ml_memberlist_num_members(ptr::null_mut()), 0);
        assert_eq!(sys::ml_memberlist_health_score(ptr::null_mut()), -1);
        assert_eq!(sys::ml_memberlist_num_queued_broadcasts(ptr::null_mut()), 0);
        assert_eq!(sys::ml_node_state(ptr::null()), sys::ML_STATE_DEAD);
        assert_eq!(sys::ml_metrics_kind(ptr::null(), 0), sys::ML_METRIC_COUNTER);
        let mut state = 0;
        assert_eq!(sys::ml_node_get_state(ptr::null(), &mut state), sys::ML_E_INVALID);
        assert_eq!(state, sys::ML_STATE_DEAD);
    }
}
