using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// Tells every instance that some key was revoked: a revocation deletes a random token in Redis
/// (<see cref="AnnounceAsync"/>), and each instance reads it every <see cref="Interval"/>, starting a new one if there
/// is none, and tells <see cref="RememberedKeys"/> what it read, or that it could not. One read per instance, however
/// many keys it remembers. Deleted, not replaced: Redis out of memory refuses writes but not deletions, and then no
/// new token can be started, so nothing is remembered. A random token, not a counter: a Redis restarted empty cannot
/// bring back a value an instance last read.
/// </summary>
public sealed partial class RevocationWatch(
    IConnectionMultiplexer redis,
    RedisAvailability availability,
    RememberedKeys keys,
    IOptions<RedisCacheOptions> cacheOptions,
    TimeProvider time,
    ILogger<RevocationWatch> logger) : BackgroundService
{
    /// <summary>How often the token is read: a fifth of the time a confirmation counts for.</summary>
    public static readonly TimeSpan Interval = ApiKeyStore.LocalLifetime / 5;

    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    // One round trip: the current token, or a new one stored if there is none.
    private static readonly LuaScript ReadOrStart = LuaScript.Prepare("""
        local current = redis.call('GET', @key)
        if current then return current end
        redis.call('SET', @key, @token)
        return @token
        """);

    // Beside the cache's own keys, under its prefix: instances sharing cache entries share revocations.
    private RedisKey TokenKey => cacheOptions.Value.InstanceName + "api-key-revocations";

    /// <summary>Tells every instance a key was revoked. Throws if Redis could not be told.</summary>
    public Task AnnounceAsync() => redis.GetDatabase().KeyDeleteAsync(TokenKey);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        var lastSweep = time.GetTimestamp();
        do
        {
            var sentAt = time.GetTimestamp();
            if (!availability.IsAvailable)
            {
                // The outage itself is logged by RedisAvailability.
                keys.Unconfirmed();
            }
            else
            {
                try
                {
                    // A read Redis is slow to answer confirms nothing meanwhile: the confirmation it brings counts
                    // from when it was sent, so memory stops answering a lifetime after that whatever the wait.
                    var token = await redis.GetDatabase().ScriptEvaluateAsync(ReadOrStart,
                        new { key = TokenKey, token = Guid.NewGuid().ToString("N") });
                    keys.Confirmed((string?)token, sentAt);
                }
                catch (Exception exception) when (RedisAvailability.IsCommandFailure(exception))
                {
                    if (keys.Unconfirmed())
                    {
                        LogUnconfirmed(exception);
                    }
                }
            }

            if (time.GetElapsedTime(lastSweep) >= SweepInterval)
            {
                keys.Sweep();
                lastSweep = time.GetTimestamp();
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the API key revocation token; API keys are looked up in the cache tiers again until it is read")]
    private partial void LogUnconfirmed(Exception exception);
}
