using System.Globalization;

namespace Tracker.ApiService.Usage;

/// <summary>The analytics answers <c>daily</c> and <c>top</c>, cached and fresh (see <see cref="UsageAnswerCache"/>).</summary>
public sealed class UsageStatistics(UsageAnswerCache answers, UsageQueries queries, TimeProvider time)
{
    /// <summary>The caller's counts for the last <paramref name="days"/> UTC days including today, oldest first.</summary>
    public async Task<IReadOnlyList<DailyCount>> DailyAsync(Guid clientId, int days, CancellationToken cancellationToken)
    {
        var today = UsageClock.Today(time);
        var counts = await answers.OfClientAsync("usage-daily", clientId, today.DayNumber.ToString(CultureInfo.InvariantCulture),
            (Queries: queries, ClientId: clientId, Today: today),
            static (state, token) => new ValueTask<DailyCounts>(state.Queries.DailyAsync(state.ClientId, state.Today, token)),
            cancellationToken);
        return counts.Last(days);
    }

    /// <summary>The <paramref name="limit"/> busiest clients of the current UTC hour and the <paramref name="hours"/> - 1 before it.</summary>
    public async Task<IReadOnlyList<TopClient>> TopAsync(int hours, int limit, CancellationToken cancellationToken)
    {
        var currentHour = UsageClock.CurrentHour(time);
        var top = await answers.OfEveryoneAsync("usage-top", $"{hours}:{currentHour.Ticks / TimeSpan.TicksPerHour}",
            (Queries: queries, From: currentHour.AddHours(1 - hours), To: currentHour),
            static (state, token) => new ValueTask<TopClients>(state.Queries.TopAsync(state.From, state.To, token)),
            cancellationToken);
        return top.Clients.Length <= limit ? top.Clients : top.Clients[..limit];
    }
}
