namespace Tracker.Data.Entities;

/// <summary>
/// One ingest credential of a client. The key itself is never stored: only its SHA-256 hash (to look it up)
/// and a short prefix (so its owner can recognise it in a list).
/// </summary>
public sealed class ApiKey
{
    public const int NameMaxLength = 100;
    public const int PrefixLength = 8;
    public const int KeyHashLength = 32;

    public Guid Id { get; set; }

    public Guid ClientId { get; set; }

    public Client? Client { get; set; }

    public required string Name { get; set; }

    public required string Prefix { get; set; }

    public required byte[] KeyHash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    /// <summary>Refreshed at most once a minute, so ingest never writes to this row on its hot path.</summary>
    public DateTimeOffset? LastUsedAt { get; set; }

    /// <summary>Set when revoked; the row stays for audit.</summary>
    public DateTimeOffset? RevokedAt { get; set; }
}
