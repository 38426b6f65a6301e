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
