// Callback round-trip cost: a thread calls the event trampoline the library would call
// (unmanaged function pointer -> UnmanagedCallersOnly method, GCHandle lookup, Node copy,
// IEventDelegate call) N times; then the on_message trampoline with a 64-byte payload (copied
// into a byte[]); prints ns per callback.
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run -c Release --project examples/Bench -- [N]
using LibMemberlist;

int n = args.Length > 0 ? int.Parse(args[0]) : 200_000;
using var config = MemberlistConfig.Local();
config.Name = "cs-bench";
config.BindAddress = "127.0.0.1";
config.BindPort = 0;
using var list = Memberlist.Create(config);
var counter = new Counter();
list.BenchEventRoundTrip(counter, Math.Min(n, 10_000)); // warm up the JIT
counter.Count = 0;
var per = list.BenchEventRoundTrip(counter, n);
if (counter.Count != n)
    throw new InvalidOperationException($"{counter.Count} callbacks, want {n}");
Console.WriteLine($"csharp: {per:F0} ns per event callback ({n} callbacks)");
var sink = new MessageCounter();
Memberlist.BenchMessageRoundTrip(sink, 64, Math.Min(n, 10_000)); // warm up
sink.Bytes = 0;
per = Memberlist.BenchMessageRoundTrip(sink, 64, n);
if (sink.Bytes != 64L * n)
    throw new InvalidOperationException($"{sink.Bytes} bytes, want {64L * n}");
Console.WriteLine($"csharp: {per:F0} ns per message callback, 64-byte payload ({n} callbacks)");

sealed class Counter : IEventDelegate
{
    public int Count;
    public void NotifyJoin(Node node) => Count++;
    public void NotifyLeave(Node node) => Count++;
    public void NotifyUpdate(Node node) => Count++;
}

sealed class MessageCounter : IDelegate
{
    public long Bytes;
    public byte[] NodeMeta(int limit) => [];
    public void NotifyMsg(byte[] message) => Bytes += message.Length;
    public IEnumerable<byte[]> GetBroadcasts(int overhead, int limit) => [];
    public byte[] LocalState(bool join) => [];
    public void MergeRemoteState(byte[] state, bool join) { }
}
