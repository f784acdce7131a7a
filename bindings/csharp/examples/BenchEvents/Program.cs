// Cost per event: pulled from the event queue in batches of 64 against the callback path.
// All three get the same events, metadata updates of the local node (SetMeta), N of them,
// produced before the timer starts:
//   pull:     PollEvents(64) (one batch per call, each event a MemberlistEvent with its Node);
//   channel:  the Events ChannelReader (the binding's thread polls batches of 64 and writes
//             them into a bounded channel; this thread reads them);
//   callback: IEventDelegate.NotifyUpdate on the library's callback thread, which is held
//             while the events are produced; timed from its release to the N-th callback.
// A first round of 2 000 events warms up the JIT.
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run -c Release --project examples/BenchEvents -- [N]
using System.Diagnostics;
using LibMemberlist;

int n = args.Length > 0 ? int.Parse(args[0]) : 50_000;
Run(2_000); // warm-up
var (pull, channel, callback) = Run(n);
Console.WriteLine($"events: {n} (metadata updates of the local node)");
Console.WriteLine($"pulled in batches of 64 (PollEvents): {pull:F0} ns/event");
Console.WriteLine($"Events channel (binding's thread polls, ReadAsync): {channel:F0} ns/event");
Console.WriteLine($"callback (library thread, IEventDelegate): {callback:F0} ns/event");
Console.WriteLine($"ratio callback/pull: {callback / pull:F1}x");

static (double Pull, double Channel, double Callback) Run(int n) =>
    (Pull(n), Channel(n).GetAwaiter().GetResult(), Callback(n));

static MemberlistConfig Config(string name, bool queue)
{
    var config = MemberlistConfig.Local();
    config.Name = name;
    config.BindAddress = "127.0.0.1";
    config.BindPort = 0;
    config.LogLevel = LogLevel.Off;
    config.MaxQueuedCallbacks = 1 << 22;
    config.EventQueue = queue;
    return config;
}

// A queue-mode memberlist with its local join taken and n updates queued.
static Memberlist Produce(string name, int n)
{
    using var config = Config(name, queue: true);
    var list = Memberlist.Create(config);
    var deadline = Stopwatch.StartNew();
    while (!list.PollEvents(1).Any(e => e.Type == NodeEventType.Join))
    {
        if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            throw new TimeoutException("no local join event");
        Thread.Sleep(1);
    }
    for (int i = 0; i < n; i++)
        list.SetMeta([(byte)i, (byte)(i >> 8)], TimeSpan.FromSeconds(1));
    if (list.EventStats.Queued < n)
        throw new InvalidOperationException($"{list.EventStats.Queued} events queued, want {n}");
    return list;
}

static void Expect(MemberlistEvent e)
{
    if (e.Kind != EventKind.Member || e.Type != NodeEventType.Update || e.Node is null)
        throw new InvalidOperationException($"unexpected {e}");
}

static double Pull(int n)
{
    using var list = Produce("cs-bench-pull", n);
    var sw = Stopwatch.StartNew();
    for (int got = 0; got < n;)
    {
        var batch = list.PollEvents(Math.Min(64, n - got));
        foreach (var e in batch)
            Expect(e);
        got += batch.Count;
    }
    return sw.Elapsed.TotalNanoseconds / n;
}

static async Task<double> Channel(int n)
{
    using var list = Produce("cs-bench-channel", n);
    var sw = Stopwatch.StartNew();
    var reader = list.Events; // starts the binding's thread
    for (int got = 0; got < n; got++)
        Expect(await reader.ReadAsync());
    return sw.Elapsed.TotalNanoseconds / n;
}

static double Callback(int n)
{
    var counter = new GatedCounter(n);
    using var config = Config("cs-bench-cb", queue: false);
    using var list = Memberlist.Create(config, counter);
    if (!counter.Joined.Wait(TimeSpan.FromSeconds(30)))
        throw new TimeoutException("no local join event");
    counter.Gate.Reset(); // hold the callback thread while the updates are produced
    for (int i = 0; i < n; i++)
        list.SetMeta([(byte)i, (byte)(i >> 8)], TimeSpan.FromSeconds(1));
    long start = Stopwatch.GetTimestamp();
    counter.Gate.Set();
    if (!counter.Done.Wait(TimeSpan.FromSeconds(120)))
        throw new TimeoutException($"{counter.Updates} of {n} callbacks");
    return Stopwatch.GetElapsedTime(start, counter.End).TotalNanoseconds / n;
}

sealed class GatedCounter(int n) : IEventDelegate
{
    public readonly ManualResetEventSlim Gate = new(true);
    public readonly ManualResetEventSlim Joined = new(false);
    public readonly ManualResetEventSlim Done = new(false);
    public int Updates;
    public long End; // Stopwatch timestamp of the n-th callback

    public void NotifyJoin(Node node) => Joined.Set();
    public void NotifyLeave(Node node) { }
    public void NotifyUpdate(Node node)
    {
        Gate.Wait();
        if (++Updates == n)
        {
            End = Stopwatch.GetTimestamp();
            Done.Set();
        }
    }
}
