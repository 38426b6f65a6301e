using CsCheck;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Tracker.ApiService.Ingest;
using static Tracker.Tests.Ingest.LogGenerators;

namespace Tracker.Tests.Ingest;

/// <summary>The validator over adversarial logs, many times: fast, no servers.</summary>
public sealed class LogValidatorPropertyTests
{
    private const string Prefix = "logs[7].";
    private static readonly DateTimeOffset Now = new(2026, 11, 25, 12, 0, 0, TimeSpan.Zero);
    private static readonly string[] FieldKeys = [Prefix + "ipAddress", Prefix + "endpoint", Prefix + "method", Prefix + "timestamp"];

    private readonly LogValidator _validator = new(new FakeTimeProvider(Now), Options.Create(new RetentionOptions { Days = 90 }));

    [Fact]
    public void Accepted_logs_are_what_PostgreSQL_stores_as_sent_and_refusals_name_only_bad_fields()
    {
        Gen.Select(IpAddress, Endpoint, Method, Timestamp(() => Now)).Sample((ip, endpoint, method, timestamp) =>
        {
            var sent = new LogRequest(ip.Value, endpoint.Value, method.Value, timestamp.Value);
            var errors = new Dictionary<string, string[]>();

            var accepted = _validator.TryConvert(sent, Guid.NewGuid(), Guid.NewGuid(), Prefix, errors, out var record);

            Assert.Equal(accepted, errors.Count == 0);
            Assert.All(errors.Keys, key => Assert.Contains(key, FieldKeys));
            Assert.False(ip.Clean && errors.ContainsKey(Prefix + "ipAddress"), "a clean address was refused");
            Assert.False(endpoint.Clean && errors.ContainsKey(Prefix + "endpoint"), "a clean endpoint was refused");
            Assert.False(method.Clean && errors.ContainsKey(Prefix + "method"), "a clean method was refused");
            Assert.False(timestamp.Clean && errors.ContainsKey(Prefix + "timestamp"), "a clean timestamp was refused");
            if (accepted)
            {
                Assert.NotNull(record);
                StorageRules.AssertAddressStoredAsSent(sent.IpAddress!, record.IpAddress);
                Assert.Equal(sent.Endpoint, record.Endpoint);
                Assert.True(StorageRules.PostgresAccepts(record.Endpoint, LogValidator.EndpointMaxLength));
                Assert.Equal(sent.Method!.ToUpperInvariant(), record.Method);
                Assert.True(record.Method.All(char.IsAscii) && StorageRules.PostgresAccepts(record.Method, LogValidator.MethodMaxLength));
                Assert.Equal(sent.Timestamp, record.OccurredAt.ToUnixTimeMilliseconds());
            }
        }, iter: 100_000);
    }
}
