using System.Globalization;
using System.Net;
using System.Text.Json;
using Npgsql;
using Microsoft.Extensions.DependencyInjection;
using Tracker.ApiService.Ingest;
using Tracker.ApiService.Usage;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>
/// The breakdown routes (endpoints, series, one key's days) against a brute-force computation over the raw logs in
/// PostgreSQL: counts exactly, percentiles within the sketch's 1%. Generated logs span many endpoints (with ids to
/// normalise), methods, statuses, durations and keys, with and without the optional fields, duplicates, and
/// timestamps crowded around UTC and local midnights and a DST change.
/// </summary>
[Collection(nameof(RealServers))]
public sealed class BreakdownTests(ServersFixture servers) : ApiTest(servers, new Dictionary<string, string?>
{
    ["RateLimiting:Usage:PermitLimit"] = "9000",
    // Each answer is read from the rollups: the test asks again after they changed in ways that keep the answers.
    ["Usage:CacheAnswers"] = "false",
})
{
    private static readonly (double Q, string Name)[] Percentiles = [(0.5, "p50"), (0.95, "p95"), (0.99, "p99")];

    private static readonly string[] DstZones = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "Pacific/Auckland", "America/Santiago"];

    private static readonly string[] Paths =
    [
        "/v1/orders", "/v1/orders/{n}", "/v1/orders/{n}/items/{n}", "/v1/users/{uuid}", "/v1/users/{uuid}/avatar", "/v1/files/{hex}",
        "/v1/search?q={n}", "/health", "/v1/carts", "/v1/carts/{n}", "/v2/reports/daily", "/v2/reports/{n}", "/v1/a", "/v1/b",
        "/v1/c", "/v1/d", "/v1/e", "/v1/f", "/v1/g", "/v1/h",
    ];

    private static readonly string[] Methods = ["GET", "GET", "GET", "post", "DELETE", "PATCH", "PURGE"];

    private static readonly int?[] Statuses = [null, 200, 200, 200, 201, 204, 301, 101, 400, 404, 404, 429, 500, 503];

    public override async Task InitializeAsync()
    {
        await AvoidHourBoundaryAsync();
        await base.InitializeAsync();
    }

    [Fact]
    public async Task Every_breakdown_equals_a_brute_force_computation_over_the_raw_logs()
    {
        var client = await Http.RegisterNewAsync();
        var other = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        string[] keys = [client.ApiKey, await CreateKeyAsync(token, "second"), await CreateKeyAsync(token, "third")];
        var (zone, change) = ZoneWithRecentDstChange();
        var random = new Random(20261201);
        var now = DateTimeOffset.UtcNow;
        foreach (var key in keys)
        {
            for (var batch = 0; batch < 2; batch++)
            {
                var logs = Enumerable.Range(0, 700).Select(_ => GenerateLog(random, now, zone, change)).ToArray();
                await PostAsync(key, logs);
                if (batch == 0)
                {
                    // A retry: logs with ids are duplicates and must not be counted twice.
                    await PostAsync(key, logs);
                }
            }
        }

        await PostAsync(other.ApiKey, [GenerateLog(random, now, zone, change)]);
        var logsStored = await RawLogsAsync(client.Id);
        Assert.True(logsStored.Count > 4_000, $"{logsStored.Count} logs");
        Assert.Contains(logsStored, log => log.Status is null && log.DurationMs is null);
        await AssertEveryBreakdownAsync(token, logsStored, zone, change, now);

        // Past days folded into the daily tier: the same answers, read from it. Its days are taken away from the
        // hourly cells while they are asked, so an answer that still read them there would miss their counts.
        var compaction = Factory.Services.GetRequiredService<DailyCompaction>();
        await compaction.RunOnceAsync(CancellationToken.None);
        var folded = await FoldedThroughAsync();
        Assert.True(folded >= TodayUtc.AddDays(-2), $"folded through {folded}");
        Assert.Equal(0, await StaleDaysAsync(client.Id, folded));
        await using (var hidden = await HourlyCellsHiddenAsync(client.Id, folded))
        {
            Assert.True(hidden.Cells > 100, $"{hidden.Cells} hourly cells folded");
            await AssertFoldedDayBreakdownsAsync(token, logsStored);
        }

        // Logs arriving late for folded days mark them stale: answered from the hourly cells, then folded again.
        foreach (var key in keys)
        {
            await PostAsync(key, [.. Enumerable.Range(0, 300).Select(_ => GenerateLog(random, now, zone, change))]);
        }

        logsStored = await RawLogsAsync(client.Id);
        Assert.True(await StaleDaysAsync(client.Id, folded) > 5);
        await AssertEveryBreakdownAsync(token, logsStored, zone, change, now);
        await compaction.RunOnceAsync(CancellationToken.None);
        Assert.Equal(0, await StaleDaysAsync(client.Id, folded));
        await using (await HourlyCellsHiddenAsync(client.Id, folded))
        {
            await AssertFoldedDayBreakdownsAsync(token, logsStored);
        }

        await AssertEveryBreakdownAsync(token, logsStored, zone, change, now);
    }

    /// <summary>The breakdowns whose windows hold the folded days whole: a month of endpoints, UTC days, a key's days.</summary>
    private async Task AssertFoldedDayBreakdownsAsync(string token, List<RawLog> logsStored)
    {
        await AssertEndpointsAsync(token, logsStored, hours: 720);
        foreach (var groupBy in new string?[] { null, "endpoint", "status", "key" })
        {
            await AssertSeriesAsync(token, logsStored, TimeZoneInfo.Utc, "day", 30, groupBy, percentiles: true);
        }

        await AssertKeyUsageAsync(token, logsStored);
    }

    private async Task AssertEveryBreakdownAsync(string token, List<RawLog> logsStored, TimeZoneInfo zone, DateTimeOffset change, DateTimeOffset now)
    {
        await AssertEndpointsAsync(token, logsStored, hours: 720);
        await AssertEndpointsAsync(token, logsStored, hours: 24);
        var daysBack = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(now, zone).DateTime).DayNumber
            - DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(change, zone).DateTime).DayNumber + 2;
        foreach (var groupBy in new string?[] { null, "endpoint", "status", "key" })
        {
            await AssertSeriesAsync(token, logsStored, zone, "day", Math.Min(daysBack, 90), groupBy, percentiles: true);
            await AssertSeriesAsync(token, logsStored, TimeZoneInfo.Utc, "hour", 3, groupBy, percentiles: groupBy != "endpoint");
        }

        await AssertSeriesAsync(token, logsStored, zone, "hour", 2, "status", percentiles: false);
        await AssertFoldedDayBreakdownsAsync(token, logsStored);
    }

    private async Task AssertKeyUsageAsync(string token, List<RawLog> logsStored)
    {
        var keyIds = await KeyIdsAsync(token);
        Assert.Equal(3, keyIds.Length);
        foreach (var keyId in keyIds)
        {
            using var response = await Http.SendWithTokenAsync(HttpMethod.Get, $"/api/v1/keys/{keyId}/usage?days=30", token);
            var days = await DataAsync(response, HttpStatusCode.OK);
            var today = TodayUtc;
            var expected = Enumerable.Range(-29, 30).Select(offset => (today.AddDays(offset), (long)logsStored.Count(log =>
                log.KeyId == keyId && DateOnly.FromDateTime(log.At.UtcDateTime) == today.AddDays(offset)))).ToList();
            Assert.Equal(expected, days.EnumerateArray().Select(day =>
                (DateOnly.ParseExact(day.GetProperty("date").GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture), day.GetProperty("count").GetInt64())));
        }
    }

    [Fact]
    public async Task Another_clients_key_is_not_found_and_the_routes_are_under_the_usage_policy()
    {
        var client = await Http.RegisterNewAsync();
        var other = await Http.RegisterNewAsync();
        var otherKey = (await KeyIdsAsync(await Http.LoginTokenAsync(other))).Single();
        var token = await Http.LoginTokenAsync(client);

        using var foreign = await Http.SendWithTokenAsync(HttpMethod.Get, $"/api/v1/keys/{otherKey}/usage", token);
        Assert.Equal(HttpStatusCode.NotFound, foreign.StatusCode);
        using var unknown = await Http.SendWithTokenAsync(HttpMethod.Get, $"/api/v1/keys/{Guid.NewGuid()}/usage", token);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        using var own = await Http.SendWithTokenAsync(HttpMethod.Get, $"/api/v1/keys/{(await KeyIdsAsync(token)).Single()}/usage?days=2", token);
        Assert.Equal(2, (await DataAsync(own, HttpStatusCode.OK)).GetArrayLength());

        foreach (var path in new[] { "/api/v1/usages/endpoints", "/api/v1/usages/series", $"/api/v1/keys/{otherKey}/usage" })
        {
            using var anonymous = await Http.SendWithTokenAsync(HttpMethod.Get, path, token: null);
            Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
            using var response = await Http.SendWithTokenAsync(HttpMethod.Get, path, token);
            Assert.StartsWith("\"usage\";q=9000", response.Headers.GetValues("RateLimit-Policy").Single(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task The_openapi_document_describes_the_new_routes_and_log_fields()
    {
        using var response = await Http.GetAsync(new Uri("/openapi/v1.json", UriKind.Relative));
        using var document = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var paths = document.RootElement.GetProperty("paths");
        foreach (var path in new[] { "/api/v1/usages/endpoints", "/api/v1/usages/series", "/api/v1/keys/{id}/usage" })
        {
            var operation = paths.GetProperty(path).GetProperty("get");
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("summary").GetString()), path);
            Assert.False(string.IsNullOrEmpty(operation.GetProperty("description").GetString()), path);
            Assert.Contains(operation.GetProperty("security").EnumerateArray(), requirement => requirement.TryGetProperty("Bearer", out _));
            Assert.True(operation.GetProperty("responses").TryGetProperty("200", out _), path);
        }

        Assert.True(paths.GetProperty("/api/v1/keys/{id}/usage").GetProperty("get").GetProperty("responses").TryGetProperty("404", out _));
        var log = document.RootElement.GetProperty("components").GetProperty("schemas").GetProperty("LogRequest").GetProperty("properties");
        Assert.True(log.TryGetProperty("statusCode", out _));
        Assert.True(log.TryGetProperty("durationMs", out _));
    }

    [Theory]
    [InlineData("/api/v1/usages/endpoints?hours=0", "hours")]
    [InlineData("/api/v1/usages/endpoints?hours=721", "hours")]
    [InlineData("/api/v1/usages/endpoints?limit=101", "limit")]
    [InlineData("/api/v1/usages/series?granularity=minute", "granularity")]
    [InlineData("/api/v1/usages/series?granularity=1", "granularity")]
    [InlineData("/api/v1/usages/series?groupBy=method", "groupBy")]
    [InlineData("/api/v1/usages/series?groupBy=none", "groupBy")]
    [InlineData("/api/v1/usages/series?tz=Mars/Olympus", "tz")]
    [InlineData("/api/v1/usages/series?tz=../../etc/passwd", "tz")]
    [InlineData("/api/v1/usages/series?tz=Asia/Kolkata", "tz")]
    // Another spelling of Europe/Berlin that the operating system would resolve (and .NET cache for good).
    [InlineData("/api/v1/usages/series?tz=Europe//Berlin", "tz")]
    [InlineData("/api/v1/usages/series?days=91", "days")]
    [InlineData("/api/v1/usages/series?granularity=hour&days=15", "days")]
    [InlineData("/api/v1/usages/series?limit=51", "limit")]
    [InlineData("/api/v1/usages/series?percentiles=maybe", "percentiles")]
    public async Task A_bad_parameter_is_a_400_naming_it(string path, string parameter)
    {
        var token = await Http.LoginTokenAsync(await Http.RegisterNewAsync());
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, path, token);
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, body);
        Assert.True(Problem(body).GetProperty("errors").TryGetProperty(parameter, out _), body);
    }

    [Fact]
    public async Task A_former_zone_name_that_browsers_report_answers_as_the_current_name()
    {
        var token = await Http.LoginTokenAsync(await Http.RegisterNewAsync());
        using var former = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/series?tz=Europe/Kiev", token);
        using var current = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/series?tz=Europe/Kyiv", token);

        Assert.Equal((await DataAsync(current, HttpStatusCode.OK)).GetRawText(), (await DataAsync(former, HttpStatusCode.OK)).GetRawText());
    }

    private async Task AssertEndpointsAsync(string token, IReadOnlyList<RawLog> logs, int hours)
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, $"/api/v1/usages/endpoints?hours={hours}&limit=100", token);
        var answer = await DataAsync(response, HttpStatusCode.OK);
        var now = DateTime.UtcNow;
        var from = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddHours(1 - hours);
        var expected = logs.Where(log => log.At >= from)
            .GroupBy(log => (Method: RollupDimensions.Method(log.Method), Endpoint: RollupDimensions.Endpoint(log.Endpoint)))
            .OrderByDescending(group => group.Count()).ThenBy(group => group.Key.Method, CodePointOrder.Instance)
            .ThenBy(group => group.Key.Endpoint, CodePointOrder.Instance)
            .ToList();
        Assert.Equal(expected.Count, answer.GetArrayLength());
        foreach (var (group, row) in expected.Zip(answer.EnumerateArray()))
        {
            var what = $"{group.Key.Method} {group.Key.Endpoint} over {hours} h";
            Assert.Equal((group.Key.Method, group.Key.Endpoint), (row.GetProperty("method").GetString()!, row.GetProperty("endpoint").GetString()!));
            Assert.Equal(group.Count(), row.GetProperty("count").GetInt64());
            Assert.Equal(group.Count(log => log.Status / 100 == 4), row.GetProperty("clientErrors").GetInt64());
            Assert.Equal(group.Count(log => log.Status / 100 == 5), row.GetProperty("serverErrors").GetInt64());
            AssertPercentiles(group, row, what);
        }
    }

    private async Task AssertSeriesAsync(
        string token, IReadOnlyList<RawLog> logs, TimeZoneInfo zone, string granularity, int days, string? groupBy, bool percentiles)
    {
        var query = $"/api/v1/usages/series?granularity={granularity}&days={days}&tz={zone.Id}&limit=50&percentiles={(percentiles ? "true" : "false")}"
            + (groupBy is null ? "" : $"&groupBy={groupBy}");
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, query, token);
        var answer = await DataAsync(response, HttpStatusCode.OK);
        var today = DateOnly.FromDateTime(TimeZoneInfo.ConvertTime(DateTimeOffset.UtcNow, zone).DateTime);
        var firstDay = today.AddDays(1 - days);
        // Buckets by the log's own local date (days) or UTC hour (hours): independent of how the API cuts them.
        DateTimeOffset? BucketOf(RawLog log)
        {
            var local = TimeZoneInfo.ConvertTime(log.At, zone);
            if (DateOnly.FromDateTime(local.DateTime) < firstDay)
            {
                return null;
            }

            return granularity == "day"
                ? new DateTimeOffset(local.Date, TimeSpan.Zero)
                : new DateTimeOffset(log.At.UtcDateTime.Date.AddHours(log.At.UtcDateTime.Hour), TimeSpan.Zero);
        }

        string GroupOf(RawLog log) => groupBy switch
        {
            "endpoint" => RollupDimensions.Method(log.Method) + " " + RollupDimensions.Endpoint(log.Endpoint),
            "status" => log.Status is { } status ? $"{status / 100}xx" : "none",
            "key" => log.KeyId.ToString(),
            _ => "total",
        };

        var inWindow = logs.Where(log => BucketOf(log) is not null).ToList();
        var expected = inWindow.GroupBy(GroupOf).OrderByDescending(group => group.Count()).ThenBy(group => group.Key, CodePointOrder.Instance)
            .Take(50).ToList();
        var series = answer.GetProperty("series").EnumerateArray().ToList();
        Assert.Equal(expected.Select(group => (group.Key, (long)group.Count())),
            series.Select(line => (line.GetProperty("group").GetString()!, line.GetProperty("total").GetInt64())));
        foreach (var (group, line) in expected.Zip(series))
        {
            var points = line.GetProperty("points").EnumerateArray().ToList();
            var starts = points.Select(point => point.GetProperty("start").GetDateTimeOffset()).ToList();
            // Zero-filled: every day of the window, or every hour, each as long as the gap to the next.
            Assert.Equal(granularity == "day" ? days : (int)(starts[^1] - starts[0]).TotalHours + 1, points.Count);
            Assert.Equal(firstDay, DateOnly.FromDateTime(starts[0].DateTime));
            Assert.Equal(today, DateOnly.FromDateTime(starts[^1].DateTime));
            Assert.All(starts, start => Assert.Equal(zone.GetUtcOffset(start), start.Offset));
            for (var index = 0; index + 1 < points.Count; index++)
            {
                Assert.Equal((starts[index + 1] - starts[index]).TotalHours, points[index].GetProperty("hours").GetInt32());
            }

            var byBucket = group.ToLookup(log => BucketOf(log)!.Value);
            foreach (var (point, start) in points.Zip(starts))
            {
                var key = granularity == "day" ? new DateTimeOffset(start.DateTime.Date, TimeSpan.Zero) : start.ToUniversalTime();
                var expectedLogs = byBucket[key].ToList();
                var what = $"{granularity} {groupBy} {group.Key} at {start:O} in {zone.Id}";
                Assert.True(expectedLogs.Count == point.GetProperty("count").GetInt64(), what);
                if (percentiles)
                {
                    AssertPercentiles(expectedLogs, point, what);
                }
                else
                {
                    Assert.Equal(JsonValueKind.Null, point.GetProperty("p50").ValueKind);
                }
            }
        }

        if (granularity == "day" && zone.SupportsDaylightSavingTime && days >= 2)
        {
            var hours = series[0].GetProperty("points").EnumerateArray().Select(point => point.GetProperty("hours").GetInt32()).ToHashSet();
            Assert.Contains(hours, length => length != 24);
        }
    }

    private static void AssertPercentiles(IEnumerable<RawLog> logs, JsonElement row, string what)
    {
        var sorted = logs.Where(log => log.DurationMs is not null).Select(log => log.DurationMs!.Value).Order().ToList();
        foreach (var (q, name) in Percentiles)
        {
            var value = row.GetProperty(name);
            if (sorted.Count == 0)
            {
                Assert.True(value.ValueKind == JsonValueKind.Null, $"{what} {name}");
            }
            else
            {
                LatencySketchTests.AssertWithinAccuracy(LatencySketchTests.ExactQuantile(sorted, q), value.GetDouble(), $"{what} {name}");
            }
        }
    }

    private static Dictionary<string, object?> GenerateLog(Random random, DateTimeOffset now, TimeZoneInfo zone, DateTimeOffset change)
    {
        var at = random.Next(10) switch
        {
            < 4 => now.AddMilliseconds(-random.NextInt64((long)TimeSpan.FromDays(40).TotalMilliseconds)),
            < 6 => now.AddMilliseconds(-random.NextInt64((long)TimeSpan.FromHours(30).TotalMilliseconds)),
            6 => change.AddMinutes(random.Next(-180, 180)).AddMilliseconds(random.Next(60_000)),
            7 => LocalMidnight(now.AddDays(-random.Next(1, 40)), zone).AddMilliseconds(random.Next(-5_000, 5_000)),
            _ => new DateTimeOffset(now.UtcDateTime.Date.AddDays(-random.Next(0, 40)), TimeSpan.Zero).AddMilliseconds(random.Next(-5_000, 5_000)),
        };
        if (at > now)
        {
            at = now.AddSeconds(-1);
        }

        var endpoint = Paths[random.Next(Paths.Length)]
            .Replace("{n}", random.Next(1, 100_000).ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
            .Replace("{uuid}", Guid.NewGuid().ToString(), StringComparison.Ordinal)
            .Replace("{hex}", Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()), StringComparison.Ordinal);
        var status = Statuses[random.Next(Statuses.Length)];
        double? duration = random.Next(10) switch
        {
            0 => null,
            1 => 0,
            2 => random.Next(1, 20),
            _ => Math.Round(Math.Exp(random.NextDouble() * 10 - 2), 3),
        };
        var log = new Dictionary<string, object?>
        {
            ["ipAddress"] = "203.0.113.7",
            ["endpoint"] = endpoint,
            ["method"] = Methods[random.Next(Methods.Length)],
            ["timestamp"] = at.ToUnixTimeMilliseconds(),
        };
        if (status is not null)
        {
            log["statusCode"] = status;
        }

        if (duration is not null)
        {
            log["durationMs"] = duration;
        }

        if (random.Next(3) == 0)
        {
            log["id"] = Guid.NewGuid().ToString();
        }

        return log;
    }

    /// <summary>The zone (of a few) whose latest DST change is the most recent within the retention window, and when (see below when none).</summary>
    private static (TimeZoneInfo Zone, DateTimeOffset Change) ZoneWithRecentDstChange()
    {
        var now = DateTimeOffset.UtcNow;
        var found = DstZones.Select(TimeZoneInfo.FindSystemTimeZoneById)
            .Select(zone =>
            {
                var hour = new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero);
                for (var at = hour; at > now.AddDays(-85); at = at.AddHours(-1))
                {
                    if (zone.GetUtcOffset(at) != zone.GetUtcOffset(at.AddHours(-1)))
                    {
                        return (Zone: zone, Change: (DateTimeOffset?)at);
                    }
                }

                return (Zone: zone, Change: (DateTimeOffset?)null);
            })
            .Where(candidate => candidate.Change is not null)
            .OrderByDescending(candidate => candidate.Change)
            .FirstOrDefault();
        // From late January to early March no zone of these changed its clocks within the window the routes can read
        // (the last changes were in the autumn): then the logs crowd around an ordinary local time instead, and the
        // DST days are covered by SeriesWindowTests' fixed dates alone.
        return found.Zone is null
            ? (TimeZoneInfo.FindSystemTimeZoneById(DstZones[0]), new DateTimeOffset(now.UtcDateTime.Date, TimeSpan.Zero).AddDays(-40))
            : (found.Zone, found.Change!.Value);
    }

    private static DateTimeOffset LocalMidnight(DateTimeOffset day, TimeZoneInfo zone)
    {
        var local = TimeZoneInfo.ConvertTime(day, zone).Date;
        return new DateTimeOffset(local, zone.GetUtcOffset(local));
    }

    private async Task PostAsync(string apiKey, object[] logs)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/v1/logs/batch") { Content = System.Net.Http.Json.JsonContent.Create(new { logs }) };
        request.Headers.TryAddWithoutValidation("X-API-Key", apiKey);
        using var response = await Http.SendAsync(request);
        await DataAsync(response, HttpStatusCode.Created);
    }

    private async Task<string> CreateKeyAsync(string token, string name)
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Post, "/api/v1/keys", token, new { name });
        return (await DataAsync(response, HttpStatusCode.Created)).GetProperty("apiKey").GetString()!;
    }

    private async Task<Guid[]> KeyIdsAsync(string token)
    {
        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/keys", token);
        return [.. (await DataAsync(response, HttpStatusCode.OK)).EnumerateArray().Select(key => key.GetProperty("id").GetGuid())];
    }

    private async Task<List<RawLog>> RawLogsAsync(Guid clientId)
    {
        await using var connection = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT api_key_id, occurred_at, method, endpoint, status_code, duration_ms FROM logs WHERE client_id = $1", connection);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
        await using var reader = await command.ExecuteReaderAsync();
        var logs = new List<RawLog>();
        while (await reader.ReadAsync())
        {
            logs.Add(new RawLog(reader.GetGuid(0), reader.GetFieldValue<DateTimeOffset>(1), reader.GetString(2), reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetInt16(4), reader.IsDBNull(5) ? null : reader.GetDouble(5)));
        }

        return logs;
    }

    private async Task<DateOnly> FoldedThroughAsync()
    {
        await using var connection = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT compacted_through FROM usage_daily_compaction", connection);
        return (DateOnly)(await command.ExecuteScalarAsync())!;
    }

    private async Task<long> StaleDaysAsync(Guid clientId, DateOnly foldedThrough)
    {
        await using var connection = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM usage_daily_stale WHERE client_id = $1 AND day <= $2", connection);
        command.Parameters.Add(new NpgsqlParameter<Guid> { TypedValue = clientId });
        command.Parameters.Add(new NpgsqlParameter<DateOnly> { TypedValue = foldedThrough });
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>
    /// Moves the client's hourly cells aside until disposed, those of the UTC days up to <paramref name="foldedThrough"/>
    /// that every window of <see cref="AssertFoldedDayBreakdownsAsync"/> holds whole (the last 29 days before today).
    /// </summary>
    private async Task<HiddenCells> HourlyCellsHiddenAsync(Guid clientId, DateOnly foldedThrough)
    {
        var table = $"hidden_{clientId:N}";
        await using var connection = new NpgsqlConnection(Factory.DatabaseConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"""
            CREATE TABLE {table} AS SELECT * FROM usage_hourly_details WHERE false;
            WITH moved AS (DELETE FROM usage_hourly_details WHERE client_id = @client AND hour_start >= @start AND hour_start < @end RETURNING *)
            INSERT INTO {table} SELECT * FROM moved
            """, connection);
        command.Parameters.AddWithValue("client", clientId);
        command.Parameters.AddWithValue("start", TodayUtc.AddDays(-29).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        command.Parameters.AddWithValue("end", foldedThrough.AddDays(1).ToDateTime(TimeOnly.MinValue, DateTimeKind.Utc));
        return new HiddenCells(Factory.DatabaseConnectionString, table, await command.ExecuteNonQueryAsync());
    }

    private sealed class HiddenCells(string connectionString, string table, int cells) : IAsyncDisposable
    {
        public int Cells => cells;

        public async ValueTask DisposeAsync()
        {
            await using var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"INSERT INTO usage_hourly_details SELECT * FROM {table}; DROP TABLE {table}", connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    private sealed record RawLog(Guid KeyId, DateTimeOffset At, string Method, string Endpoint, int? Status, double? DurationMs);
}
