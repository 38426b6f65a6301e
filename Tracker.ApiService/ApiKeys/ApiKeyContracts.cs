namespace Tracker.ApiService.ApiKeys;

/// <param name="Name">1–100 characters after trimming, to tell keys apart.</param>
public sealed record CreateApiKeyRequest(string? Name);

/// <summary>A key as its owner sees it in a list: never the key itself, never its hash.</summary>
/// <param name="Prefix">The key's first 8 characters.</param>
/// <param name="LastUsedAt">Last ingest with this key; may lag by about a minute.</param>
/// <param name="RevokedAt">When it was revoked; null while it works.</param>
public sealed record ApiKeyView(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, DateTimeOffset? LastUsedAt, DateTimeOffset? RevokedAt);

/// <param name="ApiKey">The key itself. Shown this once: only its hash is kept.</param>
public sealed record CreatedApiKey(Guid Id, string Name, string Prefix, DateTimeOffset CreatedAt, string ApiKey);
