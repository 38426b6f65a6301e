using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using StackExchange.Redis;
using Tracker.ApiService.Storage;

namespace Tracker.ApiService.Ingest;

/// <summary>
/// The <c>Idempotency-Key</c> request header of the ingest routes (draft-ietf-httpapi-idempotency-key-header).
/// Two parts with different jobs:
/// <list type="bullet">
/// <item>Storing once does not depend on this class: every log of such a request without an id of its own gets
/// one derived from the key (<see cref="DeriveLogId"/>), so PostgreSQL's log-id deduplication, in the storing
/// transaction, makes a repeat store nothing new — also across instances, restarts and Redis outages.</item>
/// <item>This class gives the header its HTTP meaning, in Redis: a repeat of a completed request gets the original
/// answer, a repeat while the first is in flight gets 409, the same key with another body gets 422. While Redis is
/// unreachable those checks are skipped and a repeat is simply processed again (and stores nothing twice).</item>
/// </list>
/// </summary>
public sealed class IdempotencyKeys(RedisAvailability availability, IOptions<IngestOptions> options)
{
    public const string HeaderName = "Idempotency-Key";
    public const int MaxLength = 255;

    // Claims the key if nobody has (in flight, with a lifetime), else returns what is there.
    private const string ClaimScript = """
        if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
        return redis.call('GET', KEYS[1])
        """;

    // Forgets a claim only if it is still this one's in-flight mark.
    private const string ReleaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """;

    // Keeps the answer only if the key still holds this claim's in-flight mark: a claim that outlived its lifetime
    // must not overwrite the record of a request that claimed the key after it.
    private const string CompleteScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end
        return false
        """;

    /// <summary>
    /// Reads the header: a structured-field string (<c>"abc"</c>) or, leniently, the bare characters. Null when the
    /// request has none; false when it is malformed (empty, too long, or not visible ASCII).
    /// </summary>
    public static bool TryRead(HttpRequest request, out string? key)
    {
        key = null;
        if (!request.Headers.TryGetValue(HeaderName, out var values))
        {
            return true;
        }

        if (values.Count != 1 || values[0] is not { } raw)
        {
            return false;
        }

        var text = raw.Length >= 2 && raw[0] == '"' && raw[^1] == '"' ? raw[1..^1] : raw;
        if (text.Length is 0 or > MaxLength || text.AsSpan().ContainsAnyExceptInRange('!', '~'))
        {
            return false;
        }

        key = text;
        return true;
    }

    /// <summary>
    /// The id given to log <paramref name="index"/> of a request with this key when it has none of its own. It starts
    /// with a space, which a client's own id (visible ASCII only) never holds, so the two can never collide.
    /// </summary>
    public static string DeriveLogId(string key, int index) =>
        " k" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(key)), 0, 18) + ":" + index.ToString(CultureInfo.InvariantCulture);

    /// <summary>What identifies a request's content: its route and its validated logs, in order.</summary>
    public static string Fingerprint(string route, IReadOnlyList<LogRecord> logs)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Add(string? value)
        {
            var text = value ?? "\0null";
            hash.AppendData(BitConverter.GetBytes(text.Length));
            hash.AppendData(Encoding.UTF8.GetBytes(text));
        }

        Add(route);
        foreach (var log in logs)
        {
            Add(log.Id);
            Add(log.OccurredAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
            Add(log.IpAddress.ToString());
            Add(log.Method);
            Add(log.Endpoint);
            // Only when present, so a request without them keeps the fingerprint it had before they existed. A NUL
            // is in no id, so these cannot be read as the next log's id.
            if (log.StatusCode is { } status)
            {
                Add("\0status:" + status.ToString(CultureInfo.InvariantCulture));
            }

            if (log.DurationMs is { } duration)
            {
                Add("\0duration:" + duration.ToString("R", CultureInfo.InvariantCulture));
            }
        }

        return Convert.ToBase64String(hash.GetHashAndReset());
    }

    /// <summary>Looks the key up for <paramref name="clientId"/> and, if nobody holds it, claims it for this request.</summary>
    public async Task<IdempotencyClaim> ClaimAsync(Guid clientId, string key, string fingerprint)
    {
        var redisKey = new RedisKey($"tracker:idempotency:{clientId:N}:{Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))}");
        // A nonce of its own, so that two claims of the same key and body are told apart on release and completion.
        var inFlight = "inflight|" + fingerprint + "|" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        if (!availability.IsAvailable)
        {
            return IdempotencyClaim.Unchecked;
        }

        // A claim lives longer than a request may wait for its commit (its deadline, and at most one more commit
        // timeout while a batch that holds a younger request finishes), so only a crashed instance's claim ends.
        var lifetime = (long)TimeSpan.FromSeconds(2 * options.Value.CommitTimeoutSeconds + 10).TotalMilliseconds;
        if (await availability.TryScriptAsync(nameof(IdempotencyKeys), ClaimScript, [redisKey], [inFlight, lifetime]) is not { } existing)
        {
            return IdempotencyClaim.Unchecked;
        }

        if (existing.IsNull)
        {
            return new IdempotencyClaim(IdempotencyState.Owned, null, this, redisKey, inFlight);
        }

        var parts = ((string)existing!).Split('|');
        if (parts[1] != fingerprint)
        {
            return new IdempotencyClaim(IdempotencyState.Mismatch, null, this, redisKey, inFlight);
        }

        return parts[0] == "inflight"
            ? new IdempotencyClaim(IdempotencyState.InFlight, null, this, redisKey, inFlight)
            : new IdempotencyClaim(IdempotencyState.Replay, StoredAnswer.Parse(parts[2]), this, redisKey, inFlight);
    }

    internal async Task CompleteAsync(RedisKey redisKey, string inFlight, StoredAnswer answer)
    {
        var fingerprint = inFlight.Split('|')[1];
        var done = "done|" + fingerprint + "|" + answer;
        var keep = (long)TimeSpan.FromHours(options.Value.IdempotencyKeyHours).TotalMilliseconds;
        // If it fails, a repeat is processed again, and stores nothing twice (see DeriveLogId).
        await availability.TryScriptAsync(nameof(IdempotencyKeys), CompleteScript, [redisKey], [inFlight, done, keep]);
    }

    // If it fails, the claim expires by itself.
    internal Task ReleaseAsync(RedisKey redisKey, string inFlight) =>
        availability.TryScriptAsync(nameof(IdempotencyKeys), ReleaseScript, [redisKey], [inFlight]);
}

