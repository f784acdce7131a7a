using LibMemberlist.Interop;
using static LibMemberlist.Tests.ClusterTests;

namespace LibMemberlist.Tests;

/// <summary>docs/abi.md's rules as the binding sees them: the deprecated C forms still work
/// through the raw layer (the binding itself uses only their replacements), and a name with a
/// NUL byte is refused rather than cut short.</summary>
public unsafe class AbiRulesTests
{
    [Fact]
    public void DeprecatedCFormsStillWork()
    {
#pragma warning disable CS0618 // the deprecated forms, on purpose
        ml_runtime* rt;
        Assert.Equal(Native.ML_E_INVALID, Native.ml_runtime_new(100000, &rt));
        Assert.Equal(Native.ML_OK, Native.ml_runtime_new(1, &rt));
        Native.ml_runtime_free(rt);
        ml_broadcast_queue* q;
        Assert.Equal(Native.ML_OK, Native.ml_broadcast_queue_new(2, &q));
        byte x = (byte)'x';
        Assert.Equal(Native.ML_OK, Native.ml_broadcast_queue_push(q, null!, &x, 1, null, null));
        Assert.Equal((nuint)1, Native.ml_broadcast_queue_len(q));
        Native.ml_broadcast_queue_free(q);
        Assert.Equal((nuint)0, Native.ml_memberlist_num_members(null));
        Assert.Equal(-1, Native.ml_memberlist_health_score(null));
        Assert.Equal((nuint)0, Native.ml_memberlist_num_queued_broadcasts(null));
        Assert.Equal((uint)Native.ML_STATE_DEAD, Native.ml_node_state(null));
        Assert.Equal((uint)Native.ML_METRIC_COUNTER, Native.ml_metrics_kind(null, 0));
#pragma warning restore CS0618
        uint state = 0;
        Assert.Equal(Native.ML_E_INVALID, Native.ml_node_get_state(null, &state));
        Assert.Equal((uint)Native.ML_STATE_DEAD, state);
    }

    [Fact]
    public void NamesWithNulAreRefused()
    {
        using (var config = MemberlistConfig.Local())
        {
            var e = Assert.Throws<MemberlistException>(() => config.Name = "nul\0name");
            Assert.Equal(MemberlistStatus.Invalid, e.Status);
            Assert.Throws<MemberlistException>(() => config.Label = "l\0");
        }
        using var m = Create("nul-test");
        Assert.Equal(MemberlistStatus.Invalid,
            Assert.Throws<MemberlistException>(() => m.Ping("nul-test\0other")).Status);
        Assert.Equal(MemberlistStatus.Invalid,
            Assert.Throws<MemberlistException>(() => m.Join("127.0.0.1:1\0")).Status);
        Assert.Equal(MemberlistStatus.Invalid,
            Assert.Throws<MemberlistException>(() => m.QueueBroadcast("n\0", [1])).Status);
        using var queue = new BroadcastQueue(2);
        Assert.Equal(MemberlistStatus.Invalid,
            Assert.Throws<MemberlistException>(() => queue.Push("n\0", [1], _ => { })).Status);
        Assert.Equal(0, queue.Count);
    }
}
