using Microsoft.Extensions.Caching.StackExchangeRedis;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// Tells every instance which keys were revoked. A revocation is announced in Redis (<see cref="AnnounceAsync"/>):
/// a counter is incremented and the revoked key's hash, numbered with it, is pushed on a list of the latest
/// <see cref="Kept"/>. Each instance reads the counter every <see cref="Interval"/> (a GET) and, when it moved, the
/// announcements since its last read (a script); <see cref="RememberedKeys"/> then forgets just those keys. Anything else (a read
/// that fails, a counter that went back or skipped more than the list keeps, a list that does not hold every number
/// in between) ends every remembered key instead. One read per instance, however many keys it remembers.
/// </summary>
/// <remarks>
/// A missing counter (Redis restarted empty, or an announcement that failed: see <see cref="AnnounceAsync"/>) is
/// started again at a random number, which no instance can have read before. Redis out of memory refuses the
/// writes of an announcement but not a deletion, and then no counter can be started, so every read fails and
/// nothing is remembered.
/// </remarks>
public sealed partial class RevocationWatch(
    IConnectionMultiplexer redis,
    RedisAvailability availability,
    RememberedKeys keys,
    IOptions<RedisCacheOptions> cacheOptions,
    TimeProvider time,
    ILogger<RevocationWatch> logger) : BackgroundService
{
    /// <summary>How often the counter is read: a fifth of the time a confirmation counts for.</summary>
    public static readonly TimeSpan Interval = ApiKeyStore.LocalLifetime / 5;

    /// <summary>The announcements the list keeps; an instance further behind forgets every key.</summary>
    public const int Kept = 1000;

    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    // A missing counter is started at @start first, as a read would (INCR would start it at 1, where an instance may
    // have read before). The number is written as Redis keeps it: Lua would print a large one in exponent notation.
    private static readonly LuaScript Announce = LuaScript.Prepare("""
        if redis.call('EXISTS', @counter) == 0 then redis.call('SET', @counter, @start) end
        redis.call('INCR', @counter)
        local number = redis.call('GET', @counter)
        redis.call('LPUSH', @list, number .. ':' .. @hash)
        redis.call('LTRIM', @list, 0, tonumber(@kept) - 1)
        return number
        """);

    // The counter, and the announcements after the number last read (newest first) when there are no more than the
    // list keeps; a missing counter is started at @start.
    private static readonly LuaScript Read = LuaScript.Prepare("""
        local number = redis.call('GET', @counter)
        if not number then
            redis.call('SET', @counter, @start)
            return {@start}
        end
        local behind = tonumber(number) - tonumber(@last)
        if behind <= 0 or behind > tonumber(@kept) then return {number} end
        local announced = redis.call('LRANGE', @list, 0, behind - 1)
        table.insert(announced, 1, number)
        return announced
        """);

    private string? _lastRead;

    // Beside the cache's own keys, under its prefix (instances sharing cache entries share revocations), in one hash
    // slot: the scripts touch both.
    private RedisKey CounterKey => cacheOptions.Value.InstanceName + "{api-key-revocations}:counter";

    private RedisKey ListKey => cacheOptions.Value.InstanceName + "{api-key-revocations}:list";

    /// <summary>
    /// Tells every instance <paramref name="keyHash"/> was revoked. If that fails, the counter is deleted, which ends
    /// every key every instance remembers; throws if Redis could not be told either way.
    /// </summary>
    public async Task AnnounceAsync(byte[] keyHash)
    {
        try
        {
            await redis.GetDatabase().ScriptEvaluateAsync(Announce,
                new { counter = CounterKey, list = ListKey, hash = Convert.ToHexStringLower(keyHash), kept = Kept, start = RandomStart() });
        }
        catch (Exception exception) when (RedisAvailability.IsCommandFailure(exception))
        {
            await AnnounceAllAsync();
        }
    }

    /// <summary>Ends every key every instance remembers (after an outage, revocations may have gone unannounced).</summary>
    public Task AnnounceAllAsync() => redis.GetDatabase().KeyDeleteAsync(CounterKey);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        var lastSweep = time.GetTimestamp();
        do
        {
            if (!availability.IsAvailable)
            {
                // The outage itself is logged by RedisAvailability.
                keys.Unconfirmed();
            }
            else
            {
                await ReadAsync();
            }

            if (time.GetElapsedTime(lastSweep) >= SweepInterval)
            {
                keys.Sweep();
                lastSweep = time.GetTimestamp();
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>Reads the counter and what was announced since the last read, once (the loop's step).</summary>
    internal async Task ReadAsync()
    {
        // A read Redis is slow to answer confirms nothing meanwhile: the confirmation it brings counts from when it
        // was sent, so memory stops answering a lifetime after that whatever the wait.
        var sentAt = time.GetTimestamp();
        RedisResult[] answer;
        try
        {
            // Nearly always nothing was announced: a plain GET says so, cheaper than the script.
            var database = redis.GetDatabase();
            if (_lastRead is { } unchanged && await database.StringGetAsync(CounterKey) == unchanged)
            {
                keys.Confirmed(unchanged, sentAt);
                return;
            }

            answer = (RedisResult[])(await database.ScriptEvaluateAsync(Read, new
            {
                counter = CounterKey,
                list = ListKey,
                last = _lastRead ?? "-1",
                kept = Kept,
                start = RandomStart(),
            }))!;
        }
        catch (Exception exception) when (exception is not OperationCanceledException)
        {
            // Whatever failed (Redis, or an answer of an unexpected shape), revocations may go unheard: every
            // remembered key ends, and the loop goes on.
            if (keys.Unconfirmed())
            {
                LogUnconfirmed(exception);
            }

            return;
        }

        var number = (string)answer[0]!;
        if (_lastRead is { } last && number != last && Announced(last, number, answer) is { } revoked)
        {
            keys.Advanced(last, number, revoked, sentAt);
        }
        else
        {
            keys.Confirmed(number, sentAt);
        }

        _lastRead = number;
    }

    // Where a missing counter starts: a number no instance can have read before (a Redis restarted empty, a counter
    // deleted), below 10^14 so that Lua would print it whole, and far from 2^53, where a Lua number loses integers.
    private static string RandomStart() =>
        Random.Shared.NextInt64(1L << 40, 1L << 46).ToString(System.Globalization.CultureInfo.InvariantCulture);

    // The hashes announced after `last` up to `number`, if the answer holds every one of them; else null.
    private static List<byte[]>? Announced(string last, string number, RedisResult[] answer)
    {
        if (!long.TryParse(last, out var from) || !long.TryParse(number, out var to) || to - from != answer.Length - 1)
        {
            return null;
        }

        var revoked = new List<byte[]>(answer.Length - 1);
        for (var index = 1; index < answer.Length; index++)
        {
            var announcement = ((string?)answer[index] ?? "").Split(':');
            var hash = new byte[32];
            if (announcement.Length != 2 || announcement[0] != (to - index + 1).ToString(System.Globalization.CultureInfo.InvariantCulture)
                || Convert.FromHexString(announcement[1], hash, out _, out var written) != System.Buffers.OperationStatus.Done || written != hash.Length)
            {
                return null;
            }

            revoked.Add(hash);
        }

        return revoked;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not read the API key revocation counter; API keys are looked up in the cache tiers again until it is read")]
    private partial void LogUnconfirmed(Exception exception);
}
