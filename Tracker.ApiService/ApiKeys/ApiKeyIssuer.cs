using Tracker.Data.Entities;

namespace Tracker.ApiService.ApiKeys;

/// <summary>Makes a new key for a client: the secret for the caller, the row (hash and prefix) for the database.</summary>
public static class ApiKeyIssuer
{
    public const int NameMaxLength = ApiKey.NameMaxLength;

    public static (string Secret, ApiKey Row) Create(Guid clientId, string name, DateTimeOffset now)
    {
        var secret = ApiKeyFormat.Generate();
        return (secret, new ApiKey
        {
            Id = Guid.CreateVersion7(now),
            ClientId = clientId,
            Name = name,
            Prefix = ApiKeyFormat.DisplayPrefix(secret),
            KeyHash = ApiKeyFormat.Hash(secret),
            CreatedAt = now,
        });
    }
}
