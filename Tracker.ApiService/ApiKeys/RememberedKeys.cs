using System.Buffers.Binary;
using System.Collections.Concurrent;

namespace Tracker.ApiService.ApiKeys;

/// <summary>
/// The active keys this instance has looked up, answered from memory for as long as <see cref="RevocationWatch"/>
/// confirms they were not revoked, instead of for <see cref="ApiKeyStore.LocalLifetime"/> only. With many keys each
/// sending a request every second or so, nearly every request otherwise read its key from Redis again (HybridCache's
/// memory tier keeps an entry a fixed time, and cannot drop it when another instance revokes a key).
/// </summary>
/// <remarks>
/// A remembered key is answered while the watch's <see cref="State.Version"/> is still the one its lookup began under,
/// the watch last confirmed where the revocations stand less than <see cref="ApiKeyStore.LocalLifetime"/> ago
/// (counted from when its read was sent), and its lookup began less than <see cref="MaxAge"/> ago. A revocation the
/// watch reads forgets that key (<see cref="Advanced"/>); the version changes, ending every entry, when the watch
/// cannot tell which keys were revoked: a read that fails or comes after confirmations lapsed, or announcements it
/// cannot account for. So a revoked key is answered from here at most <see cref="ApiKeyStore.LocalLifetime"/> after
/// its revocation was announced, the bound HybridCache's memory tier keeps. A lookup is remembered only if it began
/// at least <see cref="ApiKeyStore.LocalLifetime"/> into its version and after its key was last forgotten, and took
/// less than that: HybridCache's memory tier may have answered it with an entry that old. <see cref="MaxAge"/> bounds
/// a revocation no announcement told of (made by an instance of an earlier version, or in PostgreSQL by hand), an
/// old answer a racing lookup wrote back to Redis, and one a lookup got by joining a load that began before the
/// revocation and took over a second (HybridCache lets concurrent lookups share one load; that load also writes its
/// answer to Redis, where it lives ten minutes, as it did before remembered keys). Only keys that exist are remembered (anyone can present made-up
/// keys).
/// </remarks>
public sealed class RememberedKeys(TimeProvider time)
{
    /// <summary>How long after its lookup began an entry is answered, at most.</summary>
    public static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);

    private static readonly TimeSpan Lifetime = ApiKeyStore.LocalLifetime;

    private readonly ConcurrentDictionary<Hash, Entry> _entries = new();
    private readonly ConcurrentDictionary<Hash, long> _forgottenAt = new();
    private readonly Lock _stateLock = new();
    private State _state = new(Version: 0, Token: null, Healthy: false, ConfirmedAt: 0, Since: time.GetTimestamp());

    /// <summary>The version now: it changes whenever every remembered key ends.</summary>
    public long Version => Volatile.Read(ref _state).Version;

    /// <summary>How many keys are remembered now.</summary>
    public int Count => _entries.Count;

    /// <summary>The key remembered for <paramref name="keyHash"/>, if memory may still answer for it.</summary>
    public bool TryGet(byte[] keyHash, out ActiveApiKey key)
    {
        key = null!;
        if (!_entries.TryGetValue(Hash.Of(keyHash), out var entry))
        {
            return false;
        }

        var now = time.GetTimestamp();
        var state = Volatile.Read(ref _state);
        if (entry.Version != state.Version || !IsFresh(state, now) || time.GetElapsedTime(entry.StartedAt, now) >= MaxAge)
        {
            return false;
        }

        key = entry.Key;
        return true;
    }

    /// <summary>Starts a lookup; pass what it returns to <see cref="Remember"/> with the key found.</summary>
    public Lookup Begin()
    {
        var now = time.GetTimestamp();
        var state = Volatile.Read(ref _state);
        return new Lookup(IsFresh(state, now) && time.GetElapsedTime(state.Since, now) >= Lifetime ? state.Version : null, now);
    }

    /// <summary>
    /// Remembers the key a lookup begun by <see cref="Begin"/> found, if that lookup may be remembered: it began under
    /// a settled version, took less than a lifetime, and began at least a lifetime after the key was last forgotten
    /// (the memory tier may answer it with an entry from before).
    /// </summary>
    public void Remember(byte[] keyHash, ActiveApiKey key, Lookup lookup)
    {
        if (lookup.Version is not { } version || time.GetElapsedTime(lookup.StartedAt) >= Lifetime)
        {
            return;
        }

        var hash = Hash.Of(keyHash);
        var entry = new Entry(key, version, lookup.StartedAt);
        _entries[hash] = entry;
        // Checked after the write, as Forget writes its mark before it removes: whichever runs second undoes it. The
        // lookup's age is checked again after the mark: a mark that matters is then less than two lifetimes old, so
        // Sweep cannot have removed it while this thread stood still.
        if ((_forgottenAt.TryGetValue(hash, out var forgottenAt) && time.GetElapsedTime(forgottenAt, lookup.StartedAt) < Lifetime)
            || time.GetElapsedTime(lookup.StartedAt) >= Lifetime)
        {
            _entries.TryRemove(new KeyValuePair<Hash, Entry>(hash, entry));
        }
    }

    /// <summary>Forgets <paramref name="keyHash"/> at once: it was revoked.</summary>
    public void Forget(byte[] keyHash)
    {
        var hash = Hash.Of(keyHash);
        _forgottenAt[hash] = time.GetTimestamp();
        _entries.TryRemove(hash, out _);
    }

    /// <summary>
    /// The watch read <paramref name="token"/> with a read sent at <paramref name="sentAt"/> (a
    /// <see cref="TimeProvider.GetTimestamp"/>). A token other than the last one read begins a new version; so does
    /// one read after confirmations had lapsed (a read that took longer than a lifetime, say), since a revocation
    /// announced meanwhile may have failed to reach Redis at all.
    /// </summary>
    public void Confirmed(string? token, long sentAt)
    {
        lock (_stateLock)
        {
            var state = _state;
            Volatile.Write(ref _state, Follows(state, token)
                ? state with { ConfirmedAt = Math.Max(state.ConfirmedAt, sentAt) }
                : NextVersion(state, token, sentAt));
        }
    }

    /// <summary>
    /// The watch read, with a read sent at <paramref name="sentAt"/>, that the revocations announced after
    /// <paramref name="from"/> up to <paramref name="to"/> are exactly those of <paramref name="revoked"/>: those keys
    /// are forgotten and every other one is still answered. If <paramref name="from"/> is not the last token read (or
    /// confirmations lapsed), this is <see cref="Confirmed"/> of <paramref name="to"/>: a new version.
    /// </summary>
    public void Advanced(string from, string to, IReadOnlyList<byte[]> revoked, long sentAt)
    {
        lock (_stateLock)
        {
            var state = _state;
            if (!Follows(state, from))
            {
                Volatile.Write(ref _state, NextVersion(state, to, sentAt));
                return;
            }

            foreach (var keyHash in revoked)
            {
                Forget(keyHash);
            }

            Volatile.Write(ref _state, state with { Token = to, ConfirmedAt = Math.Max(state.ConfirmedAt, sentAt) });
        }
    }

    /// <summary>
    /// The watch could not read the token: revocations may go unheard, so every entry ends. Returns whether the
    /// watch had been reading it until now.
    /// </summary>
    public bool Unconfirmed()
    {
        lock (_stateLock)
        {
            var state = _state;
            if (!state.Healthy)
            {
                return false;
            }

            Volatile.Write(ref _state, new State(state.Version + 1, Token: null, Healthy: false, ConfirmedAt: 0, Since: time.GetTimestamp()));
            return true;
        }
    }

    // Whether a read of `token` carries on from `state`: the watch was reading, last read that token, and not so long
    // ago that confirmations lapsed.
    private bool Follows(State state, string? token) =>
        state.Healthy && state.Token == token && time.GetElapsedTime(state.ConfirmedAt) < Lifetime;

    private State NextVersion(State state, string? token, long sentAt) =>
        new(state.Version + 1, token, Healthy: true, ConfirmedAt: sentAt, Since: time.GetTimestamp());

    // Confirmed lately, and there is a token: a revocation now would be heard.
    private bool IsFresh(State state, long now) =>
        state.Healthy && state.Token is not null && time.GetElapsedTime(state.ConfirmedAt, now) < Lifetime;

    /// <summary>
    /// Drops the entries that can no longer be answered (past <see cref="MaxAge"/>, or of an earlier version), and the
    /// marks of keys forgotten two lifetimes ago: a lookup remembered now began less than a lifetime ago.
    /// </summary>
    public void Sweep()
    {
        var now = time.GetTimestamp();
        var version = Volatile.Read(ref _state).Version;
        foreach (var (hash, entry) in _entries)
        {
            if (entry.Version != version || time.GetElapsedTime(entry.StartedAt, now) >= MaxAge)
            {
                _entries.TryRemove(new KeyValuePair<Hash, Entry>(hash, entry));
            }
        }

        foreach (var (hash, forgottenAt) in _forgottenAt)
        {
            if (time.GetElapsedTime(forgottenAt, now) >= Lifetime * 2)
            {
                _forgottenAt.TryRemove(new KeyValuePair<Hash, long>(hash, forgottenAt));
            }
        }
    }

    /// <summary>When a lookup began, and under which version, if what it finds may be remembered.</summary>
    public readonly record struct Lookup(long? Version, long StartedAt);

    private sealed record State(long Version, string? Token, bool Healthy, long ConfirmedAt, long Since);

    private sealed class Entry(ActiveApiKey key, long version, long startedAt)
    {
        public readonly ActiveApiKey Key = key;
        public readonly long Version = version;
        public readonly long StartedAt = startedAt;
    }

    /// <summary>A key's 32-byte SHA-256 hash as a dictionary key, without a string per lookup.</summary>
    private readonly record struct Hash(ulong A, ulong B, ulong C, ulong D)
    {
        public static Hash Of(byte[] hash) => new(
            BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(0)), BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(8)),
            BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(16)), BinaryPrimitives.ReadUInt64LittleEndian(hash.AsSpan(24)));
    }
}
