using LibMemberlist.Interop;
using static LibMemberlist.Tests.ClusterTests;

namespace LibMemberlist.Tests;

public class GcStressTests
{
    /// <summary>Tests that count live GCHandles take this lock so others do not disturb them.</summary>
    internal static readonly object LiveLock = new();

    /// <summary>Collects continuously while nodes join, gossip, log at trace level and leave,
    /// cycle after cycle: callbacks must only ever see live managed objects, and every GCHandle
    /// must be freed in the end.</summary>
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
            Memberlist Node(string name, Recorder r) => Create(name, r, c => c.LogLevel = LogLevel.Trace,
                (_, _) => Interlocked.Increment(ref logLines));
            var recorders = Enumerable.Range(0, 3).Select(_ => new Recorder()).ToArray();
            var nodes = recorders.Select((r, i) => Node($"cs-gc-{i}", r)).ToArray();
            const int cycles = 8;
            try
            {
                var seed = nodes[0].LocalNode.Address;
                foreach (var m in nodes.Skip(1))
                    m.Join(seed);
                WaitFor("three members", () => nodes.All(m => m.NumMembers == 3));
                for (int i = 0; i < cycles; i++)
                {
                    using var guest = Node($"cs-gc-guest-{i}", new Recorder());
                    guest.Join(seed);
                    WaitFor("guest joined", () => nodes.All(m => m.NumMembers == 4));
                    guest.Leave(TimeSpan.FromSeconds(5));
                    guest.Dispose();
                    WaitFor("guest left", () => nodes.All(m => m.NumMembers == 3));
                }
            }
            finally
            {
                foreach (var m in nodes)
                    m.Dispose();
                stop.Cancel();
                collector.Join();
            }
            Assert.True(recorders[0].Events.Count >= 3 + 2 * cycles, $"{recorders[0].Events.Count} events");
            Assert.True(Interlocked.Read(ref logLines) > 0);
            Assert.Equal(before, Volatile.Read(ref CallbackState.Live));
        }
    }
}
