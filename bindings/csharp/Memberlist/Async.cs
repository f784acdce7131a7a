using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>Join, Ping and Leave as tasks (<c>ml_memberlist_*_async</c>).</summary>
public sealed unsafe partial class Memberlist
{
    /// <summary>Operations accepted by the library whose done has not run yet (checked by the
    /// tests: every one completes exactly once).</summary>
    internal static int PendingOperations;

    /// <summary>As <see cref="Join"/>, without blocking a thread while it waits: the library
    /// runs the join on one of its own threads and completes the task from there (continuations
    /// run on the thread pool, never on the library's thread). The task faults with
    /// <see cref="MemberlistException"/> as Join would throw, and with Status Closed if the
    /// node is shut down or disposed first. Cancelling the token cancels the task only: the
    /// join itself goes on.</summary>
    public Task<int> JoinAsync(string[] addresses, CancellationToken cancellationToken = default)
    {
        using var native = new NativeStrings(addresses, nameof(addresses), "address");
        using var ml = _handle.Use();
        var op = new Operation<int>(cancellationToken);
        int status;
        fixed (IntPtr* p = native.Pointers) // the library copies the addresses before it returns
            status = Native.ml_memberlist_join_async(ml.Ptr, (byte**)p, (nuint)native.Pointers.Length, &JoinDone, op.Start());
        return op.Accepted(ml.Ptr, status);
    }

    /// <summary>As <see cref="JoinAsync(string[], CancellationToken)"/>.</summary>
    public Task<int> JoinAsync(params string[] addresses) => JoinAsync(addresses, CancellationToken.None);

    /// <summary>As <see cref="Ping"/>, without blocking a thread while it waits (see
    /// <see cref="JoinAsync(string[], CancellationToken)"/>).</summary>
    public Task<TimeSpan> PingAsync(string nodeName, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        using var ml = _handle.Use();
        var op = new Operation<TimeSpan>(cancellationToken);
        int status = Native.ml_memberlist_ping_async(ml.Ptr, Util.NoNul(nodeName, "node name")!, &PingDone, op.Start());
        return op.Accepted(ml.Ptr, status);
    }

    /// <summary>As <see cref="Leave"/>, without blocking a thread while it waits (see
    /// <see cref="JoinAsync(string[], CancellationToken)"/>).</summary>
    public Task LeaveAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        using var ml = _handle.Use();
        var op = new Operation<bool>(cancellationToken);
        int status = Native.ml_memberlist_leave_async(ml.Ptr, Util.Millis(timeout, "timeout"), &LeaveDone, op.Start());
        return op.Accepted(ml.Ptr, status);
    }

    /// <summary>One accepted operation: a GCHandle to it is the native user_data, freed by the
    /// done trampoline (called exactly once by the library) or at once if the call is refused.</summary>
    private sealed class Operation<T>(CancellationToken cancellationToken)
    {
        // Continuations must not run on the library's completion thread: there the blocking
        // calls of this memberlist are refused, and a slow continuation would hold the thread.
        private readonly TaskCompletionSource<T> _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private CancellationTokenRegistration _cancel;
        private GCHandle _self;

        public void* Start()
        {
            _self = GCHandle.Alloc(this);
            return (void*)GCHandle.ToIntPtr(_self);
        }

        public Task<T> Accepted(ml_memberlist* ml, int status)
        {
            if (status != Native.ML_OK)
            {
                _self.Free(); // refused: done never runs
                throw new MemberlistException(status, Util.Utf8(Native.ml_memberlist_last_error(ml)));
            }
            Interlocked.Increment(ref PendingOperations);
            if (cancellationToken.CanBeCanceled)
                _cancel = cancellationToken.Register(() => _tcs.TrySetCanceled(cancellationToken));
            return _tcs.Task;
        }

        public static void Complete(void* userData, int status, byte* message, T value)
        {
            var handle = GCHandle.FromIntPtr((IntPtr)userData);
            var op = (Operation<T>)handle.Target!;
            handle.Free();
            Interlocked.Decrement(ref PendingOperations);
            op._cancel.Dispose();
            if (status == Native.ML_OK)
                op._tcs.TrySetResult(value);
            else
                op._tcs.TrySetException(new MemberlistException(status, Util.Utf8(message)));
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void JoinDone(void* userData, int status, uint joined, byte* message)
    {
        try { Operation<int>.Complete(userData, status, message, (int)joined); }
        catch (Exception e) { Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void PingDone(void* userData, int status, ulong rttUs, byte* message)
    {
        try { Operation<TimeSpan>.Complete(userData, status, message, TimeSpan.FromMicroseconds(rttUs)); }
        catch (Exception e) { Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void LeaveDone(void* userData, int status, byte* message)
    {
        try { Operation<bool>.Complete(userData, status, message, true); }
        catch (Exception e) { Report(e); }
    }
}