/// <summary>What <see cref="IdempotencyKeys.ClaimAsync"/> found.</summary>
public enum IdempotencyState
{
    /// <summary>This request holds the key: process it, then <see cref="IdempotencyClaim.CompleteAsync"/> or let it go.</summary>
    Owned,

    /// <summary>Redis could not be asked: process the request; derived log ids still keep it from storing twice.</summary>
    Unchecked,

    /// <summary>A request with this key and body completed: answer <see cref="IdempotencyClaim.Answer"/>.</summary>
    Replay,

    /// <summary>A request with this key and body is being processed now: 409.</summary>
    InFlight,

    /// <summary>This key was used with another body: 422.</summary>
    Mismatch,
}

/// <summary>The original answer of a completed request, as kept for its repeats.</summary>
public sealed record StoredAnswer(int Status, int Accepted, int? Stored, int? Duplicates)
{
    public override string ToString() => string.Join(',', Status, Accepted, Stored?.ToString(CultureInfo.InvariantCulture) ?? "", Duplicates?.ToString(CultureInfo.InvariantCulture) ?? "");

    public static StoredAnswer Parse(string text)
    {
        var parts = text.Split(',');
        return new StoredAnswer(
            int.Parse(parts[0], CultureInfo.InvariantCulture),
            int.Parse(parts[1], CultureInfo.InvariantCulture),
            parts[2].Length == 0 ? null : int.Parse(parts[2], CultureInfo.InvariantCulture),
            parts[3].Length == 0 ? null : int.Parse(parts[3], CultureInfo.InvariantCulture));
    }
}

/// <summary>
/// A request's hold on its idempotency key. An <see cref="IdempotencyState.Owned"/> claim must be settled: completed
/// with the answer the client got, or, when nothing was stored, disposed unsettled, which lets the key go so that a
/// retry is processed anew.
/// </summary>
public sealed class IdempotencyClaim : IAsyncDisposable
{
    public static readonly IdempotencyClaim Unchecked = new(IdempotencyState.Unchecked, null, null, default, "");

    private readonly IdempotencyKeys? _keys;
    private readonly RedisKey _redisKey;
    private readonly string _inFlight;
    private bool _settled;

    internal IdempotencyClaim(IdempotencyState state, StoredAnswer? answer, IdempotencyKeys? keys, RedisKey redisKey, string inFlight)
    {
        State = state;
        Answer = answer;
        _keys = keys;
        _redisKey = redisKey;
        _inFlight = inFlight;
        _settled = state != IdempotencyState.Owned;
    }

    public IdempotencyState State { get; }

    /// <summary>For <see cref="IdempotencyState.Replay"/>: the original answer.</summary>
    public StoredAnswer? Answer { get; }

    /// <summary>Keeps <paramref name="answer"/> for the key's repeats (an owned claim only).</summary>
    public async Task CompleteAsync(StoredAnswer answer)
    {
        if (!_settled && _keys is not null)
        {
            _settled = true;
            await _keys.CompleteAsync(_redisKey, _inFlight, answer);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_settled && _keys is not null)
        {
            _settled = true;
            await _keys.ReleaseAsync(_redisKey, _inFlight);
        }
    }
}
