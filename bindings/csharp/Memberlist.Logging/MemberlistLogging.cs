using Microsoft.Extensions.Logging;
using MsLogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace LibMemberlist.Logging;

/// <summary>libmemberlist's log lines into an <see cref="ILogger"/>.
/// <code>
/// var ml = Memberlist.Create(config, events: null, log: logger.ToMemberlistLog());
/// </code>
/// With the event queue (<see cref="MemberlistConfig.EventQueue"/>) log lines arrive as
/// events instead: pass them to <see cref="Log(ILogger, MemberlistEvent)"/>. The library
/// filters by <see cref="MemberlistConfig.LogLevel"/> first (set it from
/// <see cref="MinimumLevel"/> to skip formatting lines the logger would drop); the logger
/// filters again as usual.</summary>
public static class MemberlistLogging
{
    /// <summary>The event id every line carries (name "memberlist").</summary>
    public static readonly EventId EventId = new(0, "memberlist");

    /// <summary>A log callback for <see cref="Memberlist.Create(MemberlistConfig, IEventDelegate?, Action{LibMemberlist.LogLevel, string}?, MemberlistRuntime?)"/>
    /// or <see cref="MemberlistDelegates.Log"/> that writes each line to
    /// <paramref name="logger"/>. It runs on the library's callback thread.</summary>
    public static Action<LibMemberlist.LogLevel, string> ToMemberlistLog(this ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        return (level, line) => Write(logger, level, line);
    }

    /// <summary>Writes a log event taken from the event queue; other kinds are ignored.
    /// Returns true if it was a log event.</summary>
    public static bool Log(this ILogger logger, MemberlistEvent ev)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(ev);
        if (ev.Kind != EventKind.Log)
            return false;
        Write(logger, ev.Level, ev.Text);
        return true;
    }

    /// <summary>The level that <see cref="ILogger"/>'s levels map to.</summary>
    public static MsLogLevel ToLogLevel(LibMemberlist.LogLevel level) => level switch
    {
        LibMemberlist.LogLevel.Trace => MsLogLevel.Trace,
        LibMemberlist.LogLevel.Debug => MsLogLevel.Debug,
        LibMemberlist.LogLevel.Info => MsLogLevel.Information,
        LibMemberlist.LogLevel.Warn => MsLogLevel.Warning,
        LibMemberlist.LogLevel.Error => MsLogLevel.Error,
        _ => MsLogLevel.None,
    };

    /// <summary>The least severe library level the logger has enabled (Off if none), for
    /// <see cref="MemberlistConfig.LogLevel"/>.</summary>
    public static LibMemberlist.LogLevel MinimumLevel(this ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        foreach (var level in new[] { LibMemberlist.LogLevel.Trace, LibMemberlist.LogLevel.Debug,
                     LibMemberlist.LogLevel.Info, LibMemberlist.LogLevel.Warn, LibMemberlist.LogLevel.Error })
            if (logger.IsEnabled(ToLogLevel(level)))
                return level;
        return LibMemberlist.LogLevel.Off;
    }

    private static void Write(ILogger logger, LibMemberlist.LogLevel level, string line)
    {
        var msLevel = ToLogLevel(level);
        if (msLevel != MsLogLevel.None && logger.IsEnabled(msLevel))
            logger.Log(msLevel, EventId, line, null, static (s, _) => s);
    }
}
