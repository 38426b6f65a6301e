using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class LogValidatorTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private readonly LogValidator _validator = new(new FakeTimeProvider(Now), Options.Create(new RetentionOptions { Days = 90 }));

    [Theory]
    [InlineData("203.0.113.7")]
    [InlineData("0.0.0.0")]
    [InlineData("2001:db8::1")]
    [InlineData("::1")]
    [InlineData("::ffff:192.0.2.1")]
    public void Real_addresses_are_accepted(string address)
    {
        Assert.NotNull(LogValidator.ParseIpAddress(address));
    }

    [Theory]
    [InlineData("1")]
    [InlineData("127.1")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("256.1.1.1")]
    [InlineData("1.2.3.4.5")]
    [InlineData("localhost")]
    [InlineData("fe80::1%eth0")]
    [InlineData("")]
    [InlineData(" 1.2.3.4")]
    [InlineData("[::1]")]
    [InlineData("[::1]:80")]
    [InlineData("::1 ")]
    public void Shorthand_and_non_addresses_are_refused(string text)
    {
        Assert.Null(LogValidator.ParseIpAddress(text));
    }

    // .NET reads a dotted part with a leading zero as octal ("010" is 8), PostgreSQL as decimal and a reader as
    // decimal; whatever was meant, storing either would change the address, so it is refused.
    [Theory]
    [InlineData("010.0.0.1")]
    [InlineData("08.1.1.1")]
    [InlineData("1.2.3.00")]
    [InlineData("192.168.001.1")]
    [InlineData("::ffff:010.0.0.1")]
    [InlineData("::ffff:1.2.3.04")]
    [InlineData("64:ff9b::0.0.0.01")]
    public void Dotted_parts_with_a_leading_zero_are_refused(string text)
    {
        Assert.Null(LogValidator.ParseIpAddress(text));
    }

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("0.0.0.0")]
    [InlineData("255.255.255.255")]
    public void An_accepted_IPv4_address_is_stored_as_written(string text)
    {
        Assert.Equal(text, LogValidator.ParseIpAddress(text)?.ToString());
    }

    [Theory]
    [InlineData(@"/a\u0000b", "NUL")]
    [InlineData(@"/a\ud800b", "a lone high surrogate")]
    [InlineData(@"/a\udc00b", "a lone low surrogate")]
    [InlineData(@"/a\udc00\ud800", "a reversed pair")]
    [InlineData(@"/a\ud800", "a high surrogate at the end")]
    public void Endpoints_PostgreSQL_cannot_store_are_refused(string escaped, string what)
    {
        var errors = new Dictionary<string, string[]>();

        var ok = _validator.TryConvert(Log(endpoint: System.Text.RegularExpressions.Regex.Unescape(escaped)), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out _);

        Assert.False(ok, what);
        Assert.Equal(["endpoint"], errors.Keys);
    }

    [Fact]
    public void Endpoint_length_counts_characters_as_PostgreSQL_does_not_UTF16_units()
    {
        // varchar(2048) holds 2048 code points; each of these takes two UTF-16 units.
        var astral = string.Concat(Enumerable.Repeat("\U0001F600", LogValidator.EndpointMaxLength));
        var errors = new Dictionary<string, string[]>();

        Assert.True(_validator.TryConvert(Log(endpoint: astral), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out var record));
        Assert.Equal(astral, record.Endpoint);
        Assert.False(_validator.TryConvert(Log(endpoint: astral + "x"), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out _));
        Assert.Equal(["endpoint"], errors.Keys);
    }

    [Fact]
    public void Control_characters_other_than_NUL_are_stored_as_sent()
    {
        var errors = new Dictionary<string, string[]>();

        Assert.True(_validator.TryConvert(Log(endpoint: "/a\u0001\t\u007f b\uFFFF"), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out var record));
        Assert.Equal("/a\u0001\t\u007f b\uFFFF", record.Endpoint);
    }

    [Fact]
    public void A_valid_log_becomes_a_record_with_an_upper_case_method()
    {
        var errors = new Dictionary<string, string[]>();

        Assert.True(_validator.TryConvert(Log(method: "get"), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out var record));
        Assert.Empty(errors);
        Assert.Equal("GET", record.Method);
        Assert.Equal(Now.AddMinutes(-1), record.OccurredAt);
    }

    [Theory]
    [InlineData(-90 * 24 * 60 - 1, false)]
    [InlineData(-90 * 24 * 60 + 1, true)]
    [InlineData(5, true)]
    [InlineData(6, false)]
    public void Timestamps_must_lie_in_the_retention_window_and_at_most_5_minutes_ahead(int minutesFromNow, bool valid)
    {
        var errors = new Dictionary<string, string[]>();
        var log = Log(timestamp: Now.AddMinutes(minutesFromNow).ToUnixTimeMilliseconds());

        Assert.Equal(valid, _validator.TryConvert(log, Guid.NewGuid(), Guid.NewGuid(), "logs[2].", errors, out _));
        Assert.Equal(valid, !errors.ContainsKey("logs[2].timestamp"));
    }

    [Fact]
    public void Every_bad_field_is_named_under_the_prefix()
    {
        var errors = new Dictionary<string, string[]>();

        _validator.TryConvert(new LogRequest("1", string.Empty, "GE T", null), Guid.NewGuid(), Guid.NewGuid(), "logs[3].", errors, out _);

        Assert.Equal(["logs[3].endpoint", "logs[3].ipAddress", "logs[3].method", "logs[3].timestamp"], errors.Keys.Order());
    }

    [Fact]
    public void Endpoints_and_methods_have_length_limits()
    {
        var errors = new Dictionary<string, string[]>();

        _validator.TryConvert(Log(endpoint: new string('/', 2049), method: new string('X', 17)), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out _);

        Assert.Contains("endpoint", errors.Keys);
        Assert.Contains("method", errors.Keys);
    }

    private static LogRequest Log(string ip = "203.0.113.7", string endpoint = "/v1/things", string method = "GET", long? timestamp = null) =>
        new(ip, endpoint, method, timestamp ?? Now.AddMinutes(-1).ToUnixTimeMilliseconds());
}
