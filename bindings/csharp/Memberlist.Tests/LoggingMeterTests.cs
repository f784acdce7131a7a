using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using LibMemberlist.Logging;
using Microsoft.Extensions.Logging;
using MsLogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace LibMemberlist.Tests;

/// <summary>The ILogger adapter and the System.Diagnostics.Metrics instruments.</summary>
public class LoggingMeterTests
{
    /// <summary>Keeps every line with its level and event id.</summary>
    private sealed class ListLogger(MsLogLevel minimum) : ILogger
    {
        public readonly ConcurrentQueue<(MsLogLevel Level, EventId Id, string Text)> Lines = new();
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(MsLogLevel logLevel) => logLevel >= minimum;
        public void Log<TState>(MsLogLevel logLevel, EventId eventId, TState state, Exception? exception,
            Func<TState, Exception?, string> formatter) => Lines.Enqueue((logLevel, eventId, formatter(state, exception)));
    }

    [Fact]
    public void LoggerReceivesTheLibrarysLines()
    {
        var logger = new ListLogger(MsLogLevel.Debug);
        Assert.Equal(LogLevel.Debug, logger.MinimumLevel());
        using var a = ClusterTests.Create("log-a", tweak: c => c.LogLevel = logger.MinimumLevel(),
            log: logger.ToMemberlistLog());
        // The library logs its listening address at INFO when it starts.
        ClusterTests.WaitFor("the start-up line", () => logger.Lines.Any(l =>
            l.Level == MsLogLevel.Information && l.Text.Contains("listening on")));
        Assert.All(logger.Lines, l => Assert.Equal("memberlist", l.Id.Name));
        // A failed join logs at DEBUG or above; nothing below the logger's minimum arrives.
        Assert.ThrowsAny<MemberlistException>(() => a.Join("127.0.0.1:1"));
        Assert.DoesNotContain(logger.Lines, l => l.Level < MsLogLevel.Debug);

        // The event queue's log events, through the same adapter.
        var queued = new ListLogger(MsLogLevel.Information);
        using var q = ClusterTests.Create("log-q", tweak: c => { c.EventQueue = true; c.LogLevel = LogLevel.Info; });
        var seen = new List<MemberlistEvent>();
        ClusterTests.WaitFor("the start-up line as an event", () =>
        {
            foreach (var ev in q.PollEvents())
                queued.Log(ev);
            return queued.Lines.Any(l => l.Text.Contains("listening on"));
        });
    }

    [Fact]
    public void MeterReportsCountersGaugesAndTimers()
    {
        using var a = ClusterTests.Create("meter-a");
        using var b = ClusterTests.Create("meter-b");
        Assert.Equal(1, b.Join(a.LocalNode.Address));
        ClusterTests.WaitFor("two members", () => a.NumMembers == 2);
        // Probes of b complete: memberlist.probeNode (a timer) has samples.
        ClusterTests.WaitFor("a probe timed", () => a.Metrics().Any(m => m.Name == "memberlist.probeNode" && m.Count > 0));

        using var meter = new MemberlistMeter(a);
        Assert.Equal("LibMemberlist", meter.Meter.Name);
        var seen = new ConcurrentDictionary<string, (double Value, Dictionary<string, object?> Tags)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter == meter.Meter)
                l.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument i, double v, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var d = new Dictionary<string, object?>();
            foreach (var t in tags)
                d[t.Key] = t.Value;
            var key = i.Name + (d.TryGetValue("node_state", out var st) ? "/" + st : "");
            seen[key] = (v, d);
        }
        listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        listener.Start();

        ClusterTests.WaitFor("counters, gauges and a timer", () =>
        {
            listener.RecordObservableInstruments();
            return seen.TryGetValue("memberlist.udp.sent", out var sent) && sent.Value > 0 &&
                seen.ContainsKey("memberlist.node.instances/alive") &&
                seen.TryGetValue("memberlist.probeNode.count", out var probes) && probes.Value > 0 &&
                seen.ContainsKey("memberlist.probeNode.sum");
        });
        // A gauge sampled by the core at its own moments (start, push/pulls): at least a itself.
        Assert.True(seen["memberlist.node.instances/alive"].Value >= 1);
        Assert.All(seen.Values, m => Assert.Equal("meter-a", m.Tags["memberlist.node"]));
        var instrument = seen["memberlist.udp.sent"];

        // Counters keep growing between collections; after Dispose nothing more is reported.
        double before = instrument.Value;
        ClusterTests.WaitFor("udp.sent grows", () =>
        {
            listener.RecordObservableInstruments();
            return seen["memberlist.udp.sent"].Value > before;
        });
        a.Dispose();
        ClusterTests.WaitFor("no reports once the memberlist is disposed", () =>
        {
            seen.Clear();
            listener.RecordObservableInstruments();
            return seen.IsEmpty;
        });
    }
}
