using Microsoft.Extensions.Time.Testing;
using Tracker.ApiService.ApiKeys;

namespace Tracker.Tests.Api;

/// <summary>
/// When memory may answer for a key past the memory tier's lifetime: only while the revocation watch keeps confirming
/// that nothing was revoked. The watch's reads are played by hand here, on a fake clock.
/// </summary>
public sealed class RememberedKeysTests
{
    private static readonly TimeSpan Lifetime = ApiKeyStore.LocalLifetime;

    private readonly FakeTimeProvider _time = new();
    private readonly ActiveApiKey _key = new(Guid.NewGuid(), Guid.NewGuid());
    private readonly byte[] _hash = System.Security.Cryptography.SHA256.HashData("key"u8);

    [Fact]
    public void A_key_found_while_confirmations_hold_is_answered_as_long_as_they_go_on()
    {
        var keys = Settled();
        keys.Remember(_hash, _key, keys.Begin());

        for (var tick = 0; tick < 100; tick++)
        {
            _time.Advance(RevocationWatch.Interval);
            keys.Confirmed("token", _time.GetTimestamp());
            Assert.True(keys.TryGet(_hash, out var found));
            Assert.Same(_key, found);
        }

        Assert.False(keys.TryGet(System.Security.Cryptography.SHA256.HashData("another key"u8), out _));
    }

    [Fact]
    public void A_new_token_ends_every_remembered_key_at_once_and_keys_found_soon_after_are_not_remembered()
    {
        var keys = Settled();
        keys.Remember(_hash, _key, keys.Begin());

        keys.Confirmed("revoked one", _time.GetTimestamp());
        Assert.False(keys.TryGet(_hash, out _));

        // The memory tier may answer a lookup now with an entry from before the revocation: not remembered.
        AssertRememberedOnlyALifetimeLater(keys, "revoked one");
    }

    [Fact]
    public void A_key_is_answered_at_most_a_lifetime_after_the_last_confirmation_was_sent_and_not_again_once_they_lapsed()
    {
        var keys = Settled();
        keys.Remember(_hash, _key, keys.Begin());
        var sent = _time.GetTimestamp();

        // The read's answer comes late: the confirmation counts from when it was sent.
        _time.Advance(Lifetime - TimeSpan.FromMilliseconds(1));
        keys.Confirmed("token", sent);
        Assert.True(keys.TryGet(_hash, out _));
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.False(keys.TryGet(_hash, out _));

        // The same token read after the lapse: a revocation may have been announced meanwhile and never reached Redis.
        keys.Confirmed("token", _time.GetTimestamp());
        Assert.False(keys.TryGet(_hash, out _));
    }

    [Fact]
    public void A_failed_read_ends_every_remembered_key_and_reading_the_same_token_again_does_not_bring_them_back()
    {
        var keys = Settled();
        keys.Remember(_hash, _key, keys.Begin());
        var beganBeforeFailure = keys.Begin();

        keys.Unconfirmed();
        Assert.False(keys.TryGet(_hash, out _));
        keys.Remember(_hash, _key, keys.Begin());
        Assert.False(keys.TryGet(_hash, out _));

        _time.Advance(RevocationWatch.Interval);
        keys.Confirmed("token", _time.GetTimestamp());
        Assert.False(keys.TryGet(_hash, out _));
        keys.Remember(_hash, _key, beganBeforeFailure);
        Assert.False(keys.TryGet(_hash, out _));
    }

    [Fact]
    public void Nothing_is_remembered_before_the_first_confirmation_and_a_forgotten_key_is_looked_up_again()
    {
        var keys = new RememberedKeys(_time);
        keys.Remember(_hash, _key, keys.Begin());
        Assert.Equal(0, keys.Count);

        keys = Settled();
        keys.Remember(_hash, _key, keys.Begin());
        Assert.True(keys.TryGet(_hash, out _));
        keys.Forget(_hash);
        Assert.False(keys.TryGet(_hash, out _));
    }

