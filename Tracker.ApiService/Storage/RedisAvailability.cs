using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using StackExchange.Redis;

namespace Tracker.ApiService.Storage;

/// <summary>
/// Whether Redis can be used right now, as the shared connection sees it. Callers with a fallback (the memory
/// tier, in-process rate limits) check it before each use instead of paying a failed command per request. An
/// outage is logged once when it starts and once when it ends, and counted; the connection reconnects by itself,
/// and callers return to Redis as soon as it has.
/// </summary>
public sealed partial class RedisAvailability
{
    private readonly IConnectionMultiplexer _redis;
    private readonly ILogger<RedisAvailability> _logger;
    private readonly Counter<long> _outages;
    private readonly Counter<long> _commandFailures;
    private readonly ConcurrentDictionary<string, bool> _refusalLogged = new();
    private int _down;

    public const string MeterName = "Tracker.Redis";

    public RedisAvailability(IConnectionMultiplexer redis, IMeterFactory meterFactory, ILogger<RedisAvailability> logger)
    {
        _redis = redis;
        _logger = logger;
        var meter = meterFactory.Create(MeterName);
        _outages = meter.CreateCounter<long>("tracker.redis.outages", "{outage}", "Times the shared Redis connection was lost.");
        _commandFailures = meter.CreateCounter<long>("tracker.redis.command.failures", "{command}",
            "Redis commands that failed and fell back (to memory, PostgreSQL or in-process state), by caller.");
        // The multiplexer raises these once per connection (interactive and subscription), so both handlers only
        // act on a change of state.
        redis.ConnectionFailed += (_, failure) => MarkDown(failure.FailureType, failure.Exception);
        redis.ConnectionRestored += (_, _) => MarkUp();
        if (!redis.IsConnected)
        {
            MarkDown(ConnectionFailureType.UnableToConnect, exception: null);
        }
    }

    /// <summary>
    /// Raised once when the connection is back after an outage (on the connection's own thread: handlers hand
    /// their work off). For callers whose writes failed meanwhile and must reach Redis before it is trusted again.
    /// </summary>
    public event Action? Restored;

    /// <summary>True while the shared connection is up; false during an outage, until it reconnects.</summary>
    public bool IsAvailable => _redis.IsConnected;

    /// <summary>
    /// Runs a Redis script for a caller that has a fallback. A failed command (a Redis error or a timeout) is counted
    /// as by <see cref="CommandFailed"/> and returns null, so the caller falls back without a catch of its own.
    /// (A script's nil answer is a <see cref="RedisResult"/> whose <c>IsNull</c> is true, never null.)
    /// </summary>
    public async Task<RedisResult?> TryScriptAsync(string caller, string script, RedisKey[] keys, RedisValue[] values)
    {
        try
        {
            return await _redis.GetDatabase().ScriptEvaluateAsync(script, keys, values);
        }
        catch (Exception exception) when (FellBack(caller, exception))
        {
            return null;
        }
    }

    /// <summary>
    /// Whether <paramref name="exception"/> is a Redis command that failed, which a caller with a fallback falls
    /// back from: an outage, a timeout, an error Redis answered, or a command the client library refused to send
    /// (<see cref="RedisCommandException"/>, which is not a <see cref="RedisException"/>: keys of two hash slots in
    /// one command on a cluster, for one). Anything else is a bug and must not be swallowed.
    /// </summary>
    public static bool IsCommandFailure(Exception exception) =>
        exception is RedisException or RedisCommandException or TimeoutException;

    /// <summary>
    /// For an exception filter: when <paramref name="exception"/> is a failed command, records it as
    /// <see cref="CommandFailed"/> does and returns true, so the catch block is just the fallback.
    /// </summary>
    public bool FellBack(string caller, Exception exception)
    {
        if (!IsCommandFailure(exception))
        {
            return false;
        }

        CommandFailed(caller, exception);
        return true;
    }

    /// <summary>
    /// Records a command that failed although the connection looked up: the caller fell back for that call. The
    /// outage itself, if it is one, is logged by the connection's own failure event; this is counted, and logged
    /// only at debug level, so an outage does not produce a line per request. A command refused while the
    /// connection stays up (an error that is not an outage, such as a misconfigured server or a cluster's slot
    /// rules) would fall back on every call unseen: the first one per caller is logged as a warning.
    /// </summary>
    public void CommandFailed(string caller, Exception exception)
    {
        _commandFailures.Add(1, new KeyValuePair<string, object?>("caller", caller));
        if (exception is RedisServerException or RedisCommandException && _refusalLogged.TryAdd(caller, true))
        {
            LogCommandRefused(caller, exception.Message);
        }
        else
        {
            LogCommandFailed(caller, exception);
        }
    }

    private void MarkDown(ConnectionFailureType failureType, Exception? exception)
    {
        if (Interlocked.Exchange(ref _down, 1) == 0)
        {
            _outages.Add(1);
            LogOutage(failureType, exception?.Message);
        }
    }

    private void MarkUp()
    {
        if (_redis.IsConnected && Interlocked.Exchange(ref _down, 0) == 1)
        {
            LogRestored();
            Restored?.Invoke();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis is unavailable ({FailureType}: {Reason}); caches run from memory and PostgreSQL and rate limits per instance until it is back")]
    private partial void LogOutage(ConnectionFailureType failureType, string? reason);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A Redis command from {Caller} failed; it fell back for this call")]
    private partial void LogCommandFailed(string caller, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis refused a command from {Caller} ({Reason}); it falls back (to memory, PostgreSQL or in-process limits) for this and every such call, logged once")]
    private partial void LogCommandRefused(string caller, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis is available again; shared caching and rate limits resume")]
    private partial void LogRestored();
}
