using System.Net;
using System.Text.Json;
using Tracker.Tests.Infrastructure;
using static Tracker.Tests.Infrastructure.ApiClient;
using static Tracker.Tests.Infrastructure.IngestClient;
using static Tracker.Tests.Infrastructure.UsageClient;

namespace Tracker.Tests.Usage;

/// <summary>What <c>daily</c> and <c>top</c> answer: UTC days and hours by the logs' own timestamps, zeros, ranking.</summary>
[Collection(nameof(RealServers))]
public sealed class UsageTests(ServersFixture servers) : ApiTest(servers)
{
    public override async Task InitializeAsync()
    {
        await AvoidDayBoundaryAsync();
        await base.InitializeAsync();
    }

    [Fact]
    public async Task Daily_lists_every_utc_day_oldest_first_with_zero_for_days_without_calls()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        var today = TodayUtc;
        var threeDaysAgoNoon = new DateTimeOffset(today.AddDays(-3).ToDateTime(new TimeOnly(12, 0)), TimeSpan.Zero);
        await PostAllAsync(client, [Log(at: threeDaysAgoNoon), Log(at: threeDaysAgoNoon.AddMinutes(1)), Log()]);

        var week = await Http.DailyAsync(token);
        Assert.Equal(Enumerable.Range(-6, 7).Select(offset => today.AddDays(offset)), week.Select(day => day.Date));
        Assert.Equal([0, 0, 0, 2, 0, 0, 1], week.Select(day => day.Count));

        var quarter = await Http.DailyAsync(token, 90);
        Assert.Equal(90, quarter.Count);
        Assert.Equal(today.AddDays(-89), quarter[0].Date);
        Assert.Equal(3, quarter.Sum(day => day.Count));

        var single = Assert.Single(await Http.DailyAsync(token, 1));
        Assert.Equal(new Day(today, 1), single);
    }

    [Fact]
    public async Task A_call_at_23_59_59_999_and_one_at_midnight_count_on_different_utc_days()
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);
        var midnight = new DateTimeOffset(TodayUtc.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        await PostAllAsync(client, [Log(at: midnight.AddMilliseconds(-1)), Log(at: midnight)]);

        var days = await Http.DailyAsync(token, 2);
        Assert.Equal([new Day(TodayUtc.AddDays(-1), 1), new Day(TodayUtc, 1)], days);
    }

    [Fact]
    public async Task Daily_counts_only_the_callers_own_calls()
    {
        var caller = await Http.RegisterNewAsync();
        var other = await Http.RegisterNewAsync();
        await PostAllAsync(other, [Log(), Log(), Log()]);
        await PostAllAsync(caller, [Log()]);

        var days = await Http.DailyAsync(await Http.LoginTokenAsync(caller));
        Assert.Equal(1, days.Sum(day => day.Count));
    }

    [Fact]
    public async Task Top_ranks_by_requests_then_by_client_id_and_masks_emails()
    {
        var busiest = await Http.RegisterNewAsync(UniqueEmail("alice"));
        var tiedA = await Http.RegisterNewAsync(UniqueEmail("bob"));
        var tiedB = await Http.RegisterNewAsync(UniqueEmail("carol"));
        var quiet = await Http.RegisterNewAsync(UniqueEmail("dave"));
        var silent = await Http.RegisterNewAsync();
        await PostAllAsync(busiest, [Log(), Log(), Log()]);
        await PostAllAsync(tiedA, [Log(), Log()]);
        await PostAllAsync(tiedB, [Log(), Log()]);
        await PostAllAsync(quiet, [Log()]);
        var token = await Http.LoginTokenAsync(silent);

        var top = await Http.TopAsync(token);
        var tied = new[] { tiedA, tiedB }.OrderBy(client => client.Id.ToString(), StringComparer.Ordinal).ToArray();
        Assert.Equal([busiest.Id, tied[0].Id, tied[1].Id], top.Select(entry => entry.ClientId));
        Assert.Equal([3L, 2, 2], top.Select(entry => entry.TotalRequests));
        Assert.All(top, entry => Assert.Equal("Test Client", entry.ClientName));
        var first = top[0].ClientEmail;
        Assert.StartsWith("a*****", first, StringComparison.Ordinal);
        Assert.EndsWith("@example.com", first, StringComparison.Ordinal);
        Assert.DoesNotContain(busiest.Email.Split('@')[0], first, StringComparison.Ordinal);

        var everyone = await Http.TopAsync(token, limit: 100);
        Assert.Equal(4, everyone.Count);
        Assert.Equal(quiet.Id, everyone[^1].ClientId);
        Assert.Single(await Http.TopAsync(token, limit: 1));
    }

    [Fact]
    public async Task Top_counts_whole_utc_hours_ending_with_the_current_one()
    {
        await AvoidHourBoundaryAsync();
        var now = DateTimeOffset.UtcNow;
        var currentHour = new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero);
        var thisHour = await Http.RegisterNewAsync();
        var lastHour = await Http.RegisterNewAsync();
        var yesterday = await Http.RegisterNewAsync();
        await PostAllAsync(thisHour, [Log(at: currentHour)]);
        await PostAllAsync(lastHour, [.. Enumerable.Range(0, 5).Select(index => Log(at: currentHour.AddMilliseconds(-1 - index)))]);
        await PostAllAsync(yesterday, [.. Enumerable.Range(0, 9).Select(_ => Log(at: currentHour.AddHours(-24)))]);
        var token = await Http.LoginTokenAsync(thisHour);

        Assert.Equal([(thisHour.Id, 1L)], (await Http.TopAsync(token, hours: 1)).Select(entry => (entry.ClientId, entry.TotalRequests)));
        Assert.Equal([(lastHour.Id, 5L), (thisHour.Id, 1L)], (await Http.TopAsync(token, hours: 24)).Select(entry => (entry.ClientId, entry.TotalRequests)));
        Assert.Equal(yesterday.Id, (await Http.TopAsync(token, hours: 25))[0].ClientId);
    }

    [Theory]
    [InlineData("daily?days=0", "days")]
    [InlineData("daily?days=91", "days")]
    [InlineData("daily?days=abc", "days")]
    [InlineData("top?hours=0", "hours")]
    [InlineData("top?hours=721", "hours")]
    [InlineData("top?limit=0", "limit")]
    [InlineData("top?limit=101", "limit")]
    [InlineData("top?limit=2.5", "limit")]
    public async Task A_parameter_out_of_range_is_named_in_a_validation_problem(string query, string parameter)
    {
        var client = await Http.RegisterNewAsync();
        var token = await Http.LoginTokenAsync(client);

        using var response = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/" + query, token);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var errors = JsonDocument.Parse(body).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty(parameter, out _), body);
    }

    [Fact]
    public async Task Analytics_need_a_token_not_an_api_key()
    {
        var client = await Http.RegisterNewAsync();
        using var anonymous = await Http.GetAsync(new Uri("/api/v1/usages/daily", UriKind.Relative));
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous.StatusCode);
        using var withKey = await Http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/top", client.ApiKey);
        Assert.Equal(HttpStatusCode.Unauthorized, withKey.StatusCode);
    }

    private async Task PostAllAsync(RegisteredClient client, IEnumerable<object> logs)
    {
        using var response = await Http.PostBatchAsync(client.ApiKey, logs);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }
}
