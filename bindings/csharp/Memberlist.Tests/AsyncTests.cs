using System.Net;
using System.Net.Sockets;

namespace LibMemberlist.Tests;

/// <summary>JoinAsync, PingAsync and LeaveAsync: results, errors, completion on shutdown and
/// dispose, and that no thread (the caller's, the pool's) waits for the operation.</summary>
public class AsyncTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan Forever = TimeSpan.FromMinutes(10);

    /// <summary>A TCP listener that never accepts: connections complete into its backlog and
    /// nobody answers, so a join through it waits its whole TcpTimeout.</summary>
    private static TcpListener BlackHole(out string address)
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start(256);
        address = $"127.0.0.1:{((IPEndPoint)l.LocalEndpoint).Port}";
        return l;
    }

    /// <summary>Calls an async method for what it throws before returning a task.</summary>
    private static void Start(Func<Task> call) => call();

    [Fact]
    public async Task JoinPingLeaveAsyncReturnResults()
    {
        using var a = ClusterTests.Create("async-a");
        using var b = ClusterTests.Create("async-b");
        Assert.Equal(1, await b.JoinAsync(a.LocalNode.Address).WaitAsync(Deadline));
        ClusterTests.WaitFor("two members", () => a.NumMembers == 2 && b.NumMembers == 2);

        var rtt = await b.PingAsync("async-a").WaitAsync(Deadline);
        Assert.True(rtt > TimeSpan.Zero);

        var unknown = await Assert.ThrowsAsync<MemberlistException>(() => b.PingAsync("nobody").WaitAsync(Deadline));
        Assert.Equal(MemberlistStatus.NotFound, unknown.Status);
        Assert.Contains("nobody", unknown.Detail);

        var unreachable = await Assert.ThrowsAsync<MemberlistException>(
            () => b.JoinAsync(["127.0.0.1:1"]).WaitAsync(Deadline));
        Assert.NotEqual(MemberlistStatus.Ok, unreachable.Status);

        await b.LeaveAsync(TimeSpan.FromSeconds(5)).WaitAsync(Deadline);
        ClusterTests.WaitFor("a sees b leave", () => a.NumMembers == 1);
        var after = await Assert.ThrowsAsync<MemberlistException>(() => b.JoinAsync(a.LocalNode.Address).WaitAsync(Deadline));
        Assert.Equal(MemberlistStatus.State, after.Status);

        // Refused at once (no task): after Shutdown, and on bad arguments.
        b.Shutdown();
        var closed = Assert.Throws<MemberlistException>(() => Start(() => b.PingAsync("async-a")));
        Assert.Equal(MemberlistStatus.Closed, closed.Status);
        Assert.Throws<ArgumentNullException>(() => Start(() => a.PingAsync(null!)));
        Assert.Throws<ArgumentException>(() => Start(() => a.JoinAsync([null!])));
        Assert.Throws<MemberlistException>(() => Start(() => a.JoinAsync(Array.Empty<string>())));
    }

    /// <summary>With the pool held to a few threads, many more joins and pings than it has
    /// threads are started from pool threads and left waiting on peers that never answer.
    /// A blocking implementation (the wait on a pool thread, or on the caller's) would hold
    /// every pool thread: neither the starting work items nor a later one could run until
    /// the 10-minute timeouts. Here they all run while every operation is still pending, and
    /// Shutdown then completes each of them with Status Closed.</summary>
    // The waits here are kernel waits with a deadline on the test's own thread: awaiting
    // would need the very pool threads this test keeps scarce.
