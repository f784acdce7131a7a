using LibMemberlist.Interop;
using static LibMemberlist.Tests.ClusterTests;

namespace LibMemberlist.Tests;

public class GcStressTests
{
    /// <summary>Tests that count live GCHandles take this lock so others do not disturb them.</summary>
    internal static readonly object LiveLock = new();

    /// <summary>Collects continuously while several nodes join, gossip, log at debug level and
    /// leave: callbacks must only ever see live managed objects.</summary>
    [Fact]
    public void CollectDuringCallbacks()
    {
        lock (LiveLock)
        {
            int before = Volatile.Read(ref CallbackState.Live);
            using var stop = new CancellationTokenSource();
            var collector = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
            });
            collector.Start();
            long logLines = 0;
            var recorders = Enumerable.Range(0, 4).Select(_ => new Recorder()).ToArray();
            var nodes = recorders.Select((r, i) => Create($"cs-gc-{i}", r, c => c.LogLevel = LogLevel.Debug,
                (_, _) => Interlocked.Increment(ref logLines))).ToArray();
            try
            {
                var seed = nodes[0].LocalNode.Address;
                foreach (var m in nodes.Skip(1))
                    m.Join(seed);
                WaitFor("four members", () => nodes.All(m => m.NumMembers == 4));
                foreach (var m in nodes.Skip(2))
                {
                    m.Leave(TimeSpan.FromSeconds(5));
                    m.Dispose();
                }
                WaitFor("two members", () => nodes[0].NumMembers == 2);
            }
            finally
            {
                foreach (var m in nodes)
                    m.Dispose();
                stop.Cancel();
                collector.Join();
            }
            Assert.True(recorders[0].Events.Count >= 4);
            Assert.Equal(before, Volatile.Read(ref CallbackState.Live));
        }
    }
}
