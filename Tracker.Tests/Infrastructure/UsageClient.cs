using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Tracker.Tests.Infrastructure;

/// <summary>Reads the analytics endpoints as a REST client would.</summary>
public static class UsageClient
{
    public sealed record Day(DateOnly Date, long Count);

    public sealed record Busy(Guid ClientId, string ClientName, string ClientEmail, long TotalRequests);

    public static async Task<IReadOnlyList<Day>> DailyAsync(this HttpClient http, string token, int? days = null)
    {
        using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/daily" + (days is null ? "" : $"?days={days}"), token);
        var data = await ApiClient.DataAsync(response, HttpStatusCode.OK);
        return [.. data.EnumerateArray().Select(day => new Day(
            DateOnly.ParseExact(day.GetProperty("date").GetString()!, "yyyy-MM-dd", CultureInfo.InvariantCulture),
            day.GetProperty("count").GetInt64()))];
    }

    public static async Task<IReadOnlyList<Busy>> TopAsync(this HttpClient http, string token, int? hours = null, int? limit = null)
    {
        var query = string.Join('&', new[] { hours is null ? null : $"hours={hours}", limit is null ? null : $"limit={limit}" }.OfType<string>());
        using var response = await http.SendWithTokenAsync(HttpMethod.Get, "/api/v1/usages/top" + (query.Length == 0 ? "" : "?" + query), token);
        var data = await ApiClient.DataAsync(response, HttpStatusCode.OK);
        return [.. data.EnumerateArray().Select(client => new Busy(
            client.GetProperty("clientId").GetGuid(), client.GetProperty("clientName").GetString()!,
            client.GetProperty("clientEmail").GetString()!, client.GetProperty("totalRequests").GetInt64()))];
    }

    public static long CountOn(this IReadOnlyList<Day> days, DateOnly date) => days.Single(day => day.Date == date).Count;

    public static DateOnly TodayUtc => DateOnly.FromDateTime(DateTime.UtcNow);

    /// <summary>Every test that reads "the current hour" calls this first, so the hour cannot change under it.</summary>
    public static async Task AvoidHourBoundaryAsync()
    {
        var now = DateTime.UtcNow;
        var intoHour = now - new DateTime(now.Year, now.Month, now.Day, now.Hour, 0, 0, DateTimeKind.Utc);
        if (intoHour > TimeSpan.FromMinutes(59.5))
        {
            await Task.Delay(TimeSpan.FromHours(1) - intoHour + TimeSpan.FromSeconds(1));
        }
    }

    /// <summary>
    /// Every test that counts "today" calls this first: logs are stamped a second in the past and read moments
    /// later, so the UTC day must not change in between. Waits past midnight in the last two minutes of a day.
    /// </summary>
    public static async Task AvoidDayBoundaryAsync()
    {
        var now = DateTime.UtcNow;
        var leftInDay = now.Date.AddDays(1) - now;
        if (leftInDay < TimeSpan.FromMinutes(2))
        {
            await Task.Delay(leftInDay + TimeSpan.FromSeconds(2));
        }
    }

    public static JsonElement Problem(string body) => JsonDocument.Parse(body).RootElement;
}
