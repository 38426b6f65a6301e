using System.Net;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Tracker.ApiService.Ingest;

namespace Tracker.Tests.Ingest;

public sealed class BatchLogCountTests
{
    private static int Count(string json) => BatchLogCount.Count(Encoding.UTF8.GetBytes(json));

    [Theory]
    [InlineData("""{"logs":[]}""", 0)]
    [InlineData("""{"logs":[{"endpoint":"/a"}]}""", 1)]
    [InlineData("""{"logs":[{"endpoint":"/a","nested":{"logs":[1,2,3]}},{"x":[[],[{}]]},{}]}""", 3)]
    [InlineData("""{"other":{"logs":[1,2]},"logs":[{},{}]}""", 2)]
    [InlineData("""{"logs":[{},{}],"after":[1,2,3]}""", 2)]
    [InlineData("""{"LOGS":[{},{},{}]}""", 3)]
    [InlineData("""{"\u006Cogs":[{},{}]}""", 2)]
    [InlineData("""{"logs":[1,"two",null,true]}""", 4)]
    [InlineData("""{"logs":{"a":1}}""", 0)]
    [InlineData("""{"log":[{},{}]}""", 0)]
    [InlineData("""[{},{}]""", 0)]
    [InlineData("""{"logs":[{},{},{"endpoint": }]}""", 2)]
    [InlineData("""{"logs":[{},{},{},""", 3)]
    [InlineData("\uFEFF{\"logs\":[{},{}]}", 2)]
    [InlineData("", 0)]
    [InlineData("not json", 0)]
    public void Counts_the_elements_of_the_top_level_logs_array_up_to_the_first_malformed_token(string json, int expected) =>
        Assert.Equal(expected, Count(json));

    [Fact]
    public void Counts_what_the_binder_would_bind()
    {
        var logs = Enumerable.Range(0, 1000)
            .Select(index => new LogRequest("10.0.0.1", $"/items/{index}?q=\"{new string('é', index % 50)}\"", "GET", 1_700_000_000_000 + index))
            .ToArray();
        var json = JsonSerializer.SerializeToUtf8Bytes(new LogBatchRequest(logs), JsonSerializerOptions.Web);

        Assert.Equal(1000, BatchLogCount.Count(json));
    }

    private static readonly JsonSerializerOptions Relaxed = new(JsonSerializerOptions.Web) { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void The_room_estimated_from_the_string_bytes_counted_holds_the_records_the_binder_makes(bool relaxed, bool derivedIds)
    {
        var random = new Random(7);
        string[] alphabets = ["abc/", "é", "😀", "\"\\\u0001", "漢字", "a"];
        for (var round = 0; round < 200; round++)
        {
            var logs = Enumerable.Range(0, random.Next(1, 50)).Select(index =>
            {
                var alphabet = alphabets[random.Next(alphabets.Length)];
                var endpoint = "/" + string.Concat(Enumerable.Range(0, random.Next(0, 200)).Select(_ => alphabet));
                var id = random.Next(3) == 0 ? null : new string('x', random.Next(1, 65));
                return new LogRequest("1.2.3.4", endpoint, "get", 1_700_000_000_000, derivedIds ? null : id);
            }).ToArray();
            var options = relaxed ? Relaxed : JsonSerializerOptions.Web;
            var json = JsonSerializer.SerializeToUtf8Bytes(new LogBatchRequest(logs), options);
            var count = BatchLogCount.Count(json, out var stringBytes);
            Assert.Equal(logs.Length, count);
            var records = logs.Select((log, index) => new LogRecord(Guid.Empty, Guid.Empty, DateTimeOffset.UnixEpoch, IPAddress.Loopback,
                log.Method!.ToUpperInvariant(), log.Endpoint!, log.Id ?? (derivedIds ? IdempotencyKeys.DeriveLogId("key-" + round, index + 9_999_990) : null))).ToArray();
            Assert.True(QueueBudget.EstimateBytes(count, stringBytes, derivedIds) >= QueueBudget.EstimateBytes(records), $"round {round}");
        }
    }
}