    [Fact]
    public void A_key_is_answered_for_at_most_its_maximum_age_whatever_the_watch_hears_and_then_swept()
    {
        var keys = Settled();
        var older = System.Security.Cryptography.SHA256.HashData("older"u8);
        keys.Remember(older, _key, keys.Begin());
        _time.Advance(RevocationWatch.Interval);
        keys.Confirmed("token", _time.GetTimestamp());
        keys.Remember(_hash, _key, keys.Begin());
        for (var elapsed = RevocationWatch.Interval; elapsed < RememberedKeys.MaxAge; elapsed += RevocationWatch.Interval)
        {
            Assert.True(keys.TryGet(older, out _));
            _time.Advance(RevocationWatch.Interval);
            keys.Confirmed("token", _time.GetTimestamp());
        }

        Assert.False(keys.TryGet(older, out _));
        Assert.True(keys.TryGet(_hash, out _));
        keys.Sweep();
        Assert.Equal(1, keys.Count);

        keys.Confirmed("revoked one", _time.GetTimestamp());
        keys.Sweep();
        Assert.Equal(0, keys.Count);
    }

    [Fact]
    public void A_revocation_read_in_order_forgets_that_key_alone_and_it_is_not_remembered_again_for_a_lifetime()
    {
        var keys = Settled();
        var other = System.Security.Cryptography.SHA256.HashData("another tenant's key"u8);
        var beganBefore = keys.Begin();
        keys.Remember(_hash, _key, keys.Begin());
        keys.Remember(other, _key, keys.Begin());

        keys.Advanced("token", "token 2", [_hash], _time.GetTimestamp());
        Assert.False(keys.TryGet(_hash, out _));
        Assert.True(keys.TryGet(other, out _));

        // A lookup that began before the revocation was read, or soon after (the memory tier may still hold the key),
        // is not remembered; one a lifetime later is.
        keys.Remember(_hash, _key, beganBefore);
        Assert.False(keys.TryGet(_hash, out _));
        AssertRememberedOnlyALifetimeLater(keys, "token 2");
        Assert.True(keys.TryGet(other, out _));
    }

    [Fact]
    public void Revocations_read_from_a_point_other_than_the_last_one_end_every_key()
    {
        var keys = Settled();
        var other = System.Security.Cryptography.SHA256.HashData("another tenant's key"u8);
        keys.Remember(_hash, _key, keys.Begin());
        keys.Remember(other, _key, keys.Begin());

        keys.Advanced("an older token", "token 2", [_hash], _time.GetTimestamp());

        Assert.False(keys.TryGet(_hash, out _));
        Assert.False(keys.TryGet(other, out _));
    }

    [Fact]
    public void A_lookup_that_took_a_lifetime_is_not_remembered()
    {
        var keys = Settled();
        var lookup = keys.Begin();
        _time.Advance(Lifetime / 2);
        keys.Confirmed("token", _time.GetTimestamp());
        _time.Advance(Lifetime / 2);
        keys.Confirmed("token", _time.GetTimestamp());

        keys.Remember(_hash, _key, lookup);

        Assert.Equal(0, keys.Count);
    }

    // A lookup half a lifetime from now is not remembered, one a lifetime from now is; the watch reads token meanwhile.
    private void AssertRememberedOnlyALifetimeLater(RememberedKeys keys, string token)
    {
        _time.Advance(Lifetime / 2);
        keys.Confirmed(token, _time.GetTimestamp());
        keys.Remember(_hash, _key, keys.Begin());
        Assert.False(keys.TryGet(_hash, out _));
        _time.Advance(Lifetime / 2);
        keys.Confirmed(token, _time.GetTimestamp());
        keys.Remember(_hash, _key, keys.Begin());
        Assert.True(keys.TryGet(_hash, out _));
    }

    // Confirmations of one token for a lifetime: a lookup begun now may be remembered.
    private RememberedKeys Settled()
    {
        var keys = new RememberedKeys(_time);
        keys.Confirmed("token", _time.GetTimestamp());
        for (var elapsed = TimeSpan.Zero; elapsed < Lifetime; elapsed += RevocationWatch.Interval)
        {
            _time.Advance(RevocationWatch.Interval);
            keys.Confirmed("token", _time.GetTimestamp());
        }

        return keys;
    }
}
