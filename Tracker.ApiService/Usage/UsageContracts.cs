using System.ComponentModel;

namespace Tracker.ApiService.Usage;

/// <summary>Requests of the caller on one UTC calendar day.</summary>
public sealed record DailyCount(DateOnly Date, long Count);

/// <summary>One of the busiest clients of a window; the email is masked.</summary>
public sealed record TopClient(Guid ClientId, string ClientName, string ClientEmail, long TotalRequests);

/// <summary>
/// What the cache holds for one client: a count for each of the <see cref="UsageQueries.MaxDays"/> days ending
/// on <see cref="LastDay"/>, oldest first. Every <c>days</c> value is a slice of it, so one entry serves them all.
/// Never modified once built, so the memory tier shares one instance instead of deserializing a copy per request.
/// </summary>
[ImmutableObject(true)]
public sealed record DailyCounts(DateOnly LastDay, long[] Counts);

/// <summary>
/// What the cache holds for one window: its <see cref="UsageQueries.MaxLimit"/> busiest clients; every <c>limit</c>
/// is a prefix. Never modified once built, so the memory tier shares one instance.
/// </summary>
[ImmutableObject(true)]
public sealed record TopClients(TopClient[] Clients);
