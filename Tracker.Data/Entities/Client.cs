namespace Tracker.Data.Entities;

/// <summary>An API provider's customer: registers, logs in, owns API keys and the logs sent with them.</summary>
public sealed class Client
{
    public const int NameMaxLength = 100;
    public const int EmailMaxLength = 254;

    public Guid Id { get; set; }

    public required string Name { get; set; }

    /// <summary>The address as the client typed it; shown (masked) back to them.</summary>
    public required string Email { get; set; }

    /// <summary>Lower-cased <see cref="Email"/>: the unique index that decides "email taken" lives on it.</summary>
    public required string NormalizedEmail { get; set; }

    public required string PasswordHash { get; set; }

    public DateTimeOffset CreatedAt { get; set; }

    public DateTimeOffset UpdatedAt { get; set; }

    public List<ApiKey> ApiKeys { get; } = [];
}
