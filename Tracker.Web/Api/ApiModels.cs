namespace Tracker.Web.Api;

/// <summary>The API's success envelope: every answer with a body is <c>{"message": …, "data": …}</c>.</summary>
internal sealed record Envelope<T>(string Message, T Data);

public sealed record RegisterRequest(string Name, string Email, string Password);

public sealed record Registration(Guid ClientId, string ApiKey);

public sealed record LoginRequest(string Email, string Password);

public sealed record SignedInClient(ClientProfile Client, TokenGrant Token);

/// <param name="Email">Masked by the API (<c>o**@acme.example</c>).</param>
public sealed record ClientProfile(Guid Id, string Name, string Email, DateTimeOffset CreatedAt, DateTimeOffset UpdatedAt);

public sealed record TokenGrant(string AccessToken, int AccessTokenExpiresIn);

public sealed record ApiKeySummary(
    Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt)
{
    public bool IsActive => RevokedAt is null;
}

public sealed record CreateApiKeyRequest(string Name);

/// <param name="ApiKey">The whole key: the API shows it this once.</param>
public sealed record CreatedApiKey(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, string ApiKey);

public sealed record DailyUsage(DateOnly Date, long Count);

public sealed record TopClient(Guid ClientId, string ClientName, string ClientEmail, long TotalRequests);

/// <summary>One of the caller's busiest endpoints over a window.</summary>
/// <param name="Endpoint">The normalised path: id-like segments as <c>{id}</c>; <c>{other}</c> holds those past the API's cap.</param>
/// <param name="ClientErrors">Logs with a 4xx status code.</param>
/// <param name="ServerErrors">Logs with a 5xx status code.</param>
/// <param name="P50">Median duration in milliseconds (within 1%); null when no log carried a duration.</param>
public sealed record EndpointUsage(
    string Method, string Endpoint, long Count, long ClientErrors, long ServerErrors, double? P50, double? P95, double? P99);

/// <summary>Which usage series to ask for (see docs/api.md, <c>GET /api/v1/usages/series</c>).</summary>
/// <param name="Granularity"><c>hour</c> or <c>day</c>.</param>
/// <param name="Days">The last calendar days of <paramref name="TimeZone"/>, today included.</param>
/// <param name="GroupBy"><c>endpoint</c>, <c>status</c> or <c>key</c>; null for the total alone.</param>
/// <param name="TimeZone">An IANA time zone name.</param>
/// <param name="Limit">The busiest groups to draw.</param>
public sealed record SeriesQuery(string Granularity, int Days, string? GroupBy, string TimeZone, int Limit);

/// <summary>Requests per hour or day of a time zone, one line per group (a single <c>total</c> line without grouping).</summary>
public sealed record UsageSeries(string Granularity, string TimeZone, string? GroupBy, IReadOnlyList<SeriesLine> Series);

/// <param name="Group">The endpoint (<c>GET /users/{id}</c>), the status class (<c>2xx</c>, or <c>none</c>), the API key's
/// id, or <c>total</c>.</param>
public sealed record SeriesLine(string Group, long Total, IReadOnlyList<SeriesPoint> Points);

/// <param name="Start">When the bucket starts, with the time zone's offset at that moment.</param>
public sealed record SeriesPoint(DateTimeOffset Start, int Hours, long Count);
