using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Tracker.Data.Entities;

namespace Tracker.ApiService.Auth;

/// <summary>
/// ASP.NET Core Identity's PBKDF2 password hasher (HMAC-SHA512) at OWASP's recommended 210,000 iterations.
/// Verifying against an unknown email still runs one full verification against a fixed hash, so a login
/// takes as long for an unknown email as for a wrong password: response time reveals no registered address.
/// </summary>
public sealed class PasswordHashing
{
    private const int Pbkdf2Sha512Iterations = 210_000;

    private readonly PasswordHasher<Client> _hasher = new(Options.Create(new PasswordHasherOptions
    {
        CompatibilityMode = PasswordHasherCompatibilityMode.IdentityV3,
        IterationCount = Pbkdf2Sha512Iterations,
    }));

    private readonly string _unknownClientHash;

    public PasswordHashing()
    {
        _unknownClientHash = _hasher.HashPassword(null!, Guid.NewGuid().ToString());
    }

    public string Hash(Client client, string password) => _hasher.HashPassword(client, password);

    /// <summary>True when <paramref name="client"/> exists and <paramref name="password"/> is its password.</summary>
    public bool Verify(Client? client, string password)
    {
        var result = _hasher.VerifyHashedPassword(client!, client?.PasswordHash ?? _unknownClientHash, password);
        return client is not null && result != PasswordVerificationResult.Failed;
    }
}
