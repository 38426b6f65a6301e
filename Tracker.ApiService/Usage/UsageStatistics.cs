using System.Globalization;
using Tracker.ApiService.Http;

namespace Tracker.ApiService.Usage;

/// <summary>The analytics answers <c>daily</c> and <c>top</c>, cached and fresh (see <see cref="UsageAnswerCache"/>).</summary>
public sealed class UsageStatistics(UsageAnswerCache answers, UsageQueries queries, TimeProvider time)
{
    /// <summary>The caller's counts for the last <paramref name="days"/> UTC days including today, oldest first.</summary>
    public async ValueTask<SerializedOk<Envelope<IReadOnlyList<DailyCount>>>> DailyAsync(Guid clientId, int days, CancellationToken cancellationToken)
    {
        var today = UsageClock.Today(time);
        return await answers.OfClientAsync("usage-daily", clientId, string.Create(CultureInfo.InvariantCulture, $"{today.DayNumber}:{days}"),
            (Queries: queries, ClientId: clientId, Today: today, Days: days),
            static async (state, token) => Envelope.Of("Daily usage statistics retrieved successfully",
                (await state.Queries.DailyAsync(state.ClientId, state.Today, token)).Last(state.Days)),
            cancellationToken);
    }

    /// <summary>The <paramref name="limit"/> busiest clients of the current UTC hour and the <paramref name="hours"/> - 1 before it.</summary>
    public async ValueTask<SerializedOk<Envelope<IReadOnlyList<TopClient>>>> TopAsync(int hours, int limit, CancellationToken cancellationToken)
    {
        var currentHour = UsageClock.CurrentHour(time);
        return await answers.OfEveryoneAsync("usage-top", $"{hours}:{currentHour.Ticks / TimeSpan.TicksPerHour}:{limit}",
            (Queries: queries, From: currentHour.AddHours(1 - hours), To: currentHour, Limit: limit),
            static async (state, token) => Envelope.Of("Top clients retrieved successfully",
                await state.Queries.TopAsync(state.From, state.To, state.Limit, token)),
            cancellationToken);
    }
}
