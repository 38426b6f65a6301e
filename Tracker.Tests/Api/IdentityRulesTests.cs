using Tracker.ApiService.ApiKeys;
using Tracker.ApiService.Auth;

namespace Tracker.Tests.Api;

/// <summary>The pure rules behind identity: masking, email shape, key format.</summary>
public sealed class IdentityRulesTests
{
    [Theory]
    [InlineData("john@example.com", "j***@example.com")]
    [InlineData("jo@example.com", "j*@example.com")]
    [InlineData("z@x.org", "*@x.org")]
    [InlineData("Ada.Lovelace@Example.com", "A***********@Example.com")]
    public void Emails_are_masked_after_the_first_character_of_the_local_part(string email, string masked)
    {
        Assert.Equal(masked, EmailAddresses.Mask(email));
    }

    [Theory]
    [InlineData("a@b.co", true)]
    [InlineData("first.last+tag@sub.example.org", true)]
    [InlineData("no-at-sign.example.com", false)]
    [InlineData("two@@example.com", false)]
    [InlineData("John <john@example.com>", false)]
    [InlineData("spaces in@example.com", false)]
    [InlineData("nodot@localhost", false)]
    [InlineData("trailing@example.com.", false)]
    public void Email_validity(string email, bool valid)
    {
        Assert.Equal(valid, EmailAddresses.IsValid(email));
    }

    [Fact]
    public void Emails_compare_lower_cased_and_trimmed()
    {
        Assert.Equal("ada@example.com", EmailAddresses.Normalize("  Ada@EXAMPLE.com "));
    }

    [Fact]
    public void Generated_keys_are_ak_plus_256_random_bits_in_base64url()
    {
        var keys = Enumerable.Range(0, 1000).Select(_ => ApiKeyFormat.Generate()).ToList();

        Assert.All(keys, key =>
        {
            Assert.Equal(46, key.Length);
            Assert.StartsWith("ak_", key, StringComparison.Ordinal);
            Assert.True(ApiKeyFormat.IsWellFormed(key));
        });
        Assert.Equal(keys.Count, keys.Distinct().Count());
    }

    [Fact]
    public void A_key_is_stored_as_its_32_byte_sha256_and_shown_by_its_first_8_characters()
    {
        var key = ApiKeyFormat.Generate();

        Assert.Equal(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)), ApiKeyFormat.Hash(key));
        Assert.Equal(key[..8], ApiKeyFormat.DisplayPrefix(key));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("ak_tooshort")]
    [InlineData("xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    [InlineData("ak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+")]
    [InlineData("ak_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public void Anything_not_shaped_like_a_key_is_refused_before_any_lookup(string? candidate)
    {
        Assert.False(ApiKeyFormat.IsWellFormed(candidate));
    }
}