#pragma warning disable xUnit1031
    [Fact]
    public void WaitingOperationsHoldNoPoolThread()
    {
        using var hole = BlackHole(out var holeAddress);
        using var a = ClusterTests.Create("async-wait-a", tweak: c => { c.TcpTimeout = Forever; c.ProbeTimeout = Forever; });
        using var b = ClusterTests.Create("async-wait-b");
        Assert.Equal(1, b.Join(a.LocalNode.Address));
        ClusterTests.WaitFor("a knows b", () => a.NumMembers == 2);
        b.Shutdown(); // b stops answering: a's pings wait their ProbeTimeout (10 min)

        ThreadPool.GetMinThreads(out int minWorkers, out int minIo);
        ThreadPool.GetMaxThreads(out int maxWorkers, out int maxIo);
        int baseline = Volatile.Read(ref Memberlist.PendingOperations);
        // A few more threads than cores: the test host and xunit keep some pool threads busy
        // themselves; a blocking implementation would hold every one of them all the same.
        int limit = Environment.ProcessorCount + 4;
        try
        {
            Assert.True(ThreadPool.SetMinThreads(1, 1));
            Assert.True(ThreadPool.SetMaxThreads(limit, limit));
            int n = 2 * limit;
            var starters = new List<Task<Task>>();
            for (int i = 0; i < n; i++)
            {
                starters.Add(Task.Factory.StartNew(() => (Task)a.JoinAsync([holeAddress]),
                    CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default));
                starters.Add(Task.Factory.StartNew(() => (Task)a.PingAsync("async-wait-b"),
                    CancellationToken.None, TaskCreationOptions.None, TaskScheduler.Default));
            }
            Assert.True(Task.WaitAll([.. starters], Deadline),
                $"starting the operations held the pool: {starters.Count(t => t.IsCompleted)} of {starters.Count} started, " +
                $"{ThreadPool.ThreadCount} threads, {ThreadPool.PendingWorkItemCount} items waiting");
            var ops = starters.Select(s => s.Result).ToArray();
            Assert.True(Task.Run(() => 42).Wait(Deadline), "a work item queued behind them did not run");
            Assert.All(ops, t => Assert.False(t.IsCompleted, "an operation completed: the peer answered?"));
            Assert.Equal(baseline + ops.Length, Volatile.Read(ref Memberlist.PendingOperations));

            a.Shutdown();
            Assert.True(Task.WhenAll(ops).ContinueWith(_ => { }).Wait(Deadline), "shutdown left operations pending");
            Assert.All(ops, t =>
            {
                var e = Assert.IsType<MemberlistException>(t.Exception!.InnerException);
                Assert.Equal(MemberlistStatus.Closed, e.Status);
            });
            Assert.Equal(baseline, Volatile.Read(ref Memberlist.PendingOperations));
        }
        finally
        {
            ThreadPool.SetMaxThreads(maxWorkers, maxIo);
            ThreadPool.SetMinThreads(minWorkers, minIo);
        }
    }
#pragma warning restore xUnit1031

    /// <summary>Dispose completes what is still pending (Status Closed) before it returns,
    /// and continuations run on the thread pool, not on the library's completion thread
    /// (where this memberlist's blocking calls are refused and a slow continuation would hold
    /// one of its few threads).</summary>
    [Fact]
    public async Task DisposeCompletesPendingAndContinuationsRunOnThePool()
    {
        using var hole = BlackHole(out var holeAddress);
        var c = ClusterTests.Create("async-dispose-c", tweak: cfg => cfg.TcpTimeout = Forever);
        var pending = c.JoinAsync(holeAddress);
        var onPool = pending.ContinueWith(_ => Thread.CurrentThread.IsThreadPoolThread,
            TaskContinuationOptions.ExecuteSynchronously);
        Assert.False(pending.IsCompleted);
        c.Dispose();
        Assert.True(pending.IsCompleted, "Dispose returned before the operation completed");
        var e = await Assert.ThrowsAsync<MemberlistException>(() => pending);
        Assert.Equal(MemberlistStatus.Closed, e.Status);
        Assert.True(await onPool.WaitAsync(Deadline), "the continuation ran on the library's thread");
    }

    [Fact]
    public async Task CancellationCancelsTheTaskOnly()
    {
        using var hole = BlackHole(out var holeAddress);
        using var c = ClusterTests.Create("async-cancel", tweak: cfg => cfg.TcpTimeout = Forever);
        int baseline = Volatile.Read(ref Memberlist.PendingOperations);
        using var cts = new CancellationTokenSource();
        var join = c.JoinAsync([holeAddress], cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => join.WaitAsync(Deadline));
        Assert.Equal(baseline + 1, Volatile.Read(ref Memberlist.PendingOperations)); // still running
        c.Shutdown();
        ClusterTests.WaitFor("the operation's done", () => Volatile.Read(ref Memberlist.PendingOperations) == baseline);
    }
}
