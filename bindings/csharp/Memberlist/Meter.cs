using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace LibMemberlist;

/// <summary>A memberlist's metrics (<see cref="Memberlist.Metrics"/>) as
/// <see cref="System.Diagnostics.Metrics"/> instruments, for the tools .NET already runs
/// (dotnet-counters, OpenTelemetry's AddMeter("LibMemberlist"), a MeterListener).
/// <para>Observable instruments read a snapshot of the library's metrics when a listener
/// collects (at most one snapshot per 100 ms, shared by the instruments): nothing is recorded
/// or called across the boundary while nobody listens, and it works with callbacks and with
/// the event queue alike. Names are the library's ("memberlist.msg.alive", ...):</para>
/// <list type="bullet">
/// <item>a counter becomes an ObservableCounter&lt;double&gt; of that name;</item>
/// <item>a gauge an ObservableGauge&lt;double&gt;;</item>
/// <item>a timer (a summary of durations) two ObservableCounters: name + ".count" (samples)
/// and name + ".sum" (their sum, unit "ms").</item>
/// </list>
/// <para>The library's labels (node_state="alive") become tags, and every measurement carries
/// the tag "memberlist.node" with the local node's name, so that several memberlists can
/// share the meter name. A metric appears with its first sample, as in the library: its
/// instruments are created when a snapshot first shows it, and report from the next
/// collection on. Dispose (or disposing the memberlist) ends the reports.</para></summary>
public sealed class MemberlistMeter : IDisposable
{
    /// <summary>The default meter name.</summary>
    public const string DefaultMeterName = "LibMemberlist";

    private static readonly TimeSpan SnapshotLifetime = TimeSpan.FromMilliseconds(100);

    private readonly Memberlist _memberlist;
    private readonly bool _ownsMeter;
    private readonly KeyValuePair<string, object?> _nodeTag;
    private readonly object _lock = new();
    private readonly HashSet<(string, MetricKind)> _known = [];
    private IReadOnlyList<Metric> _snapshot = [];
    private long _taken = long.MinValue;
    private volatile bool _disposed;

    /// <summary>Publishes the metrics of <paramref name="memberlist"/> on
    /// <paramref name="meter"/>, or on a new Meter named <see cref="DefaultMeterName"/> that
    /// this object owns and disposes.</summary>
    public MemberlistMeter(Memberlist memberlist, Meter? meter = null)
    {
        ArgumentNullException.ThrowIfNull(memberlist);
        _memberlist = memberlist;
        _ownsMeter = meter is null;
        Meter = meter ?? new Meter(DefaultMeterName, typeof(MemberlistMeter).Assembly.GetName().Version?.ToString());
        _nodeTag = new("memberlist.node", memberlist.LocalNode.Name);
        Snapshot(); // instruments for every metric the node has so far
    }

    /// <summary>The meter the instruments live on.</summary>
    public Meter Meter { get; }

    /// <summary>Stops reporting; disposes the meter if this object created it.</summary>
    public void Dispose()
    {
        _disposed = true;
        if (_ownsMeter)
            Meter.Dispose();
    }

    /// <summary>The shared snapshot, refreshed when older than 100 ms; creates the instruments
    /// of metrics seen for the first time. Empty once disposed or the memberlist is.</summary>
    private IReadOnlyList<Metric> Snapshot()
    {
        List<Metric>? fresh = null;
        lock (_lock)
        {
            if (_disposed)
                return [];
            long now = Stopwatch.GetTimestamp();
            if (_taken != long.MinValue && Stopwatch.GetElapsedTime(_taken, now) < SnapshotLifetime)
                return _snapshot;
            try { _snapshot = _memberlist.Metrics(); }
            catch (ObjectDisposedException) { _snapshot = []; }
            _taken = now;
            foreach (var m in _snapshot)
                if (_known.Add((m.Name, m.Kind)))
                    (fresh ??= []).Add(m);
        }
        // Outside the lock: publishing an instrument calls the listeners' InstrumentPublished.
        foreach (var m in fresh ?? [])
            Create(m.Name, m.Kind);
        return _snapshot;
    }

    private void Create(string name, MetricKind kind)
    {
        switch (kind)
        {
            case MetricKind.Counter:
                Meter.CreateObservableCounter(name, () => Observe(name, kind, m => m.Value));
                break;
            case MetricKind.Gauge:
                Meter.CreateObservableGauge(name, () => Observe(name, kind, m => m.Value));
                break;
            case MetricKind.Timer:
                Meter.CreateObservableCounter(name + ".count", () => ObserveCount(name));
                Meter.CreateObservableCounter(name + ".sum", () => Observe(name, kind, m => m.SumMs), unit: "ms");
                break;
        }
    }

    private IEnumerable<Measurement<double>> Observe(string name, MetricKind kind, Func<Metric, double> value)
    {
        var result = new List<Measurement<double>>();
        foreach (var m in Snapshot())
            if (m.Kind == kind && m.Name == name)
                result.Add(new Measurement<double>(value(m), Tags(m.Labels)));
        return result;
    }

    private IEnumerable<Measurement<long>> ObserveCount(string name)
    {
        var result = new List<Measurement<long>>();
        foreach (var m in Snapshot())
            if (m.Kind == MetricKind.Timer && m.Name == name)
                result.Add(new Measurement<long>((long)m.Count, Tags(m.Labels)));
        return result;
    }

    /// <summary>The node tag plus the labels, parsed from their Prometheus form
    /// (a="x",b="y\"z").</summary>
    private KeyValuePair<string, object?>[] Tags(string labels)
    {
        var tags = new List<KeyValuePair<string, object?>> { _nodeTag };
        int i = 0;
        while (i < labels.Length)
        {
            int eq = labels.IndexOf("=\"", i, StringComparison.Ordinal);
            if (eq < 0)
                break;
            var key = labels[i..eq].Trim(' ', ',');
            var value = new System.Text.StringBuilder();
            int j = eq + 2;
            for (; j < labels.Length && labels[j] != '"'; j++)
            {
                if (labels[j] == '\\' && j + 1 < labels.Length)
                {
                    j++;
                    value.Append(labels[j] == 'n' ? '\n' : labels[j]);
                }
                else
                {
                    value.Append(labels[j]);
                }
            }
            tags.Add(new(key, value.ToString()));
            i = j + 1;
        }
        return [.. tags];
    }
}
