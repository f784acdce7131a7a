using System.Threading.Channels;

namespace LibMemberlist.Tests;

/// <summary>Events without callbacks: the 3-node scenario read through
/// <see cref="Memberlist.ReadEventsAsync"/>, polling with the fd, and the pump's end.</summary>
public class EventsTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    private static Memberlist Create(string name, Action<MemberlistConfig>? tweak = null)
    {
        using var c = ClusterTests.FastConfig(name);
        c.EventQueue = true;
        c.LogLevel = LogLevel.Warn;
        tweak?.Invoke(c);
        return Memberlist.Create(c);
    }

    /// <summary>Reads events until one matches (or fails after the deadline).</summary>
    private static async Task<MemberlistEvent> Until(IAsyncEnumerator<MemberlistEvent> e, string what,
        Func<MemberlistEvent, bool> cond)
    {
        using var cts = new CancellationTokenSource(Deadline);
        while (true)
        {
            bool more;
            try { more = await e.MoveNextAsync().AsTask().WaitAsync(cts.Token); }
            catch (OperationCanceledException) { throw new Xunit.Sdk.XunitException($"timed out waiting for {what}"); }
            Assert.True(more, $"the events ended before {what}");
            if (cond(e.Current))
                return e.Current;
        }
    }

    private static Func<MemberlistEvent, bool> Member(NodeEventType type, string name, NodeState state) =>
        ev => ev.Kind == EventKind.Member && ev.Type == type && ev.Node!.Name == name && ev.Node.State == state;

    [Fact]
    public async Task ThreeNodeClusterThroughTheEventStream()
    {
        using var a = Create("cs-ev-a", c => c.Meta = "role=seed"u8.ToArray());
        using var b = Create("cs-ev-b");
        using var c = Create("cs-ev-c");
        await using var ea = a.ReadEventsAsync().GetAsyncEnumerator();
        await using var eb = b.ReadEventsAsync().GetAsyncEnumerator();
        await using var ec = c.ReadEventsAsync().GetAsyncEnumerator();

        var first = await Until(ea, "a's own join", _ => true);
        Assert.Equal(EventKind.Member, first.Kind);
        Assert.Equal("cs-ev-a", first.Node!.Name);
        b.Join(a.LocalNode.Address);
        c.Join(a.LocalNode.Address);
        await Until(ea, "a sees b join", Member(NodeEventType.Join, "cs-ev-b", NodeState.Alive));
        await Until(ea, "a sees c join", Member(NodeEventType.Join, "cs-ev-c", NodeState.Alive));
        var seen = await Until(ec, "c sees a", Member(NodeEventType.Join, "cs-ev-a", NodeState.Alive));
        Assert.Equal("role=seed"u8.ToArray(), seen.Node!.Meta);

        b.SetMeta("v2"u8.ToArray(), TimeSpan.FromSeconds(10));
        await Until(ea, "a sees b's update", ev => ev.Kind == EventKind.Member && ev.Type == NodeEventType.Update
            && ev.Node!.Name == "cs-ev-b" && ev.Node.Meta.SequenceEqual("v2"u8.ToArray()));

        // Epidemic delivery is probabilistic (a loaded machine may lose one): queue another once
        // the last is done, until a and c have one (as the other tests do).
        Func<MemberlistEvent, bool> news = ev => ev.Kind == EventKind.Broadcast && ev.Origin == "cs-ev-b"
            && ev.Name == "topic" && System.Text.Encoding.UTF8.GetString(ev.Data).StartsWith("news #");
        bool seenA = false, seenC = false;
        Task<MemberlistEvent>? atA = null, atC = null;
        for (int round = 1; !(seenA && seenC); round++)
        {
            Assert.True(round <= 50, "50 broadcasts and a or c never got one");
            var id = b.QueueBroadcast("topic", System.Text.Encoding.UTF8.GetBytes($"news #{round}"));
            await Until(eb, "b's broadcast delivered", ev => ev.Kind == EventKind.BroadcastDone && ev.Id == id
                && ev.Outcome == BroadcastOutcome.Settled);
            atA ??= Until(ea, "the broadcast at a", news);
            atC ??= Until(ec, "the broadcast at c", news);
            seenA = atA.IsCompleted;
            seenC = atC.IsCompleted;
        }
        await atA!;
        await atC!;

        for (int i = 0; i < 5; i++)
            b.SendReliable("cs-ev-a", System.Text.Encoding.UTF8.GetBytes($"m{i}"));
        for (int i = 0; i < 5; i++)
        {
            var m = await Until(ea, $"message {i}", ev => ev.Kind == EventKind.Message);
            Assert.Equal($"m{i}", System.Text.Encoding.UTF8.GetString(m.Data));
        }

        c.Leave(TimeSpan.FromSeconds(10));
        await Until(ea, "a sees c left", Member(NodeEventType.Leave, "cs-ev-c", NodeState.Left));
        c.Shutdown();
        b.Shutdown(); // no leave: a must detect the failure
        await Until(ea, "a sees b dead", Member(NodeEventType.Leave, "cs-ev-b", NodeState.Dead));
        Assert.Equal(0ul, a.EventStats.Dropped);
    }

    [Fact]
    public void PollEventsWithTheFd()
    {
        using var m = Create("cs-ev-poll");
        int fd = m.EventFd;
        Assert.True(fd >= 0);
        ClusterTests.WaitFor("the local join", () => m.EventStats.Queued > 0);
        var evs = m.PollEvents(8);
        Assert.Equal(EventKind.Member, evs[0].Kind);
        Assert.Equal("cs-ev-poll", evs[0].Node!.Name);
        Assert.Empty(m.PollEvents());
        var first = m.QueueBroadcast("k", "x"u8.ToArray());
        m.QueueBroadcast("k", "y"u8.ToArray()); // replaces the first
        var done = m.PollEvents();
        Assert.Single(done);
        Assert.Equal(first, done[0].Id);
        Assert.Equal(BroadcastOutcome.Replaced, done[0].Outcome);
        Assert.Throws<ArgumentOutOfRangeException>(() => m.PollEvents(0));
    }

    [Fact]
    public void WithoutTheQueueTheEventCallsThrowState()
    {
        using var m = ClusterTests.Create("cs-ev-none");
        var e = Assert.Throws<MemberlistException>(() => m.PollEvents());
        Assert.Equal(MemberlistStatus.State, e.Status);
        Assert.Throws<MemberlistException>(() => m.Events);
        using var c = ClusterTests.FastConfig("cs-ev-refused");
        c.EventQueue = true;
        Assert.True(c.EventQueue);
        var refused = Assert.Throws<MemberlistException>(() => Memberlist.Create(c, new ClusterTests.Recorder()));
        Assert.Equal(MemberlistStatus.Invalid, refused.Status);
    }

    [Fact]
    public async Task TheChannelCompletesAfterShutdownAndAfterDispose()
    {
        var m = Create("cs-ev-end");
        var reader = m.Events;
        var id = m.QueueBroadcast(null, "pending"u8.ToArray());
        m.Shutdown();
        var outcomes = new List<MemberlistEvent>();
        using var cts = new CancellationTokenSource(Deadline);
        await foreach (var ev in reader.ReadAllAsync(cts.Token))
            outcomes.Add(ev);
        Assert.Contains(outcomes, ev => ev.Kind == EventKind.BroadcastDone && ev.Id == id
            && ev.Outcome == BroadcastOutcome.Dropped);
        m.Dispose();

        // A channel nobody reads: Dispose ends the pump all the same.
        var n = Create("cs-ev-full", c => c.MaxQueuedCallbacks = 4000);
        var r = n.Events;
        for (int i = 0; i < 1500; i++)
            n.QueueBroadcast("same", "x"u8.ToArray());
        ClusterTests.WaitFor("the channel full", () => r.Count >= 1024);
        n.Dispose();
        // The pump completed the writer: the reader ends once the 1024 waiting are read.
        int read = 0;
        using var cts2 = new CancellationTokenSource(Deadline);
        await foreach (var _ in r.ReadAllAsync(cts2.Token))
            read++;
        Assert.True(read >= 1024);
        Assert.True(r.Completion.IsCompleted);
    }
}
