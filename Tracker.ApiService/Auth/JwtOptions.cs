using System.ComponentModel.DataAnnotations;
using System.Text;

namespace Tracker.ApiService.Auth;

/// <summary>
/// Access tokens: HS256 with a key from configuration (the AppHost generates it as a secret parameter).
/// There is deliberately no default key: a missing or short key stops the API at start.
/// </summary>
public sealed class JwtOptions : IValidatableObject
{
    public const string SectionName = "Jwt";

    /// <summary>HS256 keys shorter than the hash output (256 bits) weaken the MAC; IdentityModel refuses them too.</summary>
    public const int MinimumSigningKeyBytes = 32;

    [Required]
    public string Issuer { get; set; } = "tracker";

    [Required]
    public string Audience { get; set; } = "tracker-api";

    /// <summary>At least 32 bytes (256 bits) of UTF-8.</summary>
    public string SigningKey { get; set; } = string.Empty;

    [Range(60, 24 * 3600)]
    public int AccessTokenLifetimeSeconds { get; set; } = 3600;

    [Range(0, 30)]
    public int ClockSkewSeconds { get; set; } = 30;

    public byte[] SigningKeyBytes() => Encoding.UTF8.GetBytes(SigningKey);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Encoding.UTF8.GetByteCount(SigningKey) < MinimumSigningKeyBytes)
        {
            yield return new ValidationResult(
                $"Jwt:SigningKey must be set to a secret of at least {MinimumSigningKeyBytes} bytes (256 bits); "
                + "the AppHost passes its generated 'jwt-signing-key' parameter.",
                [nameof(SigningKey)]);
        }
    }
}
