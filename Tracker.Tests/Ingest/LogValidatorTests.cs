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
    public void Shorthand_and_non_addresses_are_refused(string text)
    {
        Assert.Null(LogValidator.ParseIpAddress(text));
    }

    [Fact]
    public void A_valid_log_becomes_a_record_with_an_upper_case_method()
    {
        var errors = new Dictionary<string, string[]>();

        var ok = _validator.TryConvert(Log(method: "get"), Guid.NewGuid(), Guid.NewGuid(), string.Empty, errors, out var record);

        Assert.True(ok);
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
